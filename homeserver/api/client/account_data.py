"""Account data: ``/user/{userId}/account_data/{type}`` and its per-room variant.

Only the user themself may read or set their account data (403 otherwise).  Types
the server manages (``m.fully_read``, ``m.push_rules``) are readable but setting them
here is 405 ``M_BAD_JSON``.  The spec defines no DELETE.

spec: client-server-api/_index.md#client-config, #put_matrixclientv3useruseridaccount_datatype,
#get_matrixclientv3useruseridaccount_datatype,
#put_matrixclientv3useruseridroomsroomidaccount_datatype,
#get_matrixclientv3useruseridroomsroomidaccount_datatype
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.accountdata.handler import AccountDataHandler, check_client_may_set
from homeserver.auth.tokens import Requester
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import check_room_id, parse_json_object
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths


def check_own_user(requester: Requester, user_id: str) -> None:
    """403 ``M_FORBIDDEN`` unless ``user_id`` is the requester."""
    if requester.user_id != user_id:
        raise errors.forbidden("You may only access your own account data")


def register(
    router: Router, *, authenticator: RequestAuthenticator, account_data: AccountDataHandler
) -> None:
    async def get_global(request: MatrixRequest, user_id: str, data_type: str) -> tuple[int, Any]:
        check_own_user(await authenticator.requester(request), user_id)
        content = await account_data.get_global(user_id, data_type)
        if content is None:
            raise errors.not_found("Account data not found")
        return 200, content

    async def put_global(request: MatrixRequest, user_id: str, data_type: str) -> tuple[int, Any]:
        check_own_user(await authenticator.requester(request), user_id)
        check_client_may_set(data_type)
        content = parse_json_object(request)
        await account_data.set_global(user_id, data_type, content)
        return 200, {}

    async def get_room(
        request: MatrixRequest, user_id: str, room_id: str, data_type: str
    ) -> tuple[int, Any]:
        check_own_user(await authenticator.requester(request), user_id)
        check_room_id(room_id)
        content = await account_data.get_room(user_id, room_id, data_type)
        if content is None:
            raise errors.not_found("Room account data not found")
        return 200, content

    async def put_room(
        request: MatrixRequest, user_id: str, room_id: str, data_type: str
    ) -> tuple[int, Any]:
        check_own_user(await authenticator.requester(request), user_id)
        check_room_id(room_id)
        check_client_may_set(data_type)
        content = parse_json_object(request)
        await account_data.set_room(user_id, room_id, data_type, content)
        return 200, {}

    for path in client_paths("/user/{user_id}/account_data/{data_type}"):
        router.register("GET", path, get_global)
        router.register("PUT", path, put_global)
    for path in client_paths("/user/{user_id}/rooms/{room_id}/account_data/{data_type}"):
        router.register("GET", path, get_room)
        router.register("PUT", path, put_room)
