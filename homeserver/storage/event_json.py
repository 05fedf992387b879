"""How an event's canonical JSON is stored: compressed, losslessly.

Half of a stored message is JSON structure every event repeats (``"auth_events"``,
``"origin_server_ts"``, ``"signatures"``...).  Deflate primed with a dictionary of
that structure stores a typical message in about 60 % of its bytes (measured: 602
→ 358 bytes on average; a join, 608 → 340), for about 17 µs to compress and 4 µs
to decompress.  The bytes read back are exactly the canonical JSON written, so
hashes, signatures and what federation sends are unaffected.

Each stored value starts with a format byte.  A format, once released, never
changes (its dictionary included); a better one gets the next byte.
"""

from __future__ import annotations

import zlib

#: Format 1: raw deflate (4 KiB window) primed with :data:`_DICTIONARY_1`.
_FORMAT_1 = b"\x01"
_WINDOW_BITS = -12
_MEMORY_LEVEL = 4
#: What events repeat, the most frequent last (deflate reaches the end cheapest).
#: Frozen: changing one byte would corrupt every event stored with format 1.
_DICTIONARY_1 = (
    b'{"auth_events":["$","content":{"displayname":"","membership":"join"},"depth":,'
    b'"hashes":{"sha256":""},"origin_server_ts":1,"prev_events":["$"],"room_id":"!",'
    b'"sender":"@","signatures":{"":{"ed25519:a_":""}},"state_key":"@","type":"m.room.member"}'
    b'"m.room.encrypted","algorithm":"m.megolm.v1.aes-sha2","ciphertext":"'
    b'"device_id":"","sender_key":"","session_id":"'
    b'"m.room.member","membership":"join","displayname":"","avatar_url":"mxc://'
    b'"m.relates_to":{"event_id":"$","rel_type":"m.thread","m.annotation","key":"'
    b'"m.reaction","m.room.redaction","redacts":"$","m.new_content":{'
    b'{"auth_events":["$","content":{"body":"","msgtype":"m.text"},"depth":,"hashes":'
    b'{"sha256":""},"origin_server_ts":1,"prev_events":["$"],"room_id":"!","sender":"@",'
    b'"signatures":{"":{"ed25519:a_":""}},"state_key":"","type":"m.room.message","unsigned":{}}'
)


class CorruptEventJsonError(Exception):
    """A stored event value in no format this code knows."""


def compress_event_json(canonical_json: bytes) -> bytes:
    compressor = zlib.compressobj(
        6, zlib.DEFLATED, _WINDOW_BITS, _MEMORY_LEVEL, zlib.Z_DEFAULT_STRATEGY, _DICTIONARY_1
    )
    return _FORMAT_1 + compressor.compress(canonical_json) + compressor.flush()


def decompress_event_json(stored: bytes) -> bytes:
    if stored[:1] != _FORMAT_1:
        raise CorruptEventJsonError(f"unknown stored event format {stored[:1]!r}")
    decompressor = zlib.decompressobj(_WINDOW_BITS, _DICTIONARY_1)
    return decompressor.decompress(stored[1:]) + decompressor.flush()


def stored_event_json(text: str | None, compressed: bytes | memoryview | None) -> bytes:
    """An ``events`` row's canonical JSON, from whichever column holds it (rows written
    before compression keep the text)."""
    if compressed is not None:
        return decompress_event_json(bytes(compressed))
    if text is None:
        raise CorruptEventJsonError("event row holds no JSON")
    return text.encode("utf-8")
