"""``GET`` and ``PUT /presence/{userId}/status``.

``PUT`` sets the caller's own presence only, rate limited by ``rc_presence``; with
presence turned off it is accepted and changes nothing, and ``GET`` answers
``offline`` (as Synapse does, so clients need no special case).

spec: client-server-api/modules/presence.md#get_matrixclientv3presenceuseridstatus,
#put_matrixclientv3presenceuseridstatus (data/api/client-server/presence.yaml)
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import parse_json_object
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths
from homeserver.identifiers import is_valid_user_id
from homeserver.presence.handler import PresenceHandler
from homeserver.presence.record import PRESENCE_STATES
from homeserver.ratelimit import RateLimiter


def register(
    router: Router,
    *,
    authenticator: RequestAuthenticator,
    presence: PresenceHandler,
    limiter: RateLimiter,
) -> None:
    async def get_status(request: MatrixRequest, user_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        _check_user_id(user_id)
        return 200, await presence.presence_of(requester.user_id, user_id)

    async def put_status(request: MatrixRequest, user_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        _check_user_id(user_id)
        if user_id != requester.user_id:
            raise errors.forbidden("You may only set your own presence")
        body = parse_json_object(request)
        if "presence" not in body:
            raise errors.missing_param("presence")
        state = body["presence"]
        if state not in PRESENCE_STATES:
            raise errors.invalid_param("'presence' must be online, unavailable or offline")
        status_msg = body.get("status_msg")
        if status_msg is not None and not isinstance(status_msg, str):
            raise errors.bad_json("'status_msg' must be a string")
        limiter.ratelimit(requester.user_id)
        await presence.set_presence(requester.user_id, state, status_msg)
        return 200, {}

    for path in client_paths("/presence/{user_id}/status"):
        router.register("GET", path, get_status)
        router.register("PUT", path, put_status)


def _check_user_id(user_id: str) -> None:
    if not is_valid_user_id(user_id):
        raise errors.invalid_param(f"{user_id!r} is not a valid user ID")
