"""``PUT /_matrix/federation/v1/send/{txnId}``: transactions of PDUs and EDUs.

spec: server-server-api.md#put_matrixfederationv1sendtxnid
(data/api/server-server/transactions.yaml)
"""

from __future__ import annotations

from typing import Any

from federation.inbound.transactions import TransactionHandler
from federation.transport.server import FederationRequestAuthenticator
from homeserver.http.parsing import parse_json_object
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router


def register(
    router: Router,
    *,
    authenticator: FederationRequestAuthenticator,
    transactions: TransactionHandler,
) -> None:
    async def send(request: MatrixRequest, txn_id: str) -> tuple[int, Any]:
        body = parse_json_object(request)
        origin = await authenticator.authenticate(request, body)
        return 200, await transactions.on_transaction(origin, txn_id, body)

    router.register("PUT", "/_matrix/federation/v1/send/{txn_id}", send)
