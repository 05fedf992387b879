"""Receipts: ``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}``.

spec: client-server-api/_index.md#post_matrixclientv3roomsroomidreceiptreceipttypeeventid
(data/api/client-server/receipts.yaml)
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import parse_optional_json_object
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths
from homeserver.receipts.handler import ReceiptsHandler


def register(
    router: Router, *, authenticator: RequestAuthenticator, receipts: ReceiptsHandler
) -> None:
    async def post_receipt(
        request: MatrixRequest, room_id: str, receipt_type: str, event_id: str
    ) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        # The spec requires a body, but clients have long sent none for plain m.read.
        body = parse_optional_json_object(request)
        thread_id = body.get("thread_id")
        if "thread_id" in body and not isinstance(thread_id, str):
            raise errors.invalid_param("thread_id field must be a non-empty string")
        await receipts.set_receipt(requester.user_id, room_id, receipt_type, event_id, thread_id)
        return 200, {}

    for path in client_paths("/rooms/{room_id}/receipt/{receipt_type}/{event_id}"):
        router.register("POST", path, post_receipt)
