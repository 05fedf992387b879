"""``POST /rooms/{roomId}/upgrade``: replace a room with one in another room version.

spec: client-server-api/modules/room_upgrades.md, data/api/client-server/room_upgrades.yaml
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import check_room_id, parse_json_object, require_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths
from homeserver.identifiers import is_valid_user_id
from homeserver.rooms.upgrade import RoomUpgradeHandler


def register(
    router: Router, *, authenticator: RequestAuthenticator, upgrades: RoomUpgradeHandler
) -> None:
    async def upgrade_room(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        body = parse_json_object(request)
        new_version = require_str(body, "new_version")
        additional_creators = _additional_creators(body)
        replacement = await upgrades.upgrade_room(
            requester, room_id, new_version, additional_creators
        )
        return 200, {"replacement_room": replacement}

    for path in client_paths("/rooms/{room_id}/upgrade"):
        router.register("POST", path, upgrade_room)


def _additional_creators(body: dict[str, Any]) -> list[str]:
    """``additional_creators`` (spec v1.16): user IDs; ignored by the handler when the
    new room version has no additional creators."""
    value = body.get("additional_creators", [])
    if not isinstance(value, list) or not all(isinstance(user, str) for user in value):
        raise errors.bad_json("'additional_creators' must be a list of user IDs")
    for user_id in value:
        if not is_valid_user_id(user_id):
            raise errors.invalid_param(f"{user_id!r} is not a valid user ID")
    return list(dict.fromkeys(value))
