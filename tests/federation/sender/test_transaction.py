"""Transactions as built: IDs unique per process start, the body's PDUs as stored
(``unsigned`` left out), and a hostile answer's per-PDU results only logged.

spec: server-server-api.md#transactions
"""

from __future__ import annotations

import logging

import pytest

from federation.sender.transaction import (
    Edu,
    OutboundTransaction,
    PendingPdu,
    TransactionIds,
    log_pdu_errors,
)
from homeserver.events.event import Event
from homeserver.events.room_versions import get_room_version


def _event(pdu: dict[str, object]) -> Event:
    return Event(dict(pdu), get_room_version("10"), "$e")


def test_transaction_ids_never_repeat_within_or_across_process_starts() -> None:
    first, second = TransactionIds(1000), TransactionIds(1001)
    ids = [first.next() for _ in range(3)] + [second.next() for _ in range(3)]
    assert len(set(ids)) == 6


def test_the_body_carries_each_pdu_as_stored_without_unsigned() -> None:
    plain = _event({"type": "m.room.message", "content": {"body": "hi"}})
    noted = _event({"type": "m.room.member", "content": {}, "unsigned": {"invite_room_state": []}})
    txn = OutboundTransaction(
        "1_1", [PendingPdu(1, plain), PendingPdu(2, noted)], [Edu("m.typing", {"a": 1})], 2
    )
    body = txn.body("us.test", 123)
    assert body["origin"] == "us.test" and body["origin_server_ts"] == 123
    assert body["pdus"][0] is plain.pdu
    assert body["pdus"][1] == {"type": "m.room.member", "content": {}}
    assert "unsigned" in noted.pdu  # the stored event is untouched
    assert body["edus"] == [{"edu_type": "m.typing", "content": {"a": 1}}]
    assert OutboundTransaction("a/b c", [], []).path == "/_matrix/federation/v1/send/a%2Fb%20c"


@pytest.mark.parametrize("response", [None, [], {"pdus": []}, {"pdus": {"$x": "bad"}}])
def test_a_malformed_answer_is_ignored(response: object) -> None:
    log_pdu_errors("remote.test", "1_1", response)


def test_refused_pdus_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="federation.sender.transaction"):
        log_pdu_errors("remote.test", "1_1", {"pdus": {"$x": {"error": "nope"}, "$y": {}}})
    assert "$x was refused: nope" in caplog.text
    assert "$y" not in caplog.text
