"""Benchmark: event hashing/signing/verification, ours vs Synapse, room version 12.

Workloads, on a typical m.room.message (about 300 bytes of content):

(a) ``sign_and_id``: content hash + signature + event ID (what every locally created
    event costs);
(b) ``verify_and_hash``: signature check + content hash check (what every received
    event costs);
(c) ``parse_and_id``: format validation + event ID (``event_from_pdu`` vs Synapse's
    ``event_from_pdu_json(...).event_id``).

The machine is shared, so ours and Synapse's runs alternate for a few rounds and the
best figure of each is reported.

Run: ``python -m bench.bench_event_signing [min_seconds] [rounds]``
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from signedjson.key import decode_signing_key_base64, get_verify_key
from unpaddedbase64 import encode_base64

from bench.common import ops_per_second, run_in_synapse
from homeserver.events.format import event_from_pdu
from homeserver.events.hashing import check_content_hash, compute_event_id
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.signing import (
    VerifyKeyWithExpiry,
    sign_event,
    sign_event_and_compute_id,
    verify_event_signatures,
)

SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
SERVER_NAME = "example.org"
ROOM_VERSION = "12"
ROOM_ID = "!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ"


def _fake_event_id(name: str) -> str:
    return "$" + encode_base64(hashlib.sha256(name.encode()).digest(), urlsafe=True)


def message_event() -> dict[str, Any]:
    """An unsigned m.room.message PDU as a v12 server would build it."""
    body = (
        "Hi all! The release candidate is up on the staging server now. Please try "
        "joining a few rooms, sending some messages and uploading a file or two, "
        "then report anything odd in this room before Friday. Thanks!"
    )
    return {
        "type": "m.room.message",
        "room_id": ROOM_ID,
        "sender": "@alice:example.org",
        "origin_server_ts": 1_732_000_000_000,
        "depth": 4242,
        "prev_events": [_fake_event_id("prev")],
        "auth_events": [_fake_event_id("power_levels"), _fake_event_id("sender_member")],
        "content": {
            "msgtype": "m.text",
            "body": body,
            "m.mentions": {"user_ids": ["@bob:example.org"]},
        },
        "signatures": {},
        "unsigned": {"age": 12},
    }


def run_ours(min_seconds: float) -> dict[str, float]:
    room_version = KNOWN_ROOM_VERSIONS[ROOM_VERSION]
    signing_key = decode_signing_key_base64("ed25519", "1", SEED)
    keys = {SERVER_NAME: {"ed25519:1": VerifyKeyWithExpiry(get_verify_key(signing_key))}}
    template = message_event()

    def sign_and_id() -> None:
        # One shared encoding of the redacted event serves the signature and the ID.
        sign_event_and_compute_id(dict(template), SERVER_NAME, signing_key, room_version)

    def sign_then_id() -> None:
        pdu = dict(template)
        sign_event(pdu, SERVER_NAME, signing_key, room_version)
        compute_event_id(pdu, room_version)

    signed = dict(template)
    sign_event(signed, SERVER_NAME, signing_key, room_version)

    def verify_and_hash() -> None:
        verify_event_signatures(signed, room_version, keys)
        if not check_content_hash(signed):
            raise AssertionError("content hash mismatch")

    def parse_and_id() -> None:
        event_from_pdu(signed, room_version)

    return {
        "sign_and_id": ops_per_second(sign_and_id, min_seconds=min_seconds),
        "sign_then_id": ops_per_second(sign_then_id, min_seconds=min_seconds),
        "verify_and_hash": ops_per_second(verify_and_hash, min_seconds=min_seconds),
        "parse_and_id": ops_per_second(parse_and_id, min_seconds=min_seconds),
    }


def run_synapse(min_seconds: float) -> dict[str, float]:
    script = Path(__file__).resolve().parent / "synapse_event_signing.py"
    room_version = KNOWN_ROOM_VERSIONS[ROOM_VERSION]
    signing_key = decode_signing_key_base64("ed25519", "1", SEED)
    signed = message_event()
    event_id = sign_event_and_compute_id(signed, SERVER_NAME, signing_key, room_version)
    return run_in_synapse(
        script,
        SEED,
        SERVER_NAME,
        ROOM_VERSION,
        json.dumps(message_event()),
        str(min_seconds),
        json.dumps(signed),
        event_id,
    )


def main() -> None:
    min_seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    content_size = len(json.dumps(message_event()["content"], separators=(",", ":")))
    ours: dict[str, float] = {}
    theirs: dict[str, float] = {}
    for _ in range(rounds):
        for best, figures in ((ours, run_ours(min_seconds)), (theirs, run_synapse(min_seconds))):
            for key, value in figures.items():
                best[key] = max(best.get(key, 0.0), value)
    rows = [
        ("(a) hash + sign + event ID", ours["sign_and_id"], theirs["sign_and_id"]),
        (
            "(a') same via sign_event + compute_event_id",
            ours["sign_then_id"],
            theirs["sign_and_id"],
        ),
        ("(b) verify signature + check hash", ours["verify_and_hash"], theirs["verify_and_hash"]),
        ("(c) validate PDU + event ID", ours["parse_and_id"], theirs["parse_and_id"]),
    ]
    print(
        f"room version {ROOM_VERSION}, m.room.message with {content_size} bytes of content, "
        f"best of {rounds} rounds"
    )
    print(f"{'workload':<46} {'ours ops/s':>12} {'Synapse ops/s':>14} {'ratio':>7}")
    for name, our_rate, their_rate in rows:
        print(f"{name:<46} {our_rate:>12,.0f} {their_rate:>14,.0f} {our_rate / their_rate:>6.2f}x")


if __name__ == "__main__":
    main()
