"""``/.well-known/matrix/server``: where a server name delegates its federation traffic.

spec: server-server-api.md#resolving-server-names (step 3) and the ``getWellKnown``
API (data/api/server-server/wellknown.yaml).  Answers, successful or not, are cached:
a valid answer for as long as its ``Cache-Control``/``Expires`` say (24 hours without
them; at least 5 minutes, at most 48 hours, as the spec recommends), an invalid one
(not 200, not JSON, no valid ``m.server``) for an hour.  A request that gets no answer
at all (DNS, connection, TLS, timeout, 5xx) is a temporary failure: the last valid
answer, if there was one, is kept, and the lookup is retried after 2 minutes,
doubling with each further failure up to an hour (the spec's "exponentially back off
for repeated failures").  Every period is shortened by up to 10% at random so entries
made together do not expire together.

The fetch goes through the server's outbound HTTP client (``homeserver/http/
outbound.py``), so it is subject to the federation address policy (a name resolving
to a blocked address is not fetched), follows at most a few redirects, reads at most
50 KiB and gives up after 10 seconds.

Per-process state: an LRU of hostnames → answer and expiry (:data:`CACHE_SIZE`).
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
from collections.abc import Mapping

import attrs

from homeserver.clock import Clock
from homeserver.http.outbound import (
    OutboundError,
    OutboundHttpClient,
    OutboundRefused,
    OutboundTooLarge,
)
from homeserver.identifiers import parse_server_name
from homeserver.util.caches import LruCache
from homeserver.util.single_flight import SingleFlight
from homeserver.util.untrusted_json import UntrustedJsonError, parse_untrusted_json

logger = logging.getLogger(__name__)

HOUR_MS = 3_600_000
#: Without caching headers (spec: "the recommended sensible default is 24 hours").
DEFAULT_CACHE_MS = 24 * HOUR_MS
#: The spec's recommended maximum.
MAX_CACHE_MS = 48 * HOUR_MS
#: A valid answer is kept at least this long, whatever its headers say (``no-store``
#: included): one lookup per request would make every request wait on it.
MIN_CACHE_MS = 5 * 60_000
#: Invalid answers (spec: "errors are recommended to be cached for up to an hour").
INVALID_CACHE_MS = HOUR_MS
#: The first retry after a temporary failure; doubled per further failure, up to
#: :data:`INVALID_CACHE_MS`.
FIRST_RETRY_MS = 2 * 60_000
#: The fraction of each period that may be cut at random.
JITTER = 0.1

MAX_BODY_SIZE = 50 * 1024
FETCH_TIMEOUT_S = 10.0
MAX_REDIRECTS = 5
CACHE_SIZE = 10_000

_MAX_AGE_RE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.I)
_NO_STORE_RE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.I)


@attrs.frozen
class _Entry:
    #: The ``m.server`` value; None when the name does not delegate (or we cannot tell).
    delegated: str | None
    #: When to ask again (ms since the epoch).
    expires_at: int
    #: Consecutive temporary failures (for the retry interval).
    failures: int = 0


class WellKnownResolver:
    def __init__(
        self, clock: Clock, http: OutboundHttpClient, *, rng: random.Random | None = None
    ) -> None:
        self._clock = clock
        self._http = http
        self._rng = rng or random.Random()
        self._cache: LruCache[str, _Entry] = LruCache(CACHE_SIZE)
        self._lookups: SingleFlight[str, _Entry] = SingleFlight()

    async def delegated_server(self, hostname: str) -> str | None:
        """The server name ``hostname`` delegates to (a valid server name, perhaps
        with a port), or None."""
        entry = self._cache.get(hostname)
        if entry is None or self._clock.time_msec() >= entry.expires_at:
            entry = await self._lookups.run(hostname, lambda: self._refresh(hostname, entry))
        return entry.delegated

    async def _refresh(self, hostname: str, previous: _Entry | None) -> _Entry:
        now = self._clock.time_msec()
        try:
            entry = await self._fetch(hostname, now)
        except _TemporaryFailure as failure:
            failures = 1 if previous is None else previous.failures + 1
            retry_ms = min(INVALID_CACHE_MS, FIRST_RETRY_MS * 2 ** min(failures - 1, 10))
            kept = None if previous is None else previous.delegated
            logger.info(
                "Fetching https://%s/.well-known/matrix/server failed (%s); keeping %r",
                hostname,
                failure.reason,
                kept,
            )
            entry = _Entry(kept, now + self._jittered(retry_ms), failures)
        self._cache.set(hostname, entry)
        return entry

    async def _fetch(self, hostname: str, now: int) -> _Entry:
        # IPv6 hosts never get here (IP literals do not look up .well-known).
        url = f"https://{hostname}/.well-known/matrix/server"
        try:
            response = await self._http.get(
                url, max_size=MAX_BODY_SIZE, timeout=FETCH_TIMEOUT_S, max_redirects=MAX_REDIRECTS
            )
        except (OutboundRefused, OutboundTooLarge) as error:
            # Will not change on retry: as good as an invalid answer.
            return self._invalid(hostname, now, str(error))
        except OutboundError as error:
            raise _TemporaryFailure(str(error)) from error
        if response.code >= 500:
            raise _TemporaryFailure(f"status {response.code}")
        if response.code != 200:
            return self._invalid(hostname, now, f"status {response.code}")
        delegated, problem = _parse_body(response.body)
        if delegated is None:
            return self._invalid(hostname, now, problem)
        period = _cache_period(response.headers, now)
        period = min(MAX_CACHE_MS, max(MIN_CACHE_MS, period))
        logger.debug("%s delegates federation to %s", hostname, delegated)
        return _Entry(delegated, now + self._jittered(period))

    def _invalid(self, hostname: str, now: int, reason: str) -> _Entry:
        logger.debug("No .well-known delegation for %s: %s", hostname, reason)
        return _Entry(None, now + self._jittered(INVALID_CACHE_MS))

    def _jittered(self, period_ms: int) -> int:
        return int(period_ms * (1 - JITTER * self._rng.random()))


class _TemporaryFailure(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _parse_body(body: bytes) -> tuple[str | None, str]:
    """The valid ``m.server`` in ``body`` or (None, why not).  The spec says to read
    the body as JSON whatever its ``Content-Type``."""
    try:
        document = parse_untrusted_json(body)
    except UntrustedJsonError as error:
        return None, f"not JSON: {error}"
    if not isinstance(document, dict):
        return None, "not a JSON object"
    delegated = document.get("m.server")
    if not isinstance(delegated, str):
        return None, "no m.server string"
    try:
        parse_server_name(delegated)
    except ValueError as error:
        return None, str(error)
    return delegated, ""


def _cache_period(headers: Mapping[str, str], now_ms: int) -> int:
    """How long the response may be kept, from its headers (ms)."""
    cache_control = headers.get("cache-control", "")
    if _NO_STORE_RE.search(cache_control):
        return 0
    match = _MAX_AGE_RE.search(cache_control)
    if match is not None:
        return min(int(match.group(1)), MAX_CACHE_MS // 1000) * 1000
    expires = headers.get("expires")
    if expires is not None:
        try:
            expires_at = email.utils.parsedate_to_datetime(expires)
        except (TypeError, ValueError):
            return 0  # RFC 9111 §5.3: an invalid Expires means "already expired".
        if expires_at.tzinfo is None:
            return 0
        return max(0, int(expires_at.timestamp() * 1000) - now_ms)
    return DEFAULT_CACHE_MS
