"""Typing notifications: ``PUT /rooms/{roomId}/typing/{userId}``.

``timeout`` is required when ``typing`` is true (the spec lets it be left out only
when false) and is capped by the handler (:data:`homeserver.typing.handler.MAX_TIMEOUT_MS`).

spec: client-server-api/_index.md#put_matrixclientv3roomsroomidtypinguserid
(data/api/client-server/typing.yaml)
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import parse_json_object
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths
from homeserver.typing.handler import TypingHandler


def register(router: Router, *, authenticator: RequestAuthenticator, typing: TypingHandler) -> None:
    async def put_typing(request: MatrixRequest, room_id: str, user_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        if user_id != requester.user_id:
            raise errors.forbidden("You may only set your own typing state")
        if "typing" not in body:
            raise errors.missing_param("typing")
        is_typing = body["typing"]
        if not isinstance(is_typing, bool):
            raise errors.bad_json("'typing' must be a boolean")
        timeout_ms = 0
        if is_typing:
            if "timeout" not in body:
                raise errors.missing_param("timeout")
            timeout_ms = body["timeout"]
            if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool):
                raise errors.bad_json("'timeout' must be an integer")
            if timeout_ms < 0:
                raise errors.invalid_param("'timeout' must not be negative")
        await typing.set_typing(requester.user_id, room_id, is_typing, timeout_ms)
        return 200, {}

    for path in client_paths("/rooms/{room_id}/typing/{user_id}"):
        router.register("PUT", path, put_typing)
