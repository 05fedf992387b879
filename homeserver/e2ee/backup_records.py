"""Key backup data as the handler and the store both name it (imports nothing of ours).

spec: client-server-api/modules/end_to_end_encryption.md#server-side-key-backups,
data/api/client-server/key_backup.yaml, definitions/key_backup_data.yaml
"""

from __future__ import annotations

import enum
from typing import Any

import attrs


@attrs.frozen
class BackupVersion:
    """One backup version: ``GET /room_keys/version[/{version}]`` without the strings."""

    version: int
    algorithm: str
    auth_data: dict[str, Any]
    #: Increases whenever the version's keys change.
    etag: int
    #: The number of keys in the version.
    count: int


@attrs.frozen
class KeyRank:
    """What the replacement rule compares: a key's metadata without its data."""

    is_verified: bool
    first_message_index: int
    forwarded_count: int


@attrs.frozen
class RoomKey:
    """A backed-up room key (``KeyBackupData``); ``session_data`` is opaque to us."""

    first_message_index: int
    forwarded_count: int
    is_verified: bool
    session_data: dict[str, Any]

    @property
    def rank(self) -> KeyRank:
        return KeyRank(self.is_verified, self.first_message_index, self.forwarded_count)


@attrs.frozen
class UploadedKey:
    """A key to store under ``room_id`` and ``session_id``."""

    room_id: str
    session_id: str
    key: RoomKey


@attrs.frozen
class KeysState:
    """A version's ``etag`` and ``count`` after a change (``RoomKeysUpdateResponse``)."""

    etag: int
    count: int


@attrs.frozen
class NotCurrent:
    """Keys were sent to a version that is not the current one; ``current`` is the
    current version, or None when the user has no backup."""

    current: int | None


class VersionDeletion(enum.Enum):
    DELETED = "deleted"
    ALREADY_DELETED = "already deleted"
    UNKNOWN = "unknown"


#: ``{room_id: {session_id: key}}``
KeysByRoom = dict[str, dict[str, RoomKey]]
