"""Server-side key backups: ``/room_keys/version[/{version}]`` and
``/room_keys/keys[/{roomId}[/{sessionId}]]``.

Bodies are checked here, strictly, before the handler sees them: the shapes of
``RoomKeyBackup`` and ``KeyBackupData`` with their required keys and types, room IDs
as keys of ``rooms``.  ``session_data`` and ``auth_data`` stay opaque objects (only
clients can read them), except that ``m.megolm_backup.v1.curve25519-aes-sha2``
requires the ``public_key`` of its ``AuthData``.

spec: client-server-api/modules/end_to_end_encryption.md#server-side-key-backups,
data/api/client-server/key_backup.yaml, definitions/key_backup_data.yaml,
definitions/room_key_backup.yaml, definitions/key_backup_auth_data.yaml
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.e2ee.backup_records import RoomKey, UploadedKey
from homeserver.e2ee.key_backup import MEGOLM_BACKUP_V1, KeyBackupHandler
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import check_room_id, parse_json_object, query_str, require_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths
from homeserver.identifiers import is_valid_room_id

#: Longest session ID accepted (Megolm session IDs are 43 characters).
MAX_SESSION_ID_LENGTH = 255
#: The integer range of canonical JSON (what every client can represent exactly).
_MAX_INT = 2**53 - 1


def register(
    router: Router, *, authenticator: RequestAuthenticator, key_backup: KeyBackupHandler
) -> None:
    # -- versions ------------------------------------------------------------------

    async def create_version(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        algorithm, auth_data = _parse_version_body(parse_json_object(request))
        version = await key_backup.create_version(requester.user_id, algorithm, auth_data)
        return 200, {"version": version}

    async def get_current_version(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        return 200, await key_backup.version_info(requester.user_id, None)

    async def get_version(request: MatrixRequest, version: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        return 200, await key_backup.version_info(requester.user_id, version)

    async def put_version(request: MatrixRequest, version: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        algorithm, auth_data = _parse_version_body(body)
        body_version = body.get("version")
        if body_version is not None and not isinstance(body_version, str):
            raise errors.bad_json("'version' must be a string")
        await key_backup.update_version(
            requester.user_id, version, algorithm, auth_data, body_version
        )
        return 200, {}

    async def delete_version(request: MatrixRequest, version: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        await key_backup.delete_version(requester.user_id, version)
        return 200, {}

    for path in client_paths("/room_keys/version"):
        router.register("POST", path, create_version)
        router.register("GET", path, get_current_version)
    for path in client_paths("/room_keys/version/{version}"):
        router.register("GET", path, get_version)
        router.register("PUT", path, put_version)
        router.register("DELETE", path, delete_version)

    # -- keys ----------------------------------------------------------------------

    async def put_all(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        version = _version_param(request)
        body = parse_json_object(request)
        if "rooms" not in body:
            raise errors.missing_param("rooms")
        rooms = body["rooms"]
        if not isinstance(rooms, dict):
            raise errors.bad_json("'rooms' must be an object")
        keys: list[UploadedKey] = []
        for room_id, room in rooms.items():
            if not is_valid_room_id(room_id):
                raise errors.invalid_param(f"{room_id!r} is not a valid room ID")
            if not isinstance(room, dict):
                raise errors.bad_json(f"rooms[{room_id!r}] must be an object")
            keys.extend(_parse_room(room_id, room))
        return 200, await key_backup.upload_keys(requester.user_id, version, keys)

    async def put_room(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        version = _version_param(request)
        keys = _parse_room(room_id, parse_json_object(request))
        return 200, await key_backup.upload_keys(requester.user_id, version, keys)

    async def put_session(request: MatrixRequest, room_id: str, session_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        _check_session_id(session_id)
        version = _version_param(request)
        key = _parse_key(parse_json_object(request), "the body")
        uploaded = [UploadedKey(room_id, session_id, key)]
        return 200, await key_backup.upload_keys(requester.user_id, version, uploaded)

    async def get_all(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        version = _version_param(request)
        return 200, await key_backup.get_keys(requester.user_id, version)

    async def get_room(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        version = _version_param(request)
        return 200, await key_backup.get_keys(requester.user_id, version, room_id)

    async def get_session(request: MatrixRequest, room_id: str, session_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        _check_session_id(session_id)
        version = _version_param(request)
        return 200, await key_backup.get_keys(requester.user_id, version, room_id, session_id)

    async def delete_all(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        version = _version_param(request)
        return 200, await key_backup.delete_keys(requester.user_id, version)

    async def delete_room(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        version = _version_param(request)
        return 200, await key_backup.delete_keys(requester.user_id, version, room_id)

    async def delete_session(
        request: MatrixRequest, room_id: str, session_id: str
    ) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        _check_session_id(session_id)
        version = _version_param(request)
        return 200, await key_backup.delete_keys(requester.user_id, version, room_id, session_id)

    for path in client_paths("/room_keys/keys"):
        router.register("PUT", path, put_all)
        router.register("GET", path, get_all)
        router.register("DELETE", path, delete_all)
    for path in client_paths("/room_keys/keys/{room_id}"):
        router.register("PUT", path, put_room)
        router.register("GET", path, get_room)
        router.register("DELETE", path, delete_room)
    for path in client_paths("/room_keys/keys/{room_id}/{session_id}"):
        router.register("PUT", path, put_session)
        router.register("GET", path, get_session)
        router.register("DELETE", path, delete_session)


def _version_param(request: MatrixRequest) -> str:
    """The ``version`` query parameter, required on every ``/room_keys/keys`` call."""
    version = query_str(request, "version")
    if version is None:
        raise errors.missing_param("version")
    return version


def _parse_version_body(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``algorithm`` and ``auth_data`` of ``POST``/``PUT /room_keys/version``."""
    algorithm = require_str(body, "algorithm")
    if not algorithm:
        raise errors.invalid_param("'algorithm' must not be empty")
    if "auth_data" not in body:
        raise errors.missing_param("auth_data")
    auth_data = body["auth_data"]
    if not isinstance(auth_data, dict):
        raise errors.bad_json("'auth_data' must be an object")
    if algorithm == MEGOLM_BACKUP_V1 and not isinstance(auth_data.get("public_key"), str):
        # spec: definitions/key_backup_auth_data.yaml (required: public_key)
        raise errors.bad_json("'auth_data.public_key' must be a string")
    return algorithm, auth_data


def _check_session_id(session_id: str) -> None:
    if not session_id or len(session_id) > MAX_SESSION_ID_LENGTH:
        raise errors.invalid_param(
            f"A session ID must be 1 to {MAX_SESSION_ID_LENGTH} characters long"
        )


def _parse_room(room_id: str, room: dict[str, Any]) -> list[UploadedKey]:
    """A ``RoomKeyBackup`` (``{"sessions": {session_id: KeyBackupData}}``)."""
    if "sessions" not in room:
        raise errors.missing_param("sessions")
    sessions = room["sessions"]
    if not isinstance(sessions, dict):
        raise errors.bad_json(f"'sessions' of {room_id} must be an object")
    keys = []
    for session_id, data in sessions.items():
        _check_session_id(session_id)
        if not isinstance(data, dict):
            raise errors.bad_json(f"The key of session {session_id!r} must be an object")
        keys.append(UploadedKey(room_id, session_id, _parse_key(data, f"session {session_id!r}")))
    return keys


def _parse_key(data: dict[str, Any], where: str) -> RoomKey:
    """A ``KeyBackupData``: all four keys required, each of its type."""
    for name in ("first_message_index", "forwarded_count", "is_verified", "session_data"):
        if name not in data:
            raise errors.missing_param(f"{name} (in {where})")
    session_data = data["session_data"]
    if not isinstance(session_data, dict):
        raise errors.bad_json(f"'session_data' of {where} must be an object")
    is_verified = data["is_verified"]
    if not isinstance(is_verified, bool):
        raise errors.bad_json(f"'is_verified' of {where} must be a boolean")
    return RoomKey(
        first_message_index=_count(data, "first_message_index", where),
        forwarded_count=_count(data, "forwarded_count", where),
        is_verified=is_verified,
        session_data=session_data,
    )


def _count(data: dict[str, Any], name: str, where: str) -> int:
    value = data[name]
    # (bool is an int in Python, not in JSON.)
    if not isinstance(value, int) or isinstance(value, bool):
        raise errors.bad_json(f"{name!r} of {where} must be an integer")
    if not 0 <= value <= _MAX_INT:
        raise errors.invalid_param(f"{name!r} of {where} must be between 0 and {_MAX_INT}")
    return value
