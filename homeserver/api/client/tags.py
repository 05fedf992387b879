"""Room tags: ``/user/{userId}/rooms/{roomId}/tags[/{tag}]``.

Tags are stored as the room account data ``m.tag`` (``{"tags": {...}}``), which is
how clients see them in ``/sync``.

spec: client-server-api/_index.md#room-tagging, #get_matrixclientv3useruseridroomsroomidtags,
#put_matrixclientv3useruseridroomsroomidtagstag,
#delete_matrixclientv3useruseridroomsroomidtagstag
"""

from __future__ import annotations

from typing import Any

from homeserver.accountdata.handler import AccountDataHandler
from homeserver.api.client.account_data import check_own_user
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import check_room_id, parse_json_object, parse_optional_json_object
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths


def register(
    router: Router, *, authenticator: RequestAuthenticator, account_data: AccountDataHandler
) -> None:
    async def get_tags(request: MatrixRequest, user_id: str, room_id: str) -> tuple[int, Any]:
        check_own_user(await authenticator.requester(request), user_id)
        check_room_id(room_id)
        return 200, {"tags": await account_data.get_tags(user_id, room_id)}

    async def put_tag(
        request: MatrixRequest, user_id: str, room_id: str, tag: str
    ) -> tuple[int, Any]:
        check_own_user(await authenticator.requester(request), user_id)
        check_room_id(room_id)
        content = parse_json_object(request)
        await account_data.add_tag(user_id, room_id, tag, content)
        return 200, {}

    async def delete_tag(
        request: MatrixRequest, user_id: str, room_id: str, tag: str
    ) -> tuple[int, Any]:
        check_own_user(await authenticator.requester(request), user_id)
        check_room_id(room_id)
        parse_optional_json_object(request)
        await account_data.remove_tag(user_id, room_id, tag)
        return 200, {}

    for path in client_paths("/user/{user_id}/rooms/{room_id}/tags"):
        router.register("GET", path, get_tags)
    for path in client_paths("/user/{user_id}/rooms/{room_id}/tags/{tag}"):
        router.register("PUT", path, put_tag)
        router.register("DELETE", path, delete_tag)
