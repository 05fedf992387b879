"""Pagination tokens: the sync token (one position per stream) and the topological
token (a point in one room's history).

``next_batch`` / ``since`` in ``/sync`` are opaque strings to clients; ours is ``s``
followed by the positions joined with ``_`` in :data:`STREAM_KEYS` order.  Tokens from
an older server with fewer streams parse (missing positions are 0), so adding a stream
never invalidates a client's token.

``/messages`` and ``/context`` hand out :class:`TopologicalToken` (``t<depth>_<stream>``)
and accept both kinds (:func:`parse_pagination_token`); see docs/architecture.md,
"History order".

spec: client-server-api/_index.md#syncing, #get_matrixclientv3roomsroomidmessages
"""

from __future__ import annotations

import re
from typing import Literal

import attrs

from homeserver import errors

StreamKey = Literal[
    "events", "account_data", "receipts", "typing", "presence", "to_device", "device_lists"
]

#: Order of positions in the serialised token; append only.
STREAM_KEYS: tuple[StreamKey, ...] = (
    "events",
    "account_data",
    "receipts",
    "typing",
    "presence",
    "to_device",
    "device_lists",
)

_MAX_POSITION = 2**63 - 1


@attrs.frozen
class StreamToken:
    events: int = 0
    account_data: int = 0
    receipts: int = 0
    typing: int = 0
    presence: int = 0
    to_device: int = 0
    device_lists: int = 0

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


#: ``t<depth>_<stream>``: depth as events carry it (0..2**63-1), stream signed (events
#: filled in by backfill have negative stream positions).  At most 19 digits each, so
#: ``int()`` never sees an absurdly long number.
_TOPOLOGICAL = re.compile(r"t([0-9]{1,19})_(-?[0-9]{1,19})", re.ASCII)
_MIN_STREAM = -(2**63)


@attrs.frozen(order=True)
class TopologicalToken:
    """A point between two events of a room's history: after every event whose
    ``(depth, stream_ordering)`` is at most ``(depth, stream)`` and before every other.

    Events are ordered by ``(depth, stream_ordering)``: the graph decides, arrival
    breaks ties.  Both are integers, so "just before event X" is the point after
    ``(X.depth, X.stream - 1)``.  Tokens compare in history order.
    """

    depth: int
    stream: int

    @classmethod
    def after(cls, depth: int, stream: int) -> TopologicalToken:
        """The point just after the event at ``(depth, stream)``."""
        return cls(depth, stream)

    @classmethod
    def before(cls, depth: int, stream: int) -> TopologicalToken:
        """The point just before the event at ``(depth, stream)``."""
        return cls(depth, stream - 1)

    @property
    def key(self) -> tuple[int, int]:
        """``(depth, stream)``: the last event position at or before this point."""
        return (self.depth, self.stream)

    def to_string(self) -> str:
        return f"t{self.depth}_{self.stream}"

    @classmethod
    def parse(cls, text: str, *, param: str) -> TopologicalToken:
        """The token in ``text``; anything else is 400 ``M_INVALID_PARAM`` naming ``param``."""
        match = _TOPOLOGICAL.fullmatch(text)
        if match is None:
            raise errors.invalid_param(f"{param!r} is not a valid token")
        depth, stream = int(match[1]), int(match[2])
        if depth > _MAX_POSITION or not _MIN_STREAM <= stream <= _MAX_POSITION:
            raise errors.invalid_param(f"{param!r} is not a valid token")
        return cls(depth, stream)


#: Before every event of any room (depths are never negative, and no stream
#: position reaches the 64-bit minimum).
HISTORY_START = TopologicalToken(0, _MIN_STREAM)


def parse_pagination_token(text: str, *, param: str) -> StreamToken | TopologicalToken:
    """A ``/messages`` ``from``/``to`` (or ``/members`` ``at``): a topological token, or
    a sync token (what ``/sync`` and older versions of ``/messages`` hand out); 400
    ``M_INVALID_PARAM`` naming ``param`` for anything else."""
    if text.startswith("t"):
        return TopologicalToken.parse(text, param=param)
    return StreamToken.parse(text, param=param)
