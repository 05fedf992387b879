"""The room graph for other servers: ``/event``, ``/state_ids``, ``/state``,
``/event_auth`` and ``/get_missing_events`` (the handler decides who may read what).

spec: server-server-api.md#retrieving-events (data/api/server-server/events.yaml),
#get_matrixfederationv1event_authroomideventid (event_auth.yaml),
#post_matrixfederationv1get_missing_eventsroomid (backfill.yaml)
"""

from __future__ import annotations

from typing import Any

from federation.inbound.event_reads import EventReadHandler
from federation.transport.server import FederationRequestAuthenticator
from homeserver import errors
from homeserver.http.parsing import check_room_id, parse_json_object, query_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router

_V1 = "/_matrix/federation/v1"
#: spec: backfill.yaml (get_missing_events ``limit`` and ``min_depth`` defaults)
DEFAULT_MISSING_EVENTS_LIMIT = 10


def register(
    router: Router,
    *,
    authenticator: FederationRequestAuthenticator,
    reads: EventReadHandler,
) -> None:
    async def event(request: MatrixRequest, event_id: str) -> tuple[int, Any]:
        origin = await authenticator.authenticate(request, None)
        return 200, await reads.get_event(origin, event_id)

    async def state_ids(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        origin = await authenticator.authenticate(request, None)
        check_room_id(room_id)
        return 200, await reads.get_state_ids(origin, room_id, _event_id_param(request))

    async def state(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        origin = await authenticator.authenticate(request, None)
        check_room_id(room_id)
        return 200, await reads.get_state(origin, room_id, _event_id_param(request))

    async def event_auth(request: MatrixRequest, room_id: str, event_id: str) -> tuple[int, Any]:
        origin = await authenticator.authenticate(request, None)
        check_room_id(room_id)
        return 200, await reads.get_event_auth(origin, room_id, event_id)

    async def missing_events(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        body = parse_json_object(request)
        origin = await authenticator.authenticate(request, body)
        check_room_id(room_id)
        return 200, await reads.get_missing_events(
            origin,
            room_id,
            earliest=_id_list(body, "earliest_events"),
            latest=_id_list(body, "latest_events"),
            limit=_int(body, "limit", DEFAULT_MISSING_EVENTS_LIMIT),
            min_depth=_int(body, "min_depth", 0),
        )

    router.register("GET", f"{_V1}/event/{{event_id}}", event)
    router.register("GET", f"{_V1}/state_ids/{{room_id}}", state_ids)
    router.register("GET", f"{_V1}/state/{{room_id}}", state)
    router.register("GET", f"{_V1}/event_auth/{{room_id}}/{{event_id}}", event_auth)
    router.register("POST", f"{_V1}/get_missing_events/{{room_id}}", missing_events)


def _event_id_param(request: MatrixRequest) -> str:
    event_id = query_str(request, "event_id")
    if event_id is None:
        raise errors.missing_param("event_id")
    return event_id


def _id_list(body: dict[str, Any], key: str) -> list[str]:
    if key not in body:
        raise errors.missing_param(key)
    value = body[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.bad_json(f"{key!r} must be an array of event IDs")
    return value


def _int(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if type(value) is not int:
        raise errors.bad_json(f"{key!r} must be an integer")
    return value
