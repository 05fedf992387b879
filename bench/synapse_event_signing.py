"""Synapse's side of bench_event_signing.py; runs under Synapse's virtualenv.

Usage: synapse_event_signing.py <seed_base64> <server_name> <room_version> <pdu_json>
       <min_seconds> <our_signed_pdu_json> <our_event_id>
Prints one JSON line: {"sign_and_id": ops/s, "verify_and_hash": ops/s, "parse_and_id": ops/s}.
Exits non-zero first if Synapse disagrees with our hashes, signature or event ID.
"""

from __future__ import annotations

import copy
import json
import sys

from common import ops_per_second
from signedjson.key import decode_signing_key_base64, get_verify_key
from signedjson.sign import verify_signed_json
from synapse.api.room_versions import KNOWN_ROOM_VERSIONS
from synapse.crypto.event_signing import add_hashes_and_signatures, check_event_content_hash
from synapse.events import make_event_from_dict
from synapse.federation.federation_base import event_from_pdu_json
from synapse.synapse_rust.events import redact_event


def main() -> None:
    seed, server_name, version, pdu_json, min_seconds_arg, our_signed, our_id = sys.argv[1:8]
    min_seconds = float(min_seconds_arg)
    room_version = KNOWN_ROOM_VERSIONS[version]
    signing_key = decode_signing_key_base64("ed25519", "1", seed)
    verify_key = get_verify_key(signing_key)
    template = json.loads(pdu_json)

    def sign_and_id() -> str:
        # add_hashes_and_signatures mutates ``hashes``, so start from a fresh copy of it.
        pdu = dict(template)
        pdu["hashes"] = {}
        add_hashes_and_signatures(room_version, pdu, server_name, signing_key)
        # Synapse derives the v3+ event ID from an event object.
        event_id: str = make_event_from_dict(pdu, room_version).event_id
        return event_id

    signed = dict(template)
    add_hashes_and_signatures(room_version, signed, server_name, signing_key)
    # Same workload, same bytes: otherwise the comparison is meaningless.
    ours = json.loads(our_signed)
    if ours != signed or make_event_from_dict(ours, room_version).event_id != our_id:
        raise SystemExit("Synapse and our implementation disagree on the signed event")
    # Receiving servers build the event object once; only the checks are timed.
    event = make_event_from_dict(copy.deepcopy(signed), room_version)

    def verify_and_hash() -> None:
        verify_signed_json(redact_event(event).get_pdu_json(), server_name, verify_key)
        if not check_event_content_hash(event):
            raise AssertionError("content hash mismatch")

    def parse_and_id() -> str:
        event_id: str = event_from_pdu_json(dict(signed), room_version).event_id
        return event_id

    figures = {
        "sign_and_id": ops_per_second(sign_and_id, min_seconds=min_seconds),
        "verify_and_hash": ops_per_second(verify_and_hash, min_seconds=min_seconds),
        "parse_and_id": ops_per_second(parse_and_id, min_seconds=min_seconds),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
