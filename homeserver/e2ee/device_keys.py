"""Device keys, one-time keys and fallback keys: upload, query, claim, and what
``/sync`` reports to a device about its own keys.

The server only relays public keys, but it checks what it relays: device keys must
be the uploading device's own and self-signed by its Ed25519 key, and signed
one-time and fallback keys must be signed by that key, so a buggy client cannot
publish keys its peers would reject.  Key objects are stored as canonical JSON and
handed out exactly as uploaded (signatures cover them byte for byte).

spec: client-server-api/modules/end_to_end_encryption.md ("Device keys", "One-time
and fallback keys", "Uploading keys", "Extensions to /sync"), appendices.md#signing-json,
#post_matrixclientv3keysupload, #post_matrixclientv3keysquery,
#post_matrixclientv3keysclaim (data/api/client-server/keys.yaml)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs
from signedjson.types import VerifyKey

from homeserver import errors
from homeserver.clock import Clock
from homeserver.e2ee.cross_signing import CrossSigningHandler
from homeserver.e2ee.device_lists import DeviceListTracker
from homeserver.e2ee.signing import canonical_key_json, ed25519_verify_key, verify_signature
from homeserver.storage.e2e_keys import E2eKeysStore, KeyRow
from homeserver.sync.sections import SectionRequest

#: Always reported in one-time key counts, 0 included: clients (Element, the Rust SDK)
#: read a missing count as "unknown" and may not top their keys up.
SIGNED_CURVE25519 = "signed_curve25519"

#: What ``failures`` says for a remote server when this server does not federate.
_NO_FEDERATION = {"status": 503, "message": "Federation is not available"}
#: How long a query or claim waits for other servers when the client names no
#: ``timeout`` (the spec's default).
DEFAULT_REMOTE_TIMEOUT_MS = 10_000


@attrs.frozen
class RemoteKeysAnswer:
    """What other servers said of their users' keys (``/keys/query``)."""

    device_keys: dict[str, dict[str, Any]]
    master_keys: dict[str, Any]
    self_signing_keys: dict[str, Any]
    #: server name → error, for servers that could not be asked or failed.
    failures: dict[str, Any]


class RemoteKeys(Protocol):
    """Keys of users on other servers (federation/e2ee: ``POST /user/keys/query``
    and ``/user/keys/claim``, or the cache of device lists kept current by
    ``m.device_list_update``)."""

    async def query_remote(
        self, device_keys: Mapping[str, Sequence[str]], timeout_ms: int
    ) -> RemoteKeysAnswer:
        """``{user: [device IDs] or []}``, every user remote."""

    async def claim_remote(
        self, one_time_keys: Mapping[str, Mapping[str, str]], timeout_ms: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(one_time_keys, failures)`` for ``{user: {device: algorithm}}``, every
        user remote."""


class DeviceKeysHandler:
    def __init__(
        self,
        store: E2eKeysStore,
        *,
        server_name: str,
        clock: Clock,
        device_lists: DeviceListTracker,
        cross_signing: CrossSigningHandler,
    ) -> None:
        self._store = store
        self._server_name = server_name
        self._clock = clock
        #: Told of new or changed device keys; answers ``/keys/changes``.
        self.device_lists = device_lists
        #: Adds the cross-signing keys and signatures to ``/keys/query``.
        self._cross_signing = cross_signing
        #: The ``/sync`` section of each device's own keys.
        self.sync = DeviceKeysSection(self)
        #: Other servers' users' keys; None: this server does not federate.
        self._remote: RemoteKeys | None = None

    def use_remote_keys(self, remote: RemoteKeys) -> None:
        """Answer for users of other servers through ``remote`` (federation is built
        after the homeserver's handlers: federation/assembly.py calls this)."""
        self._remote = remote

    # -- upload ------------------------------------------------------------------

    async def upload(
        self, user_id: str, device_id: str | None, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``POST /keys/upload``: the response (``one_time_key_counts``)."""
        if device_id is None:
            raise errors.invalid_param("Keys can only be uploaded by a device")
        device_keys = body.get("device_keys")
        stored_json = await self._store.get_device_keys(user_id, device_id)
        stored = json.loads(stored_json) if stored_json is not None else None
        new_device_keys: str | None = None
        if device_keys is not None:
            checked = _check_device_keys(device_keys, user_id, device_id)
            if stored is not None and stored.get("keys") != checked["keys"]:
                # A device's identity keys are its identity: peers that verified the
                # old ones would silently trust the new.  New keys, new device.
                raise errors.invalid_param(
                    "This device already has different identity keys; log in as a new"
                    " device to use new keys"
                )
            new_device_keys = canonical_key_json(checked)
            stored = checked
        # One-time and fallback keys are checked against the device's Ed25519 key
        # once it is known (uploaded now or before).
        verify_key = _device_verify_key(stored, device_id) if stored is not None else None
        one_time = _check_keys(body.get("one_time_keys"), "one_time_keys", user_id, verify_key)
        fallback = _check_keys(body.get("fallback_keys"), "fallback_keys", user_id, verify_key)
        algorithms = [algorithm for algorithm, _, _ in fallback]
        if len(set(algorithms)) != len(algorithms):
            raise errors.invalid_param("At most one fallback key per algorithm may be uploaded")
        result = await self._store.upload(
            user_id,
            device_id,
            device_keys=new_device_keys,
            one_time_keys=one_time,
            fallback_keys=fallback,
            now_ms=self._clock.time_msec(),
        )
        if result.conflicts:
            raise errors.invalid_param(
                "One-time key already exists with different content: "
                + ", ".join(sorted(result.conflicts)[:10])
            )
        if new_device_keys is not None and new_device_keys != stored_json:
            # New or re-signed device keys: whoever tracks the user must query again.
            await self.device_lists.user_devices_changed(user_id)
        return {"one_time_key_counts": _with_default(result.counts)}

    # -- query -------------------------------------------------------------------

    async def query(
        self,
        requester: str,
        device_keys: Mapping[str, list[str]],
        timeout_ms: int = DEFAULT_REMOTE_TIMEOUT_MS,
    ) -> dict[str, Any]:
        """``POST /keys/query`` by ``requester`` for ``{user: [device IDs] or []}``
        (already checked).

        Local users' keys, each device's with ``unsigned.device_display_name``, and
        their cross-signing keys with the signatures ``requester`` may see; users of
        other servers through federation (their servers' failures in ``failures``).
        """
        local = {u: d for u, d in device_keys.items() if self._is_local(u)}
        remote = {u: d for u, d in device_keys.items() if not self._is_local(u)}
        answer = await self.query_local(requester, local)
        if not remote:
            return answer
        if self._remote is None:
            answer["failures"] = {_server_of(u): dict(_NO_FEDERATION) for u in remote}
            return answer
        found = await self._remote.query_remote(remote, timeout_ms)
        await self._cross_signing.add_to_remote_query(requester, found.master_keys)
        answer["device_keys"].update(found.device_keys)
        answer["master_keys"].update(found.master_keys)
        answer["self_signing_keys"].update(found.self_signing_keys)
        answer["failures"].update(found.failures)
        return answer

    async def query_local(
        self, requester: str, device_keys: Mapping[str, Sequence[str]]
    ) -> dict[str, Any]:
        """:meth:`query` for local users only (also what other servers are told:
        ``POST /user/keys/query``, with a requester that is nobody here)."""
        result: dict[str, dict[str, Any]] = {}
        local: list[tuple[str, list[str]]] = []
        for user_id, device_ids in device_keys.items():
            if self._is_local(user_id):
                local.append((user_id, list(device_ids)))
                result[user_id] = {}
        for stored in await self._store.get_device_keys_for(local) if local else []:
            keys = json.loads(stored.key_json)
            if stored.display_name is not None:
                keys["unsigned"] = {"device_display_name": stored.display_name}
            result[stored.user_id][stored.device_id] = keys
        cross_signing = await self._cross_signing.add_to_query(
            requester, [user_id for user_id, _ in local], result
        )
        return {"device_keys": result, "failures": {}, **cross_signing}

    # -- claim -------------------------------------------------------------------

    async def claim(
        self,
        one_time_keys: Mapping[str, Mapping[str, str]],
        timeout_ms: int = DEFAULT_REMOTE_TIMEOUT_MS,
    ) -> dict[str, Any]:
        """``POST /keys/claim`` for ``{user: {device: algorithm}}`` (already checked):
        one key per device, a one-time key while any is left, else the fallback key;
        users of other servers through federation."""
        local = {u: d for u, d in one_time_keys.items() if self._is_local(u)}
        remote = {u: d for u, d in one_time_keys.items() if not self._is_local(u)}
        answer = await self.claim_local(local)
        if not remote:
            return answer
        if self._remote is None:
            answer["failures"] = {_server_of(u): dict(_NO_FEDERATION) for u in remote}
            return answer
        claimed, failures = await self._remote.claim_remote(remote, timeout_ms)
        answer["one_time_keys"].update(claimed)
        answer["failures"].update(failures)
        return answer

    async def claim_local(self, one_time_keys: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
        """:meth:`claim` for local users only (also ``POST /user/keys/claim``): each
        key is handed out once, whoever claims it."""
        wanted = [
            (user_id, device, algorithm)
            for user_id, devices in one_time_keys.items()
            if self._is_local(user_id)
            for device, algorithm in devices.items()
        ]
        result: dict[str, dict[str, dict[str, Any]]] = {}
        for key in await self._store.claim(wanted) if wanted else []:
            result.setdefault(key.user_id, {})[key.device_id] = {
                f"{key.algorithm}:{key.key_id}": json.loads(key.key_json)
            }
        return {"one_time_keys": result, "failures": {}}

    # -- sync --------------------------------------------------------------------

    async def sync_fields(self, user_id: str, device_id: str | None) -> dict[str, Any]:
        """``device_one_time_keys_count`` and ``device_unused_fallback_key_types`` for
        the syncing device (one query)."""
        if device_id is None:
            return {"device_one_time_keys_count": {}, "device_unused_fallback_key_types": []}
        counts, unused = await self._store.sync_key_state(user_id, device_id)
        return {
            "device_one_time_keys_count": _with_default(counts),
            "device_unused_fallback_key_types": unused,
        }

    def _is_local(self, user_id: str) -> bool:
        return _server_of(user_id) == self._server_name


class DeviceKeysSection:
    """The requesting device's own keys: ``device_one_time_keys_count`` and
    ``device_unused_fallback_key_types``, top-level keys of every response (``key``
    None), one query.  A change of counts is not news: a claim does not wake the
    device's waiting ``/sync``; the next response carries the new counts.

    spec: client-server-api/modules/end_to_end_encryption.md#extensions-to-sync
    """

    key = None

    def __init__(self, keys: DeviceKeysHandler) -> None:
        self._keys = keys

    async def build(self, request: SectionRequest) -> dict[str, Any]:
        return await self._keys.sync_fields(request.user_id, request.device_id)

    def has_news(self, body: dict[str, Any]) -> bool:
        return False


def _server_of(user_id: str) -> str:
    return user_id.partition(":")[2]


def _with_default(counts: dict[str, int]) -> dict[str, int]:
    return {SIGNED_CURVE25519: 0, **counts}


def _check_device_keys(value: Any, user_id: str, device_id: str) -> dict[str, Any]:
    """The uploaded DeviceKeys object, checked, without ``unsigned`` (what servers
    add; never stored from the client)."""
    if not isinstance(value, dict):
        raise errors.bad_json("'device_keys' must be an object")
    if value.get("user_id") != user_id:
        raise errors.invalid_param("'device_keys.user_id' must be your user ID")
    if value.get("device_id") != device_id:
        raise errors.invalid_param("'device_keys.device_id' must be this device's ID")
    algorithms = value.get("algorithms")
    if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
        raise errors.bad_json("'device_keys.algorithms' must be a list of strings")
    keys = value.get("keys")
    if not isinstance(keys, dict) or not all(isinstance(k, str) for k in keys.values()):
        raise errors.bad_json("'device_keys.keys' must be an object of strings")
    if not isinstance(value.get("signatures"), dict):
        raise errors.bad_json("'device_keys.signatures' must be an object")
    checked = {k: v for k, v in value.items() if k != "unsigned"}
    verify_key = _device_verify_key(checked, device_id)
    _verify(checked, user_id, verify_key, "device_keys")
    return checked


def _device_verify_key(device_keys: Mapping[str, Any], device_id: str) -> VerifyKey:
    """The device's Ed25519 key (``keys["ed25519:<device_id>"]``), which signs its
    other keys (spec: "Uploading keys")."""
    key_id = f"ed25519:{device_id}"
    encoded = device_keys.get("keys", {}).get(key_id)
    if not isinstance(encoded, str):
        raise errors.invalid_param(f"'device_keys.keys' must include {key_id!r}")
    return ed25519_verify_key(key_id, encoded)


def _verify(value: dict[str, Any], user_id: str, verify_key: VerifyKey, what: str) -> None:
    verify_signature(
        value, user_id, verify_key, f"{what}: no valid signature by the device's Ed25519 key"
    )


def _check_keys(value: Any, field: str, user_id: str, verify_key: VerifyKey | None) -> list[KeyRow]:
    """``one_time_keys`` / ``fallback_keys``: ``{"<algorithm>:<key_id>": key}`` as rows.

    A key is a string (an unsigned algorithm such as ``curve25519``) or a key object
    (``key``, ``signatures``; ``signed_*`` algorithms must use one), whose signature
    is checked when the device's key is known.
    """
    if value is None:
        return []
    if not isinstance(value, dict):
        raise errors.bad_json(f"'{field}' must be an object")
    rows: list[KeyRow] = []
    for name, key in value.items():
        algorithm, _, key_id = name.partition(":")
        if not algorithm or not key_id:
            raise errors.invalid_param(f"{field}: {name!r} is not '<algorithm>:<key_id>'")
        if isinstance(key, str):
            if algorithm.startswith("signed_"):
                raise errors.bad_json(f"{field}: {name!r} must be a signed key object")
        elif isinstance(key, dict):
            if not isinstance(key.get("key"), str) or not isinstance(key.get("signatures"), dict):
                raise errors.bad_json(f"{field}: {name!r} needs 'key' and 'signatures'")
            if verify_key is not None:
                _verify(key, user_id, verify_key, f"{field}: {name!r}")
        else:
            raise errors.bad_json(f"{field}: {name!r} must be a string or an object")
        rows.append((algorithm, key_id, canonical_key_json(key)))
    return rows
