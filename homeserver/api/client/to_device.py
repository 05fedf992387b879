"""``PUT /sendToDevice/{eventType}/{txnId}``: send-to-device messages.

The body's ``messages`` is checked and queued by the handler (``e2ee/to_device.py``);
a repeated transaction ID answers ``{}`` again without queueing anything.  Guests may
send (spec: modules/guest_access.md).

spec: client-server-api/modules/send_to_device.md,
#put_matrixclientv3sendtodeviceeventtypetxnid (data/api/client-server/to_device.yaml)
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.e2ee.to_device import ToDeviceHandler
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import parse_json_object
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths


def register(
    router: Router, *, authenticator: RequestAuthenticator, to_device: ToDeviceHandler
) -> None:
    async def send(request: MatrixRequest, event_type: str, txn_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        if "messages" not in body:
            raise errors.missing_param("messages")
        await to_device.send(requester, event_type, txn_id, body["messages"])
        return 200, {}

    for path in client_paths("/sendToDevice/{event_type}/{txn_id}"):
        router.register("PUT", path, send)
