"""The membership handshakes other servers run with us (all authenticated):

- ``GET /v1/make_join|make_leave|make_knock/{roomId}/{userId}`` (``ver`` repeated for
  joins and knocks);
- ``PUT /v2/send_join|send_leave/{roomId}/{eventId}`` (``omit_members`` on the v2
  join only: v1 has no such parameter), their v1 forms (answered ``[200, body]``, as
  older servers expect), ``PUT /v1/send_knock/{roomId}/{eventId}``;
- ``PUT /v2/invite/{roomId}/{eventId}``.

spec: server-server-api.md#joining-rooms, #knocking-rooms, #inviting-to-a-room,
#leaving-rooms-rejecting-invites; data/api/server-server/joins-v1.yaml, joins-v2.yaml,
leaving-v1.yaml, leaving-v2.yaml, knocks.yaml, invites-v2.yaml
"""

from __future__ import annotations

from typing import Any

from federation.membership.serving import Handshake, MembershipServing
from federation.transport.server import FederationRequestAuthenticator
from homeserver import errors
from homeserver.http.parsing import (
    check_room_id,
    param_text,
    parse_json_object,
    parse_json_value,
    query_bool,
)
from homeserver.http.request import MatrixRequest
from homeserver.http.server import JsonHandler, Router
from homeserver.identifiers import is_valid_user_id

_V1 = "/_matrix/federation/v1"
_V2 = "/_matrix/federation/v2"
#: More ``ver`` values than there are room versions is not a real request.
_MAX_VERSIONS = 100


def register(
    router: Router,
    *,
    authenticator: FederationRequestAuthenticator,
    serving: MembershipServing,
) -> None:
    def make(handshake: Handshake) -> JsonHandler:
        async def handle(request: MatrixRequest, room_id: str, user_id: str) -> tuple[int, Any]:
            origin = await authenticator.authenticate(request, None)
            check_room_id(room_id)
            if not is_valid_user_id(user_id):
                raise errors.invalid_param("The user ID is not valid")
            versions = None if handshake == "leave" else _versions(request)
            return 200, await serving.make(origin, handshake, room_id, user_id, versions)

        return handle

    async def send_join(request: MatrixRequest, room_id: str, event_id: str) -> tuple[int, Any]:
        origin, body = await _authenticated_event(request, authenticator, room_id)
        # A boolean: "true" or "false", anything else is refused (400 M_INVALID_PARAM).
        # spec: data/api/server-server/joins-v2.yaml (``omit_members``)
        omit_members = query_bool(request, "omit_members") or False
        return 200, await serving.send_join(
            origin, room_id, event_id, body, omit_members=omit_members
        )

    async def send_join_v1(request: MatrixRequest, room_id: str, event_id: str) -> tuple[int, Any]:
        origin, body = await _authenticated_event(request, authenticator, room_id)
        answer = await serving.send_join(origin, room_id, event_id, body)
        return 200, [200, answer]

    async def send_leave(request: MatrixRequest, room_id: str, event_id: str) -> tuple[int, Any]:
        origin, body = await _authenticated_event(request, authenticator, room_id)
        await serving.send_leave(origin, room_id, event_id, body)
        return 200, {}

    async def send_leave_v1(request: MatrixRequest, room_id: str, event_id: str) -> tuple[int, Any]:
        status, body = await send_leave(request, room_id, event_id)
        return status, [status, body]

    async def send_knock(request: MatrixRequest, room_id: str, event_id: str) -> tuple[int, Any]:
        origin, body = await _authenticated_event(request, authenticator, room_id)
        return 200, await serving.send_knock(origin, room_id, event_id, body)

    async def invite(request: MatrixRequest, room_id: str, event_id: str) -> tuple[int, Any]:
        body = parse_json_object(request)
        origin = await authenticator.authenticate(request, body)
        check_room_id(room_id)
        return 200, await serving.invite(origin, room_id, event_id, body)

    for handshake in ("join", "leave", "knock"):
        router.register("GET", f"{_V1}/make_{handshake}/{{room_id}}/{{user_id}}", make(handshake))
    router.register("PUT", f"{_V2}/send_join/{{room_id}}/{{event_id}}", send_join)
    router.register("PUT", f"{_V1}/send_join/{{room_id}}/{{event_id}}", send_join_v1)
    router.register("PUT", f"{_V2}/send_leave/{{room_id}}/{{event_id}}", send_leave)
    router.register("PUT", f"{_V1}/send_leave/{{room_id}}/{{event_id}}", send_leave_v1)
    router.register("PUT", f"{_V1}/send_knock/{{room_id}}/{{event_id}}", send_knock)
    router.register("PUT", f"{_V2}/invite/{{room_id}}/{{event_id}}", invite)


async def _authenticated_event(
    request: MatrixRequest, authenticator: FederationRequestAuthenticator, room_id: str
) -> tuple[str, Any]:
    """The origin and the event a ``send_*`` request carries (any JSON: the handler
    says what is wrong with it)."""
    body = parse_json_value(request)
    origin = await authenticator.authenticate(request, body)
    check_room_id(room_id)
    return origin, body


def _versions(request: MatrixRequest) -> list[str] | None:
    """The ``ver`` query parameters, None when there are none."""
    assert request.args is not None
    raw = request.args.get(b"ver", [])
    if len(raw) > _MAX_VERSIONS:
        raise errors.invalid_param("Too many 'ver' parameters")
    return [param_text(value, "Query parameter 'ver'") for value in raw] or None
