"""Answering key queries as a notary: other servers' key responses, countersigned.

We serve what we have stored — each response exactly as its origin signed it (plus
any notary's signature it came with) and our own signature added — and ask the
origin itself first when what we hold is missing, not valid until the time asked
(``minimum_valid_until_ts``, else now), or past half of its lifetime (keys_server.yaml:
"Intermediate notary servers should cache a response for half of its lifetime").
When the origin cannot be reached the last stored response is served anyway, "so
that the signatures of old events can still be checked".  Servers outside
``federation_domain_whitelist`` are never asked; our own keys come from
:class:`LocalServerKeys`.

The query is unauthenticated, so anyone can make us send requests to any server
(well-known, SRV, keys): a request that would make us ask some origin takes one
token of its client address's ``rc_key_query`` bucket first, and is answered 429
``M_LIMIT_EXCEEDED`` (with ``retry_after_ms``) when none is left.  Requests answered
entirely from what is stored are free: they cost one database read, like any other
unauthenticated read, and servers re-asking for keys they already had (the common
case) are never held back.  One token per request, not per origin asked: a request
asks at most :data:`MAX_FETCHES_PER_QUERY` origins anyway.

spec: server-server-api.md#querying-keys-through-another-server
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs
from signedjson.sign import sign_json
from twisted.internet import defer

from federation.keys.errors import KeyFetchError
from federation.keys.local import LocalServerKeys
from homeserver.clock import Clock
from homeserver.ratelimit import RateLimiter
from homeserver.storage.server_keys import ServerKeyStore, StoredKeyResponse

logger = logging.getLogger(__name__)

#: Origins asked at once on behalf of all queries: one query naming many servers must
#: not become as many simultaneous outbound requests.
MAX_CONCURRENT_FETCHES = 10
#: Origins one query may cause to be asked: the query is unauthenticated, and each
#: uncached server costs well-known, SRV and key requests.  The other servers are
#: answered from what is stored (their keys are fetched when a later query names them).
MAX_FETCHES_PER_QUERY = 10


class DirectKeyRefresher(Protocol):
    """What the notary uses of the keyring (``Keyring.fetch_directly``)."""

    async def fetch_directly(
        self, server_name: str, key_ids: Sequence[str], minimum_valid_until_ts: int
    ) -> None: ...


@attrs.frozen
class KeyQuery:
    """What one server's keys are asked for."""

    server_name: str
    #: key ID -> the time it should be valid until (None: now).  Empty: every key.
    key_ids: Mapping[str, int | None]
    #: For a query of every key: the time they should be valid until (None: now).
    minimum_valid_until_ts: int | None = None


class KeyNotary:
    def __init__(
        self,
        *,
        local_keys: LocalServerKeys,
        store: ServerKeyStore,
        keyring: DirectKeyRefresher,
        clock: Clock,
        domain_whitelist: frozenset[str] | None,
        limiter: RateLimiter,
    ) -> None:
        """``limiter``: ``rc_key_query``, keyed by client address."""
        self._local = local_keys
        self._store = store
        self._keyring = keyring
        self._clock = clock
        self._whitelist = domain_whitelist
        self._limiter = limiter
        self._fetch_slots = defer.DeferredSemaphore(MAX_CONCURRENT_FETCHES)

    async def query(self, queries: Sequence[KeyQuery], *, requester: str) -> list[dict[str, Any]]:
        """The ``server_keys`` list answering ``queries``: the key responses found,
        each signed by us too.  Servers we know nothing of are left out.

        ``requester`` is the client's address: if answering would make us ask some
        origin, it takes a token of its ``rc_key_query`` bucket before anything is
        asked; with none left it gets what is stored, stale or not, and 429
        ``M_LIMIT_EXCEEDED`` only when nothing is; answers from what is stored do
        not count.
        """
        stored = await defer.gatherResults(
            [defer.ensureDeferred(self._stored(query)) for query in queries],
            consumeErrors=True,
        )
        # Which origins to ask: the first MAX_FETCHES_PER_QUERY needing it, in order.
        budget = MAX_FETCHES_PER_QUERY
        asks: list[bool] = []
        for query, rows in zip(queries, stored, strict=True):
            ask = budget > 0 and self._should_ask(query, rows)
            if ask:
                budget -= 1
            asks.append(ask)
        if any(asks) and self._limiter.check(requester) > 0:
            if not any(stored):
                self._limiter.ratelimit(requester)  # 429: nothing to answer with
            # Over the limit: what is stored, even if stale, rather than nothing.
            asks = [False] * len(asks)
        answers = await defer.gatherResults(
            [
                defer.ensureDeferred(self._answer(query, rows, ask))
                for query, rows, ask in zip(queries, stored, asks, strict=True)
            ],
            consumeErrors=True,
        )
        return [response for answer in answers for response in answer]

    async def _stored(self, query: KeyQuery) -> Mapping[str, StoredKeyResponse]:
        if query.server_name == self._local.server_name:
            return {}
        return await self._store.get_key_responses(query.server_name, list(query.key_ids) or None)

    def _should_ask(self, query: KeyQuery, stored: Mapping[str, StoredKeyResponse]) -> bool:
        return (
            query.server_name != self._local.server_name
            and self._needs_refresh(query, stored)
            and self._may_ask(query.server_name)
        )

    async def _answer(
        self, query: KeyQuery, stored: Mapping[str, StoredKeyResponse], ask: bool
    ) -> list[dict[str, Any]]:
        if query.server_name == self._local.server_name:
            return [self._local.server_keys_response()]
        key_ids = list(query.key_ids) or None
        wanted_until = self._wanted_until(query)
        if ask:
            try:
                await self._fetch_slots.run(
                    self._refresh, query.server_name, list(query.key_ids), wanted_until
                )
            except KeyFetchError as error:
                # Serve what we have: stale keys still check old signatures.
                logger.info("notary: no fresh keys of %s: %s", query.server_name, error.reason)
            else:
                stored = await self._store.get_key_responses(query.server_name, key_ids)
        # One response listing several keys is stored once per key: serve it once.
        texts = dict.fromkeys(row.key_json for row in stored.values())
        return [self._countersigned(text) for text in texts]

    async def _refresh(self, server_name: str, key_ids: list[str], valid_until: int) -> None:
        await self._keyring.fetch_directly(server_name, key_ids, valid_until)

    def _wanted_until(self, query: KeyQuery) -> int:
        # The spec: "If not supplied, the notary server MUST use the current time."
        now = self._clock.time_msec()
        minimums = [m for m in query.key_ids.values() if m is not None]
        if query.minimum_valid_until_ts is not None:
            minimums.append(query.minimum_valid_until_ts)
        return max(minimums, default=now)

    def _needs_refresh(self, query: KeyQuery, stored: Mapping[str, StoredKeyResponse]) -> bool:
        now = self._clock.time_msec()
        if not query.key_ids:
            if not stored:
                return True
            wanted = query.minimum_valid_until_ts or now
            newest = max(stored.values(), key=lambda row: row.ts_added_ms)
            return max(
                row.ts_valid_until_ms for row in stored.values()
            ) < wanted or _past_half_life(newest, now)
        for key_id, minimum in query.key_ids.items():
            row = stored.get(key_id)
            if row is None:
                return True
            if _expired_when_received(row):
                # An old key: asking again cannot make it valid for longer.
                continue
            if row.ts_valid_until_ms < (minimum or now) or _past_half_life(row, now):
                return True
        return False

    def _may_ask(self, server_name: str) -> bool:
        return self._whitelist is None or server_name in self._whitelist

    def _countersigned(self, key_json: str) -> dict[str, Any]:
        response = json.loads(key_json)
        signed: dict[str, Any] = sign_json(
            response, self._local.server_name, self._local.signing_key
        )
        return signed


def _past_half_life(row: StoredKeyResponse, now: int) -> bool:
    return (row.ts_added_ms + row.ts_valid_until_ms) // 2 < now


def _expired_when_received(row: StoredKeyResponse) -> bool:
    return row.ts_valid_until_ms < row.ts_added_ms
