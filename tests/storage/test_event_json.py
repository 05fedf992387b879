"""Stored event JSON: compressed losslessly, old rows still readable."""

from __future__ import annotations

import pytest

from homeserver.events.canonical import encode_canonical_json
from homeserver.storage.event_json import (
    CorruptEventJsonError,
    compress_event_json,
    decompress_event_json,
    stored_event_json,
)

MESSAGE = {
    "auth_events": ["$3dkNfpE0HHRNYggGGisqAKA22X40jyBFIoOd_NR1VPc"],
    "content": {"body": "hello ☃ \u0000-free text", "msgtype": "m.text"},
    "depth": 2025,
    "hashes": {"sha256": "M+j49uz5wqBWZcXCdUT49tCNclmxEreuaZyy68qQbC0"},
    "origin_server_ts": 1796250726978,
    "prev_events": ["$Fi44jE8VR-oPAxsYScdJuEJQqRVpXiR2uyfcA2FN-4I"],
    "room_id": "!6QTPV2iyYWR3MBawrdPT4m5jiiFhcpFQ2kZfDkM1ATY",
    "sender": "@u19:localhost",
    "signatures": {"localhost": {"ed25519:a_orNu": "H+VLTJx2aVhV7MZriAqJSrspSPJH5q12"}},
    "type": "m.room.message",
}


def test_compressed_event_json_reads_back_byte_for_byte_and_smaller() -> None:
    canonical = encode_canonical_json(MESSAGE)
    stored = compress_event_json(canonical)
    assert decompress_event_json(stored) == canonical
    assert len(stored) < 0.8 * len(canonical)


def test_rows_written_before_compression_are_read_from_their_text() -> None:
    canonical = encode_canonical_json(MESSAGE)
    assert stored_event_json(canonical.decode(), None) == canonical
    assert stored_event_json("", memoryview(compress_event_json(canonical))) == canonical


def test_an_unknown_stored_format_is_an_error_not_garbage() -> None:
    with pytest.raises(CorruptEventJsonError):
        decompress_event_json(b"\x07" + b"whatever")
    with pytest.raises(CorruptEventJsonError):
        stored_event_json(None, None)
