"""One outbound transaction: what it carries, its ID, and its body.

spec: server-server-api.md#transactions ("at most 50 PDUs and 100 EDUs"),
data/api/server-server/transactions.yaml (``PUT /_matrix/federation/v1/send/{txnId}``:
"The sending server must wait and retry for a 200 OK response before sending a
transaction with a different txnId", so a failed transaction is kept and sent again
as it was, under its ID).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import attrs

from homeserver.events.event import Event

logger = logging.getLogger(__name__)

#: spec: "Transactions are limited in size; they can have at most 50 PDUs and 100 EDUs."
MAX_PDUS = 50
MAX_EDUS = 100
#: Bytes of PDUs and EDUs a transaction is filled with at most (one item more than
#: this always goes: a transaction never stays empty).  Receivers cap request bodies:
#: Synapse at 12.5 MiB, many proxies lower; 50 PDUs of 64 KiB would already be 3.2 MiB.
MAX_BODY_BYTES = 4 * 1024 * 1024


@attrs.frozen
class PendingPdu:
    """A local event for a destination, at its events stream position."""

    position: int
    event: Event

    def encoded_size(self) -> int:
        return len(self.event.canonical_json)


@attrs.frozen
class Edu:
    edu_type: str
    content: Mapping[str, Any]
    #: The ``federation_outbound_edus`` row of a durable EDU (deleted once
    #: acknowledged); None for an ephemeral one.
    durable_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"edu_type": self.edu_type, "content": self.content}

    def encoded_size(self) -> int:
        return len(json.dumps(self.as_json(), ensure_ascii=False).encode("utf-8"))


@attrs.frozen
class OutboundTransaction:
    txn_id: str
    pdus: Sequence[PendingPdu]
    edus: Sequence[Edu]
    #: Once acknowledged, every PDU for the destination up to this stream position
    #: has been delivered (None: the transaction moves no position).  Catch-up may
    #: cover positions whose events it could not load, so this is not always the
    #: newest PDU's position.
    acks_up_to: int | None = None

    @property
    def path(self) -> str:
        return "/_matrix/federation/v1/send/" + quote(self.txn_id, safe="")

    @property
    def durable_ids(self) -> list[int]:
        return [edu.durable_id for edu in self.edus if edu.durable_id is not None]

    def body(self, origin: str, origin_server_ts: int) -> dict[str, Any]:
        """The request body.  Each PDU is the stored event as signed (its ``pdu``
        dict, which encodes to the stored canonical JSON), less ``unsigned`` if it
        has any: what we noted for ourselves (an invite's stripped state) is not
        for every server in the room, and no hash or signature covers it."""
        return {
            "origin": origin,
            "origin_server_ts": origin_server_ts,
            "pdus": [_without_unsigned(pdu.event.pdu) for pdu in self.pdus],
            "edus": [edu.as_json() for edu in self.edus],
        }


def _without_unsigned(pdu: dict[str, Any]) -> dict[str, Any]:
    if "unsigned" not in pdu:
        return pdu  # Local events are stored without it: shared, not copied.
    return {key: value for key, value in pdu.items() if key != "unsigned"}


class TransactionIds:
    """Transaction IDs unique for this server: the time the process started, then a
    counter.  The receiving server de-duplicates by ``(origin, txnId)``, so an ID must
    never be reused for different contents, also not by the next process."""

    def __init__(self, start_ms: int) -> None:
        self._prefix = str(start_ms)
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}_{next(self._counter)}"


def log_pdu_errors(destination: str, txn_id: str, response: object) -> None:
    """Per-PDU errors of an accepted transaction are logged, not retried (spec: the
    response "is to be used even in the case of processing errors")."""
    if not isinstance(response, Mapping):
        return
    results = response.get("pdus")
    if not isinstance(results, Mapping):
        return
    for event_id, result in itertools.islice(results.items(), MAX_PDUS):
        if isinstance(result, Mapping) and "error" in result:
            logger.info(
                "Transaction %s to %s: %s was refused: %.200s",
                txn_id,
                destination,
                event_id,
                str(result.get("error")),
            )
