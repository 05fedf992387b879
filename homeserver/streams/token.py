"""The sync token: one position per stream.

``next_batch`` / ``since`` in ``/sync`` and the ``from``/``to`` tokens of
``/messages`` are opaque strings to clients; ours is ``s`` followed by the
positions joined with ``_`` in :data:`STREAM_KEYS` order.  Tokens from an older
server with fewer streams parse (missing positions are 0), so adding a stream
never invalidates a client's token.

spec: client-server-api/_index.md#syncing
"""

from __future__ import annotations

from typing import Literal

import attrs

from homeserver import errors

StreamKey = Literal["events", "account_data", "receipts", "typing"]

#: Order of positions in the serialised token; append only.
STREAM_KEYS: tuple[StreamKey, ...] = ("events", "account_data", "receipts", "typing")

_MAX_POSITION = 2**63 - 1


@attrs.frozen
class StreamToken:
    events: int = 0
    account_data: int = 0
    receipts: int = 0
    typing: int = 0

    def get(self, key: StreamKey) -> int:
        value: int = getattr(self, key)
        return value

    def with_position(self, key: StreamKey, position: int) -> StreamToken:
        return attrs.evolve(self, **{key: position})

    def advanced_to(self, other: StreamToken) -> StreamToken:
        """Each position the greater of the two."""
        return StreamToken(*(max(self.get(key), other.get(key)) for key in STREAM_KEYS))

    def is_after(self, other: StreamToken) -> bool:
        """True if any stream has moved past ``other``."""
        return any(self.get(key) > other.get(key) for key in STREAM_KEYS)

    def to_string(self) -> str:
        return "s" + "_".join(str(self.get(key)) for key in STREAM_KEYS)

    @classmethod
    def parse(cls, text: str, *, param: str = "since") -> StreamToken:
        """The token in ``text``; anything else is 400 ``M_INVALID_PARAM`` naming ``param``."""
        parts = text[1:].split("_") if text.startswith("s") else []
        if not parts or len(parts) > len(STREAM_KEYS):
            raise errors.invalid_param(f"{param!r} is not a valid token")
        positions = []
        for part in parts:
            # isdecimal() alone accepts non-ASCII digits that int() would then read.
            if not (part.isascii() and part.isdecimal()) or int(part) > _MAX_POSITION:
                raise errors.invalid_param(f"{param!r} is not a valid token")
            positions.append(int(part))
        return cls(*positions)
