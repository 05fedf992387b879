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
    ) -> None:
        self._local = local_keys
        self._store = store
        self._keyring = keyring
        self._clock = clock
        self._whitelist = domain_whitelist
        self._fetch_slots = defer.DeferredSemaphore(MAX_CONCURRENT_FETCHES)

    async def query(self, queries: Sequence[KeyQuery]) -> list[dict[str, Any]]:
        """The ``server_keys`` list answering ``queries``: the key responses found,
        each signed by us too.  Servers we know nothing of are left out."""
        budget = _FetchBudget(MAX_FETCHES_PER_QUERY)
        answers = await defer.gatherResults(
            [defer.ensureDeferred(self._answer(query, budget)) for query in queries],
            consumeErrors=True,
        )
        return [response for answer in answers for response in answer]

    async def _answer(self, query: KeyQuery, budget: _FetchBudget) -> list[dict[str, Any]]:
        if query.server_name == self._local.server_name:
            return [self._local.server_keys_response()]
        key_ids = list(query.key_ids) or None
        stored = await self._store.get_key_responses(query.server_name, key_ids)
        wanted_until = self._wanted_until(query)
        if (
            self._needs_refresh(query, stored)
            and self._may_ask(query.server_name)
            and budget.take()
        ):
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


class _FetchBudget:
    """How many more origins one query may cause to be asked."""

    def __init__(self, remaining: int) -> None:
        self._remaining = remaining

    def take(self) -> bool:
        if self._remaining <= 0:
            return False
        self._remaining -= 1
        return True


def _past_half_life(row: StoredKeyResponse, now: int) -> bool:
    return (row.ts_added_ms + row.ts_valid_until_ms) // 2 < now


def _expired_when_received(row: StoredKeyResponse) -> bool:
    return row.ts_valid_until_ms < row.ts_added_ms
