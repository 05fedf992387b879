"""Cross-signing: a user's master, self-signing and user-signing keys, the signatures
uploaded for devices and master keys, and what ``/keys/query`` shows of them.

The server checks what it relays, as for device keys: a self-signing or user-signing
key must be signed by the user's master key, and every uploaded signature must
verify against the key it claims to be by, over the very object the server holds.

Consistency rules (chosen here; the spec leaves them to the server):

- A new master key drops the stored self-signing and user-signing keys it does not
  come with: they were signed by the old master key, so a client would reject them
  (and with them the user's whole identity).  The user's clients upload new ones.
- A replaced key takes the signatures that depended on it along: those a replaced
  self-signing or user-signing key made, and those made of a replaced master key.
- Signatures of a device are not deleted with the device, but each records the
  device's Ed25519 key it signed and is served only while the device (ID) has that
  key: a device re-created under the same ID never shows its predecessor's.
- Account deactivation deletes the user's keys and every signature of or by them.

spec: client-server-api/modules/end_to_end_encryption.md#cross-signing,
("Key and signature security"), #post_matrixclientv3keysdevice_signingupload,
#post_matrixclientv3keyssignaturesupload, #post_matrixclientv3keysquery
(data/api/client-server/cross_signing.yaml, keys.yaml,
definitions/cross_signing_key.yaml), appendices.md#signing-json
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, Protocol

import attrs
from signedjson.types import VerifyKey

from homeserver import errors
from homeserver.clock import Clock
from homeserver.e2ee.signing import canonical_key_json, ed25519_verify_key, verify_signature
from homeserver.errors import Codes, MatrixError
from homeserver.storage.cross_signing import (
    MASTER,
    CrossSigningStore,
    NewKey,
    StoredCrossSigningKey,
    StoredSignature,
)
from homeserver.storage.e2e_keys import E2eKeysStore

SELF_SIGNING = "self_signing"
USER_SIGNING = "user_signing"
#: Request field → usage, in the order keys are checked (the master key first: it
#: signs the others).
FIELDS = {"master_key": MASTER, "self_signing_key": SELF_SIGNING, "user_signing_key": USER_SIGNING}

#: How often an upload is re-checked when the user's keys change while it is checked.
_ATTEMPTS = 3


class KeyChangeListener(Protocol):
    """Who must hear of changed keys (the device-list tracker, ``e2ee/device_lists.py``)."""

    async def user_devices_changed(self, user_id: str) -> None:
        """Everyone tracking ``user_id``'s keys must fetch them again."""

    async def user_keys_signed_for(self, signer: str, user_id: str) -> None:
        """Only ``signer`` must fetch ``user_id``'s keys again."""


class RemoteMasterKeys(Protocol):
    """Users of other servers' master keys (federation/e2ee: the device-list cache or
    their servers), so a local user can sign them with their user-signing key."""

    async def master_keys(self, user_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """user → master key, for those of ``user_ids`` (all remote) that have one."""


class ReplacementNeedsAuth(Exception):
    """The upload replaces or adds to existing cross-signing keys: the servlet must run
    User-Interactive Authentication and upload again with ``authenticated=True``."""


@attrs.frozen
class _Key:
    usage: str
    public_key: str
    value: dict[str, Any]
    key_json: str

    def verify_key(self) -> VerifyKey:
        return ed25519_verify_key(f"ed25519:{self.public_key}", self.public_key)


class CrossSigningHandler:
    def __init__(
        self,
        store: CrossSigningStore,
        device_keys: E2eKeysStore,
        *,
        server_name: str,
        clock: Clock,
        key_changes: KeyChangeListener,
    ) -> None:
        self._store = store
        self._device_keys = device_keys
        self._server_name = server_name
        self._clock = clock
        #: Told of users whose cross-signing keys or signatures changed, so the users
        #: who track their keys (``device_lists.changed``) hear of it.
        self._key_changes = key_changes
        #: Remote users' master keys; None: this server does not federate.
        self._remote: RemoteMasterKeys | None = None

    def use_remote_master_keys(self, remote: RemoteMasterKeys) -> None:
        """Let local users sign remote users' master keys (federation is built after
        the homeserver's handlers: federation/assembly.py calls this)."""
        self._remote = remote

    # -- POST /keys/device_signing/upload ------------------------------------------

    async def upload_signing_keys(
        self, user_id: str, body: Mapping[str, Any], *, authenticated: bool
    ) -> None:
        """Check and store the uploaded cross-signing keys.

        Raises :class:`ReplacementNeedsAuth` unless ``authenticated`` when the upload
        needs User-Interactive Authentication (spec v1.11): always, except when the
        user has no master key yet, or when every uploaded key is exactly the one
        stored (a retried upload).  Storing is conditional on the keys checked
        against still being the stored ones, so two first uploads racing cannot let
        the second replace the first without authentication.
        """
        uploaded: dict[str, _Key] = {}
        for field, usage in FIELDS.items():
            value = body.get(field)
            if value is not None:
                uploaded[usage] = _check_key(value, field, usage, user_id)
        if not uploaded:
            return
        for _ in range(_ATTEMPTS):
            stored = await self._store.get_user_keys(user_id)
            master = uploaded.get(MASTER) or _stored_key(stored.get(MASTER))
            if master is None:
                raise MatrixError(
                    HTTPStatus.BAD_REQUEST,
                    Codes.MISSING_PARAM,
                    "No master signing key is available: upload 'master_key' with these keys",
                )
            for field, usage in FIELDS.items():
                if usage != MASTER and usage in uploaded:
                    verify_signature(
                        uploaded[usage].value,
                        user_id,
                        master.verify_key(),
                        f"'{field}' is not signed by the master signing key",
                    )
            changed = {
                usage: key
                for usage, key in uploaded.items()
                if usage not in stored or stored[usage].key_json != key.key_json
            }
            if not changed:
                return
            if MASTER in stored and not authenticated:
                raise ReplacementNeedsAuth()
            in_use = await self._store.device_ids_in_use(
                user_id, [key.public_key for key in changed.values()]
            )
            if in_use:
                # Device and cross-signing key IDs share one namespace ("Key and
                # signature security"): servers must keep them apart.
                raise errors.forbidden("Key ID in use: a public key is one of your device IDs")
            drop = (
                [u for u in (SELF_SIGNING, USER_SIGNING) if u in stored and u not in uploaded]
                if MASTER in changed
                else []
            )
            if await self._store.replace_keys(
                user_id,
                expected={usage: key.key_json for usage, key in stored.items()},
                new={u: NewKey(k.public_key, k.key_json) for u, k in changed.items()},
                drop=drop,
                now_ms=self._clock.time_msec(),
            ):
                await self._key_changes.user_devices_changed(user_id)
                return
        raise MatrixError(
            HTTPStatus.CONFLICT,
            Codes.UNKNOWN,
            "The cross-signing keys changed during the upload; try again",
        )

    # -- POST /keys/signatures/upload ---------------------------------------------

    async def upload_signatures(
        self, requester: str, body: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Check and store uploaded signatures: ``{user: {key ID: signed object}}``.

        Accepted: the requester's devices signed by their self-signing key, their
        master key signed by their devices, and another user's master key (of this
        server, or of another fetched through federation) signed by the requester's
        user-signing key.  Each object must be the one the
        server holds (but for ``signatures`` and ``unsigned``).  What cannot be
        accepted is reported per key in ``failures``; the rest is stored.
        """
        local = [u for u in body if self._is_local(u)]
        keys_by_user: dict[str, dict[str, _StoredKey]] = {}
        for stored in await self._store.get_keys(list({requester, *local})):
            keys_by_user.setdefault(stored.user_id, {})[stored.usage] = _StoredKey(stored)
        remote = [u for u in body if not self._is_local(u) and u != requester]
        if remote and self._remote is not None:
            for user_id, value in (await self._remote.master_keys(remote)).items():
                remote_key = _remote_master_key(user_id, value)
                if remote_key is not None:
                    keys_by_user[user_id] = {MASTER: remote_key}
        own_keys = keys_by_user.get(requester, {})
        own_master = own_keys.get(MASTER)
        devices = await self._own_devices(requester, body.get(requester, {}), own_master)

        failures: dict[str, dict[str, Any]] = {}
        signatures: list[StoredSignature] = []
        for user_id, objects in body.items():
            for key_id, signed in objects.items():
                try:
                    if not isinstance(signed, dict) or not isinstance(
                        signed.get("signatures"), dict
                    ):
                        raise errors.bad_json("The signed object must have 'signatures'")
                    if user_id == requester:
                        found = self._own_signatures(requester, key_id, signed, own_keys, devices)
                    elif not self._is_local(user_id) and user_id not in keys_by_user:
                        raise errors.not_found(
                            f"The master key of {user_id} could not be had from their server"
                        )
                    else:
                        found = _user_signature(
                            requester, user_id, key_id, signed, own_keys, keys_by_user
                        )
                except MatrixError as error:
                    failures.setdefault(user_id, {})[key_id] = {
                        "errcode": error.errcode,
                        "error": error.message,
                    }
                    continue
                signatures.extend(found)
        for user_id in sorted(await self._store.add_signatures(signatures)):
            if user_id == requester:
                # Signatures of one's own keys are shown to everyone.
                await self._key_changes.user_devices_changed(requester)
            else:
                # A user-signing key's signature is shown to its signer alone, whose
                # own devices must fetch the signed user's keys again.
                await self._key_changes.user_keys_signed_for(requester, user_id)
        return {"failures": failures}

    async def _own_devices(
        self, user_id: str, objects: Mapping[str, Any], master: _StoredKey | None
    ) -> dict[str, dict[str, Any]]:
        """The stored device keys of the user's devices named in ``objects`` as keys
        or as signers of the master key (one query)."""
        wanted = {key_id for key_id in objects if master is None or key_id != master.public_key}
        if master is not None and isinstance(objects.get(master.public_key), dict):
            signed_by = objects[master.public_key].get("signatures", {})
            if isinstance(signed_by, dict) and isinstance(signed_by.get(user_id), dict):
                wanted.update(
                    key_id.partition(":")[2]
                    for key_id in signed_by[user_id]
                    if isinstance(key_id, str) and key_id.startswith("ed25519:")
                )
        if not wanted:
            return {}
        found = await self._device_keys.get_device_keys_for([(user_id, sorted(wanted))])
        return {stored.device_id: json.loads(stored.key_json) for stored in found}

    def _own_signatures(
        self,
        user_id: str,
        key_id: str,
        signed: dict[str, Any],
        own_keys: Mapping[str, _StoredKey],
        devices: Mapping[str, dict[str, Any]],
    ) -> list[StoredSignature]:
        master = own_keys.get(MASTER)
        mine = _signatures_by(signed, user_id)
        if master is not None and key_id == master.public_key:
            # The master key signed by the user's devices (migrating device
            # verifications to cross-signing).
            _check_same(signed, master.value, "master key")
            already = _signatures_by(master.value, user_id)
            found = []
            for signer_key_id, signature in mine.items():
                if already.get(signer_key_id) == signature or signer_key_id == master.key_id:
                    continue
                device = devices.get(signer_key_id.partition(":")[2])
                device_key = device.get("keys", {}).get(signer_key_id) if device else None
                if not signer_key_id.startswith("ed25519:") or not isinstance(device_key, str):
                    raise errors.invalid_signature(
                        f"{signer_key_id!r} is not the Ed25519 key of one of your devices"
                    )
                _verify_by(signed, user_id, signer_key_id, device_key)
                found.append(
                    StoredSignature(
                        user_id, key_id, user_id, signer_key_id, master.public_key, signature
                    )
                )
            return found
        device = devices.get(key_id)
        if device is None:
            raise errors.not_found(f"{key_id!r} is neither one of your devices nor your master key")
        self_signing = own_keys.get(SELF_SIGNING)
        if self_signing is None:
            raise errors.not_found("You have no self-signing key to sign devices with")
        _check_same(signed, device, "device keys")
        device_signature = mine.get(self_signing.key_id)
        if device_signature is None:
            raise errors.invalid_signature(
                f"A device's keys must be signed by your self-signing key ({self_signing.key_id!r})"
            )
        _verify_by(signed, user_id, self_signing.key_id, self_signing.public_key)
        device_ed25519 = device.get("keys", {}).get(f"ed25519:{key_id}")
        if not isinstance(device_ed25519, str):
            raise errors.not_found(f"Device {key_id!r} has no Ed25519 key")
        return [
            StoredSignature(
                user_id, key_id, user_id, self_signing.key_id, device_ed25519, device_signature
            )
        ]

    # -- POST /keys/query ----------------------------------------------------------

    async def add_to_query(
        self,
        requester: str,
        user_ids: Sequence[str],
        device_keys: Mapping[str, Mapping[str, dict[str, Any]]],
    ) -> dict[str, dict[str, Any]]:
        """The cross-signing part of a ``/keys/query`` response for local ``user_ids``
        (one read transaction): ``master_keys`` and ``self_signing_keys`` of those
        that have them, ``user_signing_keys`` of the requester only, and the stored
        signatures the requester may see merged into the master keys and into the
        device key objects of ``device_keys`` (changed in place).
        """
        master_keys: dict[str, Any] = {}
        self_signing_keys: dict[str, Any] = {}
        user_signing_keys: dict[str, Any] = {}
        if not user_ids:
            return {
                "master_keys": master_keys,
                "self_signing_keys": self_signing_keys,
                "user_signing_keys": user_signing_keys,
            }
        keys, signatures = await self._store.query(user_ids, requester)
        master_ids: dict[str, str] = {}
        for key in keys:
            value = json.loads(key.key_json)
            if key.usage == MASTER:
                master_keys[key.user_id] = value
                master_ids[key.user_id] = key.public_key
            elif key.usage == SELF_SIGNING:
                self_signing_keys[key.user_id] = value
            elif key.usage == USER_SIGNING and key.user_id == requester:
                user_signing_keys[key.user_id] = value
        for sig in signatures:
            target: dict[str, Any] | None
            current: str | None
            if master_ids.get(sig.target_user_id) == sig.target_key_id:
                target = master_keys[sig.target_user_id]
                current = sig.target_key_id
            else:
                target = device_keys.get(sig.target_user_id, {}).get(sig.target_key_id)
                current = (
                    target.get("keys", {}).get(f"ed25519:{sig.target_key_id}") if target else None
                )
            if target is None or current != sig.target_ed25519:
                continue
            signed_by = target.setdefault("signatures", {}).setdefault(sig.signer_user_id, {})
            signed_by[sig.signer_key_id] = sig.signature
        return {
            "master_keys": master_keys,
            "self_signing_keys": self_signing_keys,
            "user_signing_keys": user_signing_keys,
        }

    async def add_to_remote_query(self, requester: str, master_keys: dict[str, Any]) -> None:
        """Merge into remote users' ``master_keys`` (from their servers, changed in
        place) the signatures ``requester`` made of them with their user-signing key."""
        if not master_keys:
            return
        _, signatures = await self._store.query(list(master_keys), requester)
        for sig in signatures:
            key = master_keys.get(sig.target_user_id)
            if sig.signer_user_id != requester or not isinstance(key, dict):
                continue
            if key.get("keys", {}).get(f"ed25519:{sig.target_key_id}") != sig.target_ed25519:
                continue  # a signature of a master key they no longer have
            signed_by = key.setdefault("signatures", {}).setdefault(requester, {})
            signed_by[sig.signer_key_id] = sig.signature

    # -- account deactivation ------------------------------------------------------

    async def forget_user(self, user_id: str, erase: bool = False) -> None:
        """A deactivated account's cross-signing keys and signatures go with it
        (``account.on_deactivate``)."""
        await self._store.forget_user(user_id)

    def _is_local(self, user_id: str) -> bool:
        return user_id.partition(":")[2] == self._server_name


class _StoredKey:
    """A stored cross-signing key, parsed."""

    def __init__(self, stored: StoredCrossSigningKey) -> None:
        self.public_key = stored.public_key
        self.key_id = f"ed25519:{stored.public_key}"
        self.value: dict[str, Any] = json.loads(stored.key_json)


def _user_signature(
    requester: str,
    user_id: str,
    key_id: str,
    signed: dict[str, Any],
    own_keys: Mapping[str, _StoredKey],
    keys_by_user: Mapping[str, Mapping[str, _StoredKey]],
) -> list[StoredSignature]:
    """Another user's master key signed by the requester's user-signing key."""
    master = keys_by_user.get(user_id, {}).get(MASTER)
    if master is None or master.public_key != key_id:
        raise errors.not_found(f"{key_id!r} is not the master signing key of {user_id}")
    user_signing = own_keys.get(USER_SIGNING)
    if user_signing is None:
        raise errors.not_found("You have no user-signing key to sign other users with")
    _check_same(signed, master.value, "master key")
    signature = _signatures_by(signed, requester).get(user_signing.key_id)
    if signature is None:
        raise errors.invalid_signature(
            f"Another user's master key must be signed by your user-signing key"
            f" ({user_signing.key_id!r})"
        )
    _verify_by(signed, requester, user_signing.key_id, user_signing.public_key)
    return [
        StoredSignature(
            user_id, key_id, requester, user_signing.key_id, master.public_key, signature
        )
    ]


def _remote_master_key(user_id: str, value: Mapping[str, Any]) -> _StoredKey | None:
    """A remote user's master key (as their server sent it) as a stored key."""
    keys = value.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        return None
    [(key_id, public_key)] = keys.items()
    if not isinstance(public_key, str) or key_id != f"ed25519:{public_key}":
        return None
    checked = {k: v for k, v in value.items() if k != "unsigned"}
    return _StoredKey(
        StoredCrossSigningKey(user_id, MASTER, public_key, canonical_key_json(checked))
    )


def _stored_key(stored: StoredCrossSigningKey | None) -> _Key | None:
    if stored is None:
        return None
    return _Key(stored.usage, stored.public_key, json.loads(stored.key_json), stored.key_json)


def _check_key(value: Any, field: str, usage: str, user_id: str) -> _Key:
    """An uploaded CrossSigningKey, checked (definitions/cross_signing_key.yaml),
    without ``unsigned``."""
    if not isinstance(value, dict):
        raise errors.bad_json(f"'{field}' must be an object")
    if value.get("user_id") != user_id:
        raise errors.invalid_param(f"'{field}.user_id' must be your user ID")
    usages = value.get("usage")
    if not isinstance(usages, list) or not all(isinstance(u, str) for u in usages):
        raise errors.bad_json(f"'{field}.usage' must be a list of strings")
    if usage not in usages or any(u in FIELDS.values() and u != usage for u in usages):
        raise errors.invalid_param(f"'{field}.usage' must be [{usage!r}]")
    keys = value.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        raise errors.invalid_param(f"'{field}.keys' must hold exactly one key")
    [(key_id, public_key)] = keys.items()
    if not isinstance(public_key, str) or key_id != f"ed25519:{public_key}":
        raise errors.invalid_param(
            f"'{field}.keys' must be {{'ed25519:<public key>': '<public key>'}}"
        )
    ed25519_verify_key(key_id, public_key)
    signatures = value.get("signatures", {})
    if not isinstance(signatures, dict) or not all(
        isinstance(by, dict) and all(isinstance(s, str) for s in by.values())
        for by in signatures.values()
    ):
        raise errors.bad_json(f"'{field}.signatures' must map users to key IDs to signatures")
    checked = {k: v for k, v in value.items() if k != "unsigned"}
    return _Key(usage, public_key, checked, canonical_key_json(checked))


def _verify_by(value: dict[str, Any], user_id: str, key_id: str, public_key: str) -> None:
    verify_signature(
        value, user_id, ed25519_verify_key(key_id, public_key), f"Invalid signature by {key_id!r}"
    )


def _signatures_by(value: Mapping[str, Any], user_id: str) -> dict[str, str]:
    by_user = value.get("signatures", {})
    mine = by_user.get(user_id) if isinstance(by_user, dict) else None
    if not isinstance(mine, dict):
        return {}
    return {k: v for k, v in mine.items() if isinstance(k, str) and isinstance(v, str)}


def _check_same(signed: Mapping[str, Any], stored: Mapping[str, Any], what: str) -> None:
    """The uploaded object must be the stored one but for what signatures do not cover."""
    if _signed_content(signed) != _signed_content(stored):
        raise errors.invalid_param(f"The signed object does not match the stored {what}")


def _signed_content(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k not in ("signatures", "unsigned")}
