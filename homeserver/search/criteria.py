"""``POST /search``: the ``room_events`` criteria, validated (400 on anything wrong).

Besides the spec's ``RoomEventFilter`` (rooms, senders, types, ``contains_url``,
``limit``), ``filter`` takes fields of our own, under ``dev.homeserver.`` so clients
that do not know them never send them by accident (docs/search.md):

- ``dev.homeserver.since_ts`` / ``dev.homeserver.until_ts``: ``origin_server_ts``
  range, milliseconds, inclusive;
- ``dev.homeserver.unread_only``: only events of others after the user's read receipt;
- ``dev.homeserver.media``: only media messages of these kinds (``image``,
  ``audio``, ``video``, ``file``: msgtypes ``m.image``, ...).

spec: client-server-api/modules/search.md, data/api/client-server/search.yaml,
definitions/room_event_filter.yaml
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from homeserver import errors
from homeserver.filtering.model import FilterCollection, InvalidFilterError, RoomEventFilter

Order = Literal["rank", "recent"]

SEARCH_KEYS = frozenset({"content.body", "content.name", "content.topic"})
MEDIA = frozenset({"image", "audio", "video", "file"})
GROUP_KEYS = ("room_id", "sender")
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
DEFAULT_CONTEXT = 5
#: ``event_context.before_limit`` / ``after_limit`` above this are lowered to it.
MAX_CONTEXT = 20
#: Context events in one response, all results together: later results get less
#: (100 results with 20 + 20 would be 4,000 events, each read and filtered).
MAX_CONTEXT_EVENTS = 500
MAX_TERM_LENGTH = 1000
_PREFIX = "dev.homeserver."


@attrs.frozen
class EventContext:
    before_limit: int = DEFAULT_CONTEXT
    after_limit: int = DEFAULT_CONTEXT
    include_profile: bool = False


@attrs.frozen
class RoomEventsCriteria:
    search_term: str
    keys: frozenset[str] = SEARCH_KEYS
    filter: RoomEventFilter = RoomEventFilter()
    order_by: Order = "rank"
    event_context: EventContext | None = None
    include_state: bool = False
    group_by: tuple[str, ...] = ()
    limit: int = DEFAULT_LIMIT
    since_ts: int | None = None
    until_ts: int | None = None
    unread_only: bool = False
    media: frozenset[str] | None = None


def parse_search_body(body: dict[str, Any]) -> RoomEventsCriteria | None:
    """The ``room_events`` criteria of a request body (None if it asks no category we
    know: other categories are ignored)."""
    categories = body.get("search_categories")
    if not isinstance(categories, dict):
        raise errors.bad_json("'search_categories' must be an object")
    room_events = categories.get("room_events")
    if room_events is None:
        return None
    if not isinstance(room_events, dict):
        raise errors.bad_json("'room_events' must be an object")
    return _room_events(room_events)


def _room_events(body: dict[str, Any]) -> RoomEventsCriteria:
    term = body.get("search_term")
    if term is None:
        raise errors.missing_param("search_term")
    if not isinstance(term, str):
        raise errors.bad_json("'search_term' must be a string")
    if len(term) > MAX_TERM_LENGTH:
        raise errors.bad_json(f"'search_term' is longer than {MAX_TERM_LENGTH} characters")
    keys = SEARCH_KEYS
    if "keys" in body:
        value = body["keys"]
        if not isinstance(value, list) or not all(key in SEARCH_KEYS for key in value):
            raise errors.bad_json(f"'keys' must be a list of {', '.join(sorted(SEARCH_KEYS))}")
        keys = frozenset(value)
    order = body.get("order_by", "rank")
    if order not in ("rank", "recent"):
        raise errors.bad_json("'order_by' must be 'rank' or 'recent'")
    filter_body = body.get("filter", {})
    if not isinstance(filter_body, dict):
        raise errors.bad_json("'filter' must be an object")
    room_filter = _room_event_filter(filter_body)
    limit = room_filter.limit if room_filter.limit is not None else DEFAULT_LIMIT
    media = _media(filter_body)
    return RoomEventsCriteria(
        search_term=term,
        keys=keys,
        filter=room_filter,
        order_by=order,
        event_context=_event_context(body.get("event_context")),
        include_state=_bool(body, "include_state", "include_state"),
        group_by=_group_by(body.get("groupings")),
        limit=max(1, min(limit, MAX_LIMIT)),
        since_ts=_timestamp(filter_body, _PREFIX + "since_ts"),
        until_ts=_timestamp(filter_body, _PREFIX + "until_ts"),
        unread_only=_bool(
            filter_body, _PREFIX + "unread_only", "filter." + _PREFIX + "unread_only"
        ),
        media=media,
    )


def _room_event_filter(body: dict[str, Any]) -> RoomEventFilter:
    """The spec's part of ``filter``, with the sync filter's validation."""
    try:
        return FilterCollection.from_json({"room": {"timeline": body}}).room.timeline
    except InvalidFilterError as error:
        message = (
            str(error).replace("'room.timeline.", "'filter.").replace("'room.timeline'", "'filter'")
        )
        raise errors.bad_json(f"Invalid filter: {message}") from None


def _event_context(value: object) -> EventContext | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise errors.bad_json("'event_context' must be an object")
    limits = []
    for key in ("before_limit", "after_limit"):
        limit = value.get(key, DEFAULT_CONTEXT)
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise errors.bad_json(f"'event_context.{key}' must be a non-negative integer")
        limits.append(min(limit, MAX_CONTEXT))
    return EventContext(
        before_limit=limits[0],
        after_limit=limits[1],
        include_profile=_bool(value, "include_profile", "event_context.include_profile"),
    )


def _group_by(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise errors.bad_json("'groupings' must be an object")
    groups = value.get("group_by", [])
    if not isinstance(groups, list):
        raise errors.bad_json("'groupings.group_by' must be a list")
    keys: list[str] = []
    for group in groups:
        key = group.get("key") if isinstance(group, dict) else None
        if key not in GROUP_KEYS:
            raise errors.bad_json("'groupings.group_by' keys must be 'room_id' or 'sender'")
        if key not in keys:
            keys.append(key)
    return tuple(keys)


def _bool(body: dict[str, Any], key: str, where: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise errors.bad_json(f"'{where}' must be a boolean")
    return value


def _timestamp(body: dict[str, Any], key: str) -> int | None:
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise errors.bad_json(f"'filter.{key}' must be a timestamp in milliseconds")
    return value


def _media(body: dict[str, Any]) -> frozenset[str] | None:
    key = _PREFIX + "media"
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, list) or not all(kind in MEDIA for kind in value):
        raise errors.bad_json(f"'filter.{key}' must be a list of {', '.join(sorted(MEDIA))}")
    return frozenset(value)
