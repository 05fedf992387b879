"""The keyring: checks other servers' signatures, finding their public keys.

A key is looked up in memory, then in the database (``server_key_responses``), then
asked of the trusted notaries (all at once) and, if they do not have it, of the
server itself.  Every response a fetcher returns has been checked (see
``fetchers``); the keyring stores each, so keys survive restarts and the notary can
serve them again.

Validity: a key signs for a time ``valid_at_ts`` only if it is valid then — a
current key until the lesser of its response's ``valid_until_ts`` and 7 days after
we received it, an old key until its ``expired_ts``.  Callers that must not enforce
validity (room versions before 5, ``enforce_key_validity``) pass 0.

Concurrent lookups of the same keys share one fetch, and a key that could not be
found is not looked for remotely again for :data:`RETRY_AFTER_FAILURE_MS` (a flood
of requests signed with an unknown key costs one lookup a minute); the database is
read every time, and the failure is per key ID, so a forged request naming a bogus
key of a server does not hold off that server's real keys; the notary asks a
server itself at most once a minute (:meth:`Keyring.fetch_directly`).  Our own keys
come from :class:`LocalServerKeys`, never over HTTP.

In-process state (docs/architecture.md, per-process state): the key cache and the
times of the last lookups.  Both are safe per process: keys never change under an ID (a new
response only extends or ends a key's validity, read from the database by the
next lookup that needs more), and a failure only delays one process's next attempt.

spec: server-server-api.md#retrieving-server-keys,
server-server-api.md#validating-hashes-and-signatures-on-received-events
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs
from canonicaljson import encode_canonical_json
from signedjson.types import VerifyKey
from twisted.internet import defer

from federation.keys.errors import KeyFetchError, KeyVerificationError
from federation.keys.fetchers import FetchedKeys, KeyFetcher
from federation.keys.local import LocalServerKeys
from federation.keys.responses import parse_key_response, verify_signature
from homeserver.clock import Clock
from homeserver.storage.server_keys import ServerKeyStore
from homeserver.util.caches import LruCache
from homeserver.util.single_flight import SingleFlight

logger = logging.getLogger(__name__)

#: How long a server whose keys could not be found is left alone.
RETRY_AFTER_FAILURE_MS = 60_000
#: Keys kept in memory (a server has one or two): enough for every server of a
#: large federation, a few megabytes at most.
KEY_CACHE_SIZE = 20_000
#: Signatures of one server on one object that are looked at: real servers sign with
#: one key.  More would let one request trigger many lookups.
MAX_SIGNATURES_PER_SERVER = 10
#: Attempt records kept (least recently used out).
_MAX_ATTEMPT_RECORDS = 10_000

_ED25519 = "ed25519:"


@attrs.frozen
class _KnownKey:
    verify_key: VerifyKey
    #: Until when the key may be believed (see the module docstring).
    valid_until_ts: int


@attrs.frozen
class _Attempt:
    """The last lookup of a kind for a server."""

    at_ms: int
    #: Why it found nothing usable; None if it succeeded.
    failure: str | None


class Keyring:
    """Implements ``federation.transport.server.KeyVerifier``."""

    def __init__(
        self,
        *,
        local_keys: LocalServerKeys,
        store: ServerKeyStore,
        notaries: Sequence[KeyFetcher],
        direct: KeyFetcher,
        clock: Clock,
    ) -> None:
        self._local = local_keys
        self._store = store
        self._notaries = list(notaries)
        self._direct = direct
        self._clock = clock
        self._keys: LruCache[tuple[str, str], _KnownKey] = LruCache(KEY_CACHE_SIZE)
        #: (kind of lookup, server, key ID) -> the last lookup: "any" (for a
        #: signature: a failure holds off the next lookup of that key for a minute) or
        #: "direct" with key ID "" (the notary's: at most one a minute, whatever its
        #: outcome).
        #: Bounded (LRU): a flood of made-up servers and key IDs evicts old records
        #: instead of growing memory; an evicted failure only allows an earlier retry.
        self._attempts: LruCache[tuple[str, str, str], _Attempt] = LruCache(_MAX_ATTEMPT_RECORDS)
        self._flights: SingleFlight[tuple[str, str, frozenset[str]], str | None] = SingleFlight()

    async def verify_json_for_server(
        self, server_name: str, json_object: Mapping[str, Any], valid_at_ts: int
    ) -> None:
        """Return only if ``json_object`` is signed by ``server_name`` with at least
        one key we can get that is valid at ``valid_at_ts``, and every signature of
        ``server_name`` with such a key is correct; else :class:`KeyVerificationError`.

        Signatures with keys we cannot get, or that expired before ``valid_at_ts``,
        are skipped (spec: "If a signature is from an unknown or expired key, it is
        skipped"), as long as one remains.
        """
        signatures = json_object.get("signatures")
        by_server = signatures.get(server_name) if isinstance(signatures, Mapping) else None
        if not isinstance(by_server, Mapping) or not by_server:
            raise KeyVerificationError(server_name, f"not signed by {server_name}")
        key_ids = [
            key_id
            for key_id in by_server
            if isinstance(key_id, str) and key_id.startswith(_ED25519)
        ]
        if not key_ids:
            raise KeyVerificationError(server_name, f"no ed25519 signature of {server_name}")
        if len(key_ids) > MAX_SIGNATURES_PER_SERVER:
            raise KeyVerificationError(
                server_name, f"more than {MAX_SIGNATURES_PER_SERVER} signatures of {server_name}"
            )
        keys, failure = await self._lookup(server_name, key_ids, valid_at_ts)
        if not keys:
            reason = f"no key of {server_name} valid at {valid_at_ts} among {sorted(key_ids)}"
            raise KeyVerificationError(
                server_name, reason if failure is None else f"{reason} ({failure})"
            )
        for verify_key in keys.values():
            try:
                verify_signature(json_object, server_name, verify_key)
            except KeyFetchError as error:
                raise KeyVerificationError(server_name, error.reason) from None

    async def get_verify_keys(
        self, server_name: str, key_ids: Collection[str], valid_at_ts: int
    ) -> dict[str, VerifyKey]:
        """By key ID, those of ``key_ids`` we can get that are valid at ``valid_at_ts``
        (the others are left out)."""
        keys, _ = await self._lookup(server_name, key_ids, valid_at_ts)
        return keys

    async def fetch_directly(
        self, server_name: str, key_ids: Collection[str], minimum_valid_until_ts: int
    ) -> None:
        """Ask ``server_name`` itself for its keys and store its response (for the
        notary, which serves what is stored), at most once every
        :data:`RETRY_AFTER_FAILURE_MS`: within that time of the last attempt this
        returns at once if it succeeded.  :class:`KeyFetchError` if the attempt
        failed.  The response counts even if it does not list ``key_ids`` valid
        until ``minimum_valid_until_ts``: it is what the server has."""
        recent = self._recent_attempt("direct", server_name, "")
        if recent is not None:
            if recent.failure is not None:
                raise KeyFetchError(f"lookup failed recently, not retried yet: {recent.failure}")
            return
        failure = await self._flights.run(
            # One request returns every key, whichever are wanted.
            ("direct", server_name, frozenset()),
            lambda: self._fetch_from("direct", [[self._direct]], server_name, (), 0),
        )
        if failure is not None:
            raise KeyFetchError(failure)

    async def _lookup(
        self, server_name: str, key_ids: Collection[str], valid_at_ts: int
    ) -> tuple[dict[str, VerifyKey], str | None]:
        """The keys found valid, and why the others could not be found (None: they
        were not looked for remotely)."""
        if server_name == self._local.server_name:
            return {
                key_id: key
                for key_id, (key, valid_until_ts) in self._local.verify_keys().items()
                if key_id in key_ids and valid_until_ts >= valid_at_ts
            }, f"not one of our keys valid at {valid_at_ts}"
        found, missing = self._from_memory(server_name, key_ids, valid_at_ts)
        if not missing:
            return found, None
        # The database first, always: another process (or an earlier lookup for another
        # key) may have stored what is missing.
        await self._load_stored(server_name, missing)
        found, missing = self._from_memory(server_name, key_ids, valid_at_ts)
        if not missing:
            return found, None
        # Keys that were just looked for in vain are not asked for again; the failure
        # is remembered per key ID, so a request naming a bogus key of a server does not
        # hold off that server's real (e.g. new) keys.
        failures = {key_id: self._recent_failure("any", server_name, key_id) for key_id in missing}
        to_fetch = [key_id for key_id, failure in failures.items() if failure is None]
        failure = next((f for f in failures.values() if f is not None), None)
        if to_fetch:
            failure = await self._flights.run(
                ("any", server_name, frozenset(to_fetch)),
                lambda: self._fetch_from(
                    "any", [self._notaries, [self._direct]], server_name, to_fetch, valid_at_ts
                ),
            )
            found, missing = self._from_memory(server_name, key_ids, valid_at_ts)
        return found, failure

    def _from_memory(
        self, server_name: str, key_ids: Collection[str], valid_at_ts: int
    ) -> tuple[dict[str, VerifyKey], list[str]]:
        found: dict[str, VerifyKey] = {}
        missing: list[str] = []
        for key_id in key_ids:
            known = self._keys.get((server_name, key_id))
            if known is not None and known.valid_until_ts >= valid_at_ts:
                found[key_id] = known.verify_key
            else:
                missing.append(key_id)
        return found, missing

    async def _load_stored(self, server_name: str, key_ids: Collection[str]) -> None:
        stored = await self._store.get_key_responses(server_name, key_ids)
        for key_id, row in stored.items():
            try:
                response = parse_key_response(json.loads(row.key_json), expected_server=server_name)
            except (KeyFetchError, ValueError) as error:
                logger.warning("stored key response of %s is unusable: %s", server_name, error)
                continue
            key = response.keys.get(key_id)
            if key is not None:
                self._keys.set(
                    (server_name, key_id),
                    _KnownKey(key.verify_key, key.usable_until(row.ts_added_ms)),
                )

    async def _fetch_from(
        self,
        kind: str,
        groups: Sequence[Sequence[KeyFetcher]],
        server_name: str,
        key_ids: Collection[str],
        valid_at_ts: int,
    ) -> str | None:
        """Ask each group of fetchers in turn (the fetchers of a group together) until
        every key is found valid, storing what they answer.  None when it was, else
        why not (also recorded as a failure of ``kind``)."""
        problems: list[str] = []
        missing = list(key_ids)
        for group in groups:
            if not group:
                continue
            outcomes = await defer.gatherResults(
                [
                    defer.ensureDeferred(self._ask(fetcher, server_name, key_ids, valid_at_ts))
                    for fetcher in group
                ],
                consumeErrors=True,
            )
            for fetched, problem in outcomes:
                if problem is not None:
                    problems.append(problem)
                for response in fetched:
                    await self._remember(response)
            _, missing = self._from_memory(server_name, key_ids, valid_at_ts)
            # A lookup of every key (no key IDs) succeeds when a response came.
            if not missing and (key_ids or not problems):
                self._record_attempts(kind, server_name, key_ids, None)
                return None
        reason = "; ".join(problems) or (
            f"{server_name} has no key {', '.join(sorted(key_ids))} valid at {valid_at_ts}"
        )
        self._record_attempts(kind, server_name, missing if key_ids else (), reason)
        return reason

    async def _ask(
        self, fetcher: KeyFetcher, server_name: str, key_ids: Collection[str], valid_at_ts: int
    ) -> tuple[list[FetchedKeys], str | None]:
        try:
            return await fetcher.fetch(server_name, key_ids, valid_at_ts), None
        except KeyFetchError as error:
            logger.info("no keys of %s from %s: %s", server_name, fetcher.description, error.reason)
            return [], error.reason

    async def _remember(self, fetched: FetchedKeys) -> None:
        response = fetched.response
        received_ts = self._clock.time_msec()
        await self._store.store_key_response(
            server_name=response.server_name,
            from_server=fetched.from_server,
            ts_added_ms=received_ts,
            valid_until_by_key={
                key_id: key.valid_until_ts for key_id, key in response.keys.items()
            },
            key_json=_canonical_json(response.json),
        )
        for key_id, key in response.keys.items():
            self._keys.set(
                (response.server_name, key_id),
                _KnownKey(key.verify_key, key.usable_until(received_ts)),
            )

    def _recent_attempt(self, kind: str, server_name: str, key_id: str) -> _Attempt | None:
        key = (kind, server_name, key_id)
        attempt = self._attempts.get(key)
        if attempt is None:
            return None
        if self._clock.time_msec() - attempt.at_ms >= RETRY_AFTER_FAILURE_MS:
            self._attempts.invalidate(key)
            return None
        return attempt

    def _recent_failure(self, kind: str, server_name: str, key_id: str) -> str | None:
        attempt = self._recent_attempt(kind, server_name, key_id)
        if attempt is None or attempt.failure is None:
            return None
        return f"lookup failed recently, not retried yet: {attempt.failure}"

    def _record_attempts(
        self, kind: str, server_name: str, key_ids: Collection[str], failure: str | None
    ) -> None:
        """Remember the outcome per key ID ("" for a lookup of every key)."""
        now = self._clock.time_msec()
        for key_id in key_ids or ("",):
            self._attempts.set((kind, server_name, key_id), _Attempt(now, failure))


def _canonical_json(value: Mapping[str, Any]) -> str:
    # What the signatures were computed over, once the signatures are set aside;
    # canonical JSON escapes every control character, so the text holds no NUL.
    text: str = encode_canonical_json(value).decode("utf-8")
    return text
