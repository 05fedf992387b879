"""Server-side key backups: the rules of ``/room_keys/...``.

A user's backup versions are numbered 1, 2, ... and sent as strings.  The *current*
version, the only one keys may be written to ("Keys can only be written to the most
recently created version of the backup"), is the newest version not deleted: after
the newest is deleted the one before it is current again, as deployed servers
(Synapse) behave, so clients that check ``GET /room_keys/version`` see what they can
write to.  Keys may still be read and deleted in any undeleted version.

Version strings that are not numbers we handed out name no version: 404 where a
version is looked up, 403 ``M_WRONG_ROOM_KEYS_VERSION`` (with the current version)
where keys are written while the user has a backup.

spec: client-server-api/modules/end_to_end_encryption.md#server-side-key-backups,
data/api/client-server/key_backup.yaml
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from homeserver import errors
from homeserver.e2ee.backup_records import (
    BackupVersion,
    KeyRank,
    KeysByRoom,
    KeysState,
    NotCurrent,
    RoomKey,
    UploadedKey,
    VersionDeletion,
)
from homeserver.storage.key_backup import KeyBackupStore

#: The one algorithm the spec defines; others (newer, experimental) are stored as
#: opaque as their auth_data, since only clients interpret either.
MEGOLM_BACKUP_V1 = "m.megolm_backup.v1.curve25519-aes-sha2"

#: Versions are positive integers that fit a BIGINT, written without leading zeros.
_VERSION = re.compile(r"[1-9][0-9]{0,17}")


def parse_version(version: str) -> int | None:
    """The number of a version string we could have handed out, else None."""
    return int(version) if _VERSION.fullmatch(version) else None


def replaces(new: RoomKey, stored: KeyRank) -> bool:
    """Whether ``new`` replaces the stored key of the same session.

    spec (end_to_end_encryption.md#server-side-key-backups): "if the keys have
    different values for ``is_verified``, then it will keep the key that has
    ``is_verified`` set to ``true``; if they have the same values for
    ``is_verified``, then it will keep the key with a lower
    ``first_message_index``; and finally, if ``is_verified`` and
    ``first_message_index`` are equal, then it will keep the key with a lower
    ``forwarded_count``."  When all three are equal the spec names no winner; the
    stored key stays, so re-uploading the same key changes nothing (not the etag).
    """
    if new.is_verified != stored.is_verified:
        return new.is_verified
    if new.first_message_index != stored.first_message_index:
        return new.first_message_index < stored.first_message_index
    return new.forwarded_count < stored.forwarded_count


def _unknown_version() -> errors.MatrixError:
    return errors.not_found("Unknown backup version")


def _update_response(state: KeysState) -> dict[str, Any]:
    """``RoomKeysUpdateResponse``."""
    return {"etag": str(state.etag), "count": state.count}


def _key_json(key: RoomKey) -> dict[str, Any]:
    """``KeyBackupData``."""
    return {
        "first_message_index": key.first_message_index,
        "forwarded_count": key.forwarded_count,
        "is_verified": key.is_verified,
        "session_data": key.session_data,
    }


class KeyBackupHandler:
    def __init__(self, store: KeyBackupStore) -> None:
        self._store = store

    # -- versions ------------------------------------------------------------------

    async def create_version(self, user_id: str, algorithm: str, auth_data: dict[str, Any]) -> str:
        """``POST /room_keys/version``: the new version, now the current one."""
        return str(await self._store.create_version(user_id, algorithm, auth_data))

    async def version_info(self, user_id: str, version: str | None) -> dict[str, Any]:
        """``GET /room_keys/version[/{version}]`` (None: the current version)."""
        number = None if version is None else parse_version(version)
        found = None
        if version is None or number is not None:
            found = await self._store.get_version(user_id, number)
        if found is None:
            raise errors.not_found(
                "No current backup version" if version is None else "Unknown backup version"
            )
        return _version_json(found)

    async def update_version(
        self,
        user_id: str,
        version: str,
        algorithm: str,
        auth_data: dict[str, Any],
        body_version: str | None,
    ) -> None:
        """``PUT /room_keys/version/{version}``: only ``auth_data`` changes; the body's
        ``algorithm`` must be the version's, and its ``version``, if given, the path's."""
        if body_version is not None and body_version != version:
            raise errors.invalid_param("The version in the body does not match the path")
        number = parse_version(version)
        found = None if number is None else await self._store.get_version(user_id, number)
        if number is None or found is None:
            raise _unknown_version()
        if algorithm != found.algorithm:
            raise errors.invalid_param("Algorithm does not match")
        if not await self._store.update_auth_data(user_id, number, auth_data):
            # Deleted between the two steps.
            raise _unknown_version()

    async def delete_version(self, user_id: str, version: str) -> None:
        """``DELETE /room_keys/version/{version}``: the version and all its keys; a
        version deleted before succeeds again, as the spec asks."""
        number = parse_version(version)
        if number is None:
            raise _unknown_version()
        if await self._store.delete_version(user_id, number) is VersionDeletion.UNKNOWN:
            raise _unknown_version()

    # -- keys ----------------------------------------------------------------------

    async def upload_keys(
        self, user_id: str, version: str, keys: Sequence[UploadedKey]
    ) -> dict[str, Any]:
        """``PUT /room_keys/keys[/{roomId}[/{sessionId}]]``: store ``keys`` in the
        current version under the replacement rule (:func:`replaces`)."""
        number = parse_version(version)
        # An unparsable version is never current: ask the store with an impossible one
        # so the answer still names the current version.
        result = await self._store.upload_keys(user_id, number or 0, keys, replaces)
        if isinstance(result, NotCurrent):
            if result.current is None:
                raise errors.not_found("No current backup version")
            raise errors.MatrixError(
                HTTPStatus.FORBIDDEN,
                errors.Codes.WRONG_ROOM_KEYS_VERSION,
                "Wrong backup version",
                current_version=str(result.current),
            )
        return _update_response(result)

    async def get_keys(
        self,
        user_id: str,
        version: str,
        room_id: str | None = None,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        """``GET /room_keys/keys[/{roomId}[/{sessionId}]]``: all rooms
        (``{"rooms": ...}``), one room (``{"sessions": ...}``, empty if none) or one
        key (404 if absent)."""
        keys = await self._fetch(user_id, version, room_id, session_id)
        if room_id is None:
            return {
                "rooms": {
                    room: {"sessions": {s: _key_json(k) for s, k in sessions.items()}}
                    for room, sessions in keys.items()
                }
            }
        sessions = keys.get(room_id, {})
        if session_id is None:
            return {"sessions": {s: _key_json(k) for s, k in sessions.items()}}
        key = sessions.get(session_id)
        if key is None:
            raise errors.not_found("No backed-up key for this session")
        return _key_json(key)

    async def delete_keys(
        self,
        user_id: str,
        version: str,
        room_id: str | None = None,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        """``DELETE /room_keys/keys[/{roomId}[/{sessionId}]]``."""
        number = parse_version(version)
        state = (
            None
            if number is None
            else await self._store.delete_keys(user_id, number, room_id, session_id)
        )
        if state is None:
            raise _unknown_version()
        return _update_response(state)

    async def forget_user(self, user_id: str, _erase: bool = False) -> None:
        """A deactivated account's backups go with it (``account.on_deactivate``)."""
        await self._store.delete_all_for_user(user_id)

    async def _fetch(
        self, user_id: str, version: str, room_id: str | None, session_id: str | None
    ) -> KeysByRoom:
        number = parse_version(version)
        keys = (
            None
            if number is None
            else await self._store.get_keys(user_id, number, room_id, session_id)
        )
        if keys is None:
            raise _unknown_version()
        return keys


def _version_json(version: BackupVersion) -> dict[str, Any]:
    return {
        "algorithm": version.algorithm,
        "auth_data": version.auth_data,
        "count": version.count,
        "etag": str(version.etag),
        "version": str(version.version),
    }
