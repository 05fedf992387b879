"""``POST /rooms/{roomId}/read_markers``: the fully-read marker and read receipts at once.

spec: client-server-api/_index.md#post_matrixclientv3roomsroomidread_markers
"""

from __future__ import annotations

from typing import Any

from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import check_room_id, optional_str, parse_json_object
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths
from homeserver.receipts.handler import FULLY_READ, READ, READ_PRIVATE, ReceiptsHandler


def register(
    router: Router, *, authenticator: RequestAuthenticator, receipts: ReceiptsHandler
) -> None:
    async def read_markers(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        check_room_id(room_id)
        markers = [(kind, optional_str(body, kind)) for kind in (FULLY_READ, READ, READ_PRIVATE)]
        for kind, event_id in markers:
            if event_id is not None:
                await receipts.set_receipt(requester.user_id, room_id, kind, event_id, None)
        return 200, {}

    for path in client_paths("/rooms/{room_id}/read_markers"):
        router.register("POST", path, read_markers)
