"""Room history for other servers: ``GET /backfill/{roomId}`` and
``GET /timestamp_to_event/{roomId}`` (the handler decides who may read what).

spec: server-server-api.md#backfilling-and-retrieving-missing-events
(data/api/server-server/backfill.yaml),
#get_matrixfederationv1timestamp_to_eventroomid (events.yaml)
"""

from __future__ import annotations

from typing import Any

from federation.history.serving import HistoryReadHandler
from federation.transport.server import FederationRequestAuthenticator
from homeserver import errors
from homeserver.http.parsing import check_room_id, param_text, query_int, query_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router
from homeserver.storage.timeline import Direction

_V1 = "/_matrix/federation/v1"
#: The largest ``ts`` taken: timestamps are stored as signed 64-bit integers.
MAX_TIMESTAMP = 2**63 - 1


def register(
    router: Router,
    *,
    authenticator: FederationRequestAuthenticator,
    reads: HistoryReadHandler,
) -> None:
    async def backfill(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        origin = await authenticator.authenticate(request, None)
        check_room_id(room_id)
        limit = query_int(request, "limit")
        if limit is None:
            raise errors.missing_param("limit")
        return 200, await reads.backfill(origin, room_id, _event_ids(request), limit)

    async def timestamp_to_event(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        origin = await authenticator.authenticate(request, None)
        check_room_id(room_id)
        ts = query_int(request, "ts")
        if ts is None:
            raise errors.missing_param("ts")
        if not 0 <= ts <= MAX_TIMESTAMP:
            raise errors.invalid_param("'ts' is out of range")
        return 200, await reads.timestamp_to_event(origin, room_id, ts, _direction(request))

    router.register("GET", f"{_V1}/backfill/{{room_id}}", backfill)
    router.register("GET", f"{_V1}/timestamp_to_event/{{room_id}}", timestamp_to_event)


def _event_ids(request: MatrixRequest) -> list[str]:
    """Every ``v`` of the query (it repeats: one event ID each)."""
    assert request.args is not None
    return [param_text(raw, "Query parameter 'v'") for raw in request.args.get(b"v", [])]


def _direction(request: MatrixRequest) -> Direction:
    """``dir``, which this endpoint requires (``b`` or ``f``)."""
    value = query_str(request, "dir")
    if value is None:
        raise errors.missing_param("dir")
    if value == "b":
        return "b"
    if value == "f":
        return "f"
    raise errors.invalid_param("'dir' must be 'b' or 'f'")
