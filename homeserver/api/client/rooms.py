"""Room endpoints: create, membership, send, state, redact, and reading.

spec: client-server-api/_index.md#rooms, #room-membership, #sending-events-to-a-room,
#getting-events-for-a-room, #redactions
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from homeserver import errors
from homeserver.filtering.model import FilterCollection, InvalidFilterError, RoomEventFilter
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import (
    check_room_id,
    optional_bool,
    optional_str,
    param_text,
    parse_json_object,
    parse_optional_json_object,
    query_direction,
    query_int,
    query_str,
    require_str,
)
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, cancel_on_disconnect, client_paths
from homeserver.identifiers import (
    is_valid_room_alias,
    is_valid_room_id,
    is_valid_server_name,
    is_valid_user_id,
)
from homeserver.rooms.creation import PRESETS, RoomCreationHandler, RoomCreationRequest
from homeserver.rooms.membership import MembershipAction, MembershipHandler
from homeserver.rooms.messages import MessageHandler
from homeserver.rooms.reading import RoomReader
from homeserver.util.untrusted_json import parse_json_text

#: Resolves a room alias to (room ID, servers); raises a 404 MatrixError if unknown.
AliasResolver = Callable[[str], Awaitable[tuple[str, list[str]]]]

#: Largest page /messages and /context return, whatever the client asks.
MAX_PAGE = 1000
_MAX_TYPE_BYTES = 255


def register(
    router: Router,
    *,
    authenticator: RequestAuthenticator,
    creation: RoomCreationHandler,
    membership: MembershipHandler,
    messages: MessageHandler,
    reader: RoomReader,
    resolve_alias: AliasResolver | None,
) -> None:
    async def create_room(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        parsed = _parse_create_room(parse_json_object(request))
        room_id = await creation.create_room(requester, parsed)
        return 200, {"room_id": room_id}

    async def resolve_room(room_id_or_alias: str) -> tuple[str, list[str]]:
        if is_valid_room_id(room_id_or_alias):
            return room_id_or_alias, []
        if is_valid_room_alias(room_id_or_alias):
            if resolve_alias is None:
                raise errors.not_found("Room alias not found")
            return await resolve_alias(room_id_or_alias)
        raise errors.invalid_param(f"{room_id_or_alias!r} is neither a room ID nor an alias")

    async def change_own_membership(
        request: MatrixRequest,
        room: str,
        action: MembershipAction,
        resolve: Callable[[str], Awaitable[tuple[str, list[str]]]],
    ) -> str:
        requester = await authenticator.requester(request)
        body = parse_optional_json_object(request)
        room_id, alias_servers = await resolve(room)
        reason = optional_str(body, "reason")
        # A join keeps the other keys of the body in its member event, as Synapse does
        # (the spec's body lists only reason and third_party_signed and forbids no
        # others); leave and knock take only the reason, as in Synapse.
        extra = (
            {key: value for key, value in body.items() if key != "reason"}
            if action == "join"
            else None
        )
        await membership.update_membership(
            requester,
            room_id,
            requester.user_id,
            action,
            reason=reason,
            extra_content=extra,
            servers=[*_via_servers(request), *alias_servers],
        )
        return room_id

    async def room_id_only(room_id: str) -> tuple[str, list[str]]:
        check_room_id(room_id)
        return room_id, []

    async def join(request: MatrixRequest, room_id_or_alias: str) -> tuple[int, Any]:
        room_id = await change_own_membership(request, room_id_or_alias, "join", resolve_room)
        return 200, {"room_id": room_id}

    async def join_by_id(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        await change_own_membership(request, room_id, "join", room_id_only)
        return 200, {"room_id": room_id}

    async def knock(request: MatrixRequest, room_id_or_alias: str) -> tuple[int, Any]:
        room_id = await change_own_membership(request, room_id_or_alias, "knock", resolve_room)
        return 200, {"room_id": room_id}

    async def leave(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        await change_own_membership(request, room_id, "leave", room_id_only)
        return 200, {}

    def targeted(action: MembershipAction) -> Callable[..., Awaitable[tuple[int, Any]]]:
        async def handle(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
            requester = await authenticator.requester(request)
            body = parse_json_object(request)
            check_room_id(room_id)
            target = require_str(body, "user_id")
            if not is_valid_user_id(target):
                raise errors.invalid_param("'user_id' is not a valid user ID")
            await membership.update_membership(
                requester, room_id, target, action, reason=optional_str(body, "reason")
            )
            return 200, {}

        return handle

    async def forget(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        parse_optional_json_object(request)
        check_room_id(room_id)
        await membership.forget(requester, room_id)
        return 200, {}

    async def send(
        request: MatrixRequest, room_id: str, event_type: str, txn_id: str
    ) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        content = parse_json_object(request)
        check_room_id(room_id)
        _check_event_type(event_type)
        event_id = await messages.send_message(requester, room_id, event_type, content, txn_id)
        return 200, {"event_id": event_id}

    async def put_state(
        request: MatrixRequest, room_id: str, event_type: str, state_key: str = ""
    ) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        content = parse_json_object(request)
        check_room_id(room_id)
        _check_event_type(event_type)
        if len(state_key.encode("utf-8")) > _MAX_TYPE_BYTES:
            raise errors.invalid_param("The state key is longer than 255 bytes")
        event_id = await messages.send_state(requester, room_id, event_type, state_key, content)
        return 200, {"event_id": event_id}

    async def get_state_event(
        request: MatrixRequest, room_id: str, event_type: str, state_key: str = ""
    ) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        event = await reader.get_state_event(requester, room_id, event_type, state_key)
        event_format = query_str(request, "format", "content")
        if event_format == "event":
            return 200, await reader.serialize_state_event(requester, event)
        if event_format != "content":
            raise errors.invalid_param("'format' must be 'content' or 'event'")
        body = await reader.serialize_state_event(requester, event)
        return 200, body["content"]

    async def get_state(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        return 200, await reader.get_state(requester, room_id)

    async def redact(
        request: MatrixRequest, room_id: str, event_id: str, txn_id: str
    ) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_optional_json_object(request)
        check_room_id(room_id)
        reason = optional_str(body, "reason")
        redaction_id = await messages.redact(requester, room_id, event_id, reason, txn_id)
        return 200, {"event_id": redaction_id}

    async def get_event(request: MatrixRequest, room_id: str, event_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        return 200, await reader.get_event(requester, room_id, event_id)

    async def members(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        chunk = await reader.get_members(
            requester,
            room_id,
            at=query_str(request, "at"),
            membership=_membership_param(request, "membership"),
            not_membership=_membership_param(request, "not_membership"),
        )
        return 200, {"chunk": chunk}

    async def joined_members(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        return 200, await reader.joined_members(requester, room_id)

    async def joined_rooms(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        return 200, {"joined_rooms": await membership.joined_rooms(requester.user_id)}

    async def room_messages(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        direction = query_direction(request)
        event_filter = _room_event_filter(request)
        limit = _limit(request, default=10, event_filter=event_filter)
        return 200, await reader.messages(
            requester,
            room_id,
            from_token=query_str(request, "from"),
            to_token=query_str(request, "to"),
            direction=direction,
            limit=limit,
            event_filter=event_filter,
        )

    async def context(request: MatrixRequest, room_id: str, event_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        event_filter = _room_event_filter(request)
        limit = _limit(request, default=10, event_filter=event_filter)
        return 200, await reader.context(
            requester, room_id, event_id, limit=limit, event_filter=event_filter
        )

    async def timestamp_to_event(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        ts = query_int(request, "ts")
        if ts is None:
            raise errors.missing_param("ts")
        return 200, await reader.timestamp_to_event(
            requester, room_id, ts, query_direction(request)
        )

    router_paths: list[tuple[str, str, Callable[..., Awaitable[tuple[int, Any]]]]] = [
        ("POST", "/createRoom", create_room),
        ("POST", "/join/{room_id_or_alias}", join),
        ("POST", "/rooms/{room_id}/join", join_by_id),
        ("POST", "/knock/{room_id_or_alias}", knock),
        ("POST", "/rooms/{room_id}/leave", leave),
        ("POST", "/rooms/{room_id}/invite", targeted("invite")),
        ("POST", "/rooms/{room_id}/kick", targeted("kick")),
        ("POST", "/rooms/{room_id}/ban", targeted("ban")),
        ("POST", "/rooms/{room_id}/unban", targeted("unban")),
        ("POST", "/rooms/{room_id}/forget", forget),
        ("PUT", "/rooms/{room_id}/send/{event_type}/{txn_id}", send),
        ("PUT", "/rooms/{room_id}/state/{event_type}", put_state),
        ("PUT", "/rooms/{room_id}/state/{event_type}/", put_state),
        ("PUT", "/rooms/{room_id}/state/{event_type}/{state_key}", put_state),
        ("GET", "/rooms/{room_id}/state/{event_type}", get_state_event),
        ("GET", "/rooms/{room_id}/state/{event_type}/", get_state_event),
        ("GET", "/rooms/{room_id}/state/{event_type}/{state_key}", get_state_event),
        ("GET", "/rooms/{room_id}/state", get_state),
        ("PUT", "/rooms/{room_id}/redact/{event_id}/{txn_id}", redact),
        ("GET", "/rooms/{room_id}/event/{event_id}", get_event),
        ("GET", "/rooms/{room_id}/members", members),
        ("GET", "/rooms/{room_id}/joined_members", joined_members),
        ("GET", "/joined_rooms", joined_rooms),
        ("GET", "/rooms/{room_id}/messages", cancel_on_disconnect(room_messages)),
        ("GET", "/rooms/{room_id}/context/{event_id}", cancel_on_disconnect(context)),
    ]
    for method, path, handler in router_paths:
        for full_path in client_paths(path):
            router.register(method, full_path, handler)
    for full_path in client_paths("/rooms/{room_id}/timestamp_to_event", ("v1",)):
        router.register("GET", full_path, timestamp_to_event)


def _check_event_type(event_type: str) -> None:
    if len(event_type.encode("utf-8")) > _MAX_TYPE_BYTES:
        raise errors.invalid_param("The event type is longer than 255 bytes")


def _via_servers(request: MatrixRequest) -> list[str]:
    """The servers a join or knock of a room we are not in may go through: ``via``
    (repeated) and the older ``server_name``, in the order given.

    spec: client-server-api/_index.md#post_matrixclientv3joinroomidoralias
    """
    assert request.args is not None
    servers = []
    for name in (b"via", b"server_name"):
        for raw in request.args.get(name, []):
            server = param_text(raw, f"Query parameter {name.decode()!r}")
            if not is_valid_server_name(server):
                raise errors.invalid_param(f"{server!r} is not a valid server name")
            servers.append(server)
    return servers


def _membership_param(request: MatrixRequest, name: str) -> str | None:
    value = query_str(request, name)
    if value is not None and value not in ("join", "invite", "knock", "leave", "ban"):
        raise errors.invalid_param(f"{name!r} must be join, invite, knock, leave or ban")
    return value


def _room_event_filter(request: MatrixRequest) -> RoomEventFilter:
    raw = query_str(request, "filter")
    if raw is None:
        return RoomEventFilter()
    try:
        collection = FilterCollection.from_json({"room": {"timeline": _json_param(raw)}})
    except InvalidFilterError as invalid:
        raise errors.bad_json(f"Invalid filter: {invalid}") from None
    return collection.room.timeline


def _json_param(raw: str) -> Any:
    return parse_json_text(raw, "The 'filter' parameter")


def _limit(request: MatrixRequest, *, default: int, event_filter: RoomEventFilter) -> int:
    limit = query_int(request, "limit")
    if limit is None:
        limit = event_filter.limit if event_filter.limit is not None else default
    if limit < 0:
        raise errors.invalid_param("'limit' must not be negative")
    return min(limit, MAX_PAGE)


def _parse_create_room(body: dict[str, Any]) -> RoomCreationRequest:
    """Every field of the /createRoom body, type-checked (400 M_BAD_JSON otherwise)."""
    preset = optional_str(body, "preset")
    if preset is not None and preset not in PRESETS:
        raise errors.bad_json(f"'preset' must be one of {', '.join(PRESETS)}")
    visibility = optional_str(body, "visibility") or "private"
    if visibility not in ("public", "private"):
        raise errors.bad_json("'visibility' must be 'public' or 'private'")
    creation_content = body.get("creation_content", {})
    if not isinstance(creation_content, dict):
        raise errors.bad_json("'creation_content' must be an object")
    initial_state = []
    raw_state = body.get("initial_state", [])
    if not isinstance(raw_state, list):
        raise errors.bad_json("'initial_state' must be a list")
    for index, item in enumerate(raw_state):
        if not isinstance(item, dict):
            raise errors.bad_json(f"initial_state[{index}] must be an object")
        event_type = item.get("type")
        state_key = item.get("state_key", "")
        content = item.get("content")
        if not isinstance(event_type, str) or not isinstance(state_key, str):
            raise errors.bad_json(f"initial_state[{index}] needs string 'type' and 'state_key'")
        if not isinstance(content, dict):
            raise errors.bad_json(f"initial_state[{index}].content must be an object")
        if event_type in ("m.room.create", "m.room.member", "m.room.power_levels"):
            raise errors.bad_json(
                f"initial_state[{index}]: {event_type} cannot be set through initial_state"
            )
        initial_state.append((event_type, state_key, content))
    invite = body.get("invite", [])
    if not isinstance(invite, list) or not all(isinstance(u, str) for u in invite):
        raise errors.bad_json("'invite' must be a list of user IDs")
    for user_id in invite:
        if not is_valid_user_id(user_id):
            raise errors.invalid_param(f"{user_id!r} is not a valid user ID")
    invite_3pid = body.get("invite_3pid", [])
    if not isinstance(invite_3pid, list):
        raise errors.bad_json("'invite_3pid' must be a list")
    if invite_3pid:
        raise errors.MatrixError(
            400, errors.Codes.UNKNOWN, "Third-party invites need an identity server, none is set"
        )
    override = body.get("power_level_content_override")
    if override is not None and not isinstance(override, dict):
        raise errors.bad_json("'power_level_content_override' must be an object")
    return RoomCreationRequest(
        preset=preset,
        visibility=visibility,
        room_version=optional_str(body, "room_version"),
        name=optional_str(body, "name"),
        topic=optional_str(body, "topic"),
        room_alias_name=optional_str(body, "room_alias_name"),
        creation_content=creation_content,
        initial_state=initial_state,
        invite=list(dict.fromkeys(invite)),
        is_direct=optional_bool(body, "is_direct", False),
        power_level_content_override=override,
    )
