"""``next_batch`` of ``/search``: opaque to clients, checked strictly when it comes back.

A token is unpadded URL-safe base64 of a small JSON object naming the last hit
already given, so the next page starts right after it (keyset paging: newer events
indexed between two pages neither repeat nor push out results):

- ``o``: the ordering it belongs to (``rank`` or ``recent``);
- ``p``: that hit's stream position (a non-negative integer);
- ``r``: for ``rank`` only, its rank (the page goes on with lower ranks, and with
  older events of the same rank);
- ``g``: for a group's token, the group it is scoped to (``[key, value]``).

Anything else — another ordering, a negative position, a missing rank — is
400 ``M_INVALID_PARAM``.

spec: client-server-api/modules/search.md#pagination
"""

from __future__ import annotations

import base64
import binascii
import json
import math

import attrs

from homeserver import errors
from homeserver.search.criteria import GROUP_KEYS, Order
from homeserver.storage.search import PageKey
from homeserver.util.untrusted_json import UntrustedJsonError, parse_untrusted_json


@attrs.frozen
class PageToken:
    order: Order
    key: PageKey
    #: (``room_id`` or ``sender``, its value) for a group's token.
    group: tuple[str, str] | None = None

    def encode(self) -> str:
        body: dict[str, object] = {"o": self.order, "p": self.key.stream_ordering}
        if self.order == "rank":
            body["r"] = self.key.rank
        if self.group is not None:
            body["g"] = list(self.group)
        raw = json.dumps(body, separators=(",", ":")).encode("utf-8")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_token(text: str, order: Order) -> PageToken:
    invalid = errors.invalid_param("'next_batch' is not a token of this search")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        body = parse_untrusted_json(raw)
    except (binascii.Error, ValueError, UntrustedJsonError):
        raise invalid from None
    if not isinstance(body, dict) or set(body) - {"o", "p", "r", "g"}:
        raise invalid
    position = body.get("p")
    if body.get("o") != order or not isinstance(position, int) or isinstance(position, bool):
        raise invalid
    if not 0 <= position < 2**63:
        raise invalid
    rank: float | None = None
    if order == "rank":
        value = body.get("r")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise invalid
        try:
            rank = float(value)
        except OverflowError:
            raise invalid from None
        if not math.isfinite(rank):
            raise invalid
    elif "r" in body:
        raise invalid
    key = PageKey(position, rank)
    group = body.get("g")
    if group is None:
        return PageToken(order, key)
    if (
        not isinstance(group, list)
        or len(group) != 2
        or group[0] not in GROUP_KEYS
        or not isinstance(group[1], str)
    ):
        raise invalid
    return PageToken(order, key, (group[0], group[1]))
