"""Sync filters, parsed once and cheap to apply.

:meth:`FilterCollection.from_json` validates a filter definition against the spec's
schema and raises :class:`InvalidFilterError` (which the handler answers with
``M_BAD_JSON``).  Type patterns with ``*`` wildcards are compiled to one regular
expression per list; plain types, senders and rooms are sets.

Matching follows the schema's descriptions: an event is excluded if it matches any
``not_*`` entry (even if also listed in the positive list), and, where a positive
list is present, it must match one of its entries.  An event without a sender (or a
room) never matches a present ``senders`` (``rooms``) list.

spec: client-server-api/_index.md#filtering, data/api/client-server/definitions/
sync_filter.yaml, room_event_filter.yaml, event_filter.yaml
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar

import attrs

from homeserver.filtering.fields import FieldPath, only_fields, parse_field_path
from homeserver.identifiers import is_valid_room_id, is_valid_user_id

T = TypeVar("T")
M = TypeVar("M", bound=Mapping[str, Any])

EventFormat = Literal["client", "federation"]


class InvalidFilterError(ValueError):
    """The filter definition does not match the schema; the message says where."""


@attrs.frozen
class TypePatterns:
    """A list of event types in which ``*`` matches any sequence of characters.

    Plain types are a set; each wildcard pattern is kept as its ``*``-separated
    segments and matched left to right with ``str.find``, which is linear in the
    type's length whatever the pattern (a regular expression with several ``.*`` can
    backtrack for a very long time).
    """

    patterns: tuple[str, ...]
    _exact: frozenset[str] = attrs.field(init=False, repr=False, eq=False)
    _globs: tuple[tuple[str, ...], ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_exact", frozenset(p for p in self.patterns if "*" not in p))
        globs = {tuple(p.split("*")) for p in self.patterns if "*" in p}
        object.__setattr__(self, "_globs", tuple(sorted(globs)))

    def matches(self, event_type: str) -> bool:
        if event_type in self._exact:
            return True
        return any(_glob_matches(segments, event_type) for segments in self._globs)

    @property
    def matches_everything(self) -> bool:
        return "*" in self.patterns


def _glob_matches(segments: tuple[str, ...], text: str) -> bool:
    """Whether ``text`` matches the pattern ``"*".join(segments)`` (two or more segments)."""
    first, last = segments[0], segments[-1]
    if len(text) < len(first) + len(last):
        return False
    if not text.startswith(first) or not text.endswith(last):
        return False
    position, end = len(first), len(text) - len(last)
    for segment in segments[1:-1]:
        if segment:
            found = text.find(segment, position, end)
            if found < 0:
                return False
            position = found + len(segment)
    return True


@attrs.frozen
class EventFilter:
    """``EventFilter``: used for top-level ``account_data`` and ``presence``."""

    limit: int | None = None
    types: TypePatterns | None = None
    not_types: TypePatterns = TypePatterns(())
    senders: frozenset[str] | None = None
    not_senders: frozenset[str] = frozenset()

    @property
    def excludes_everything(self) -> bool:
        """True if no event can pass (``types: []`` or ``not_types: ["*"]``)."""
        return (
            self.types is not None and not self.types.patterns
        ) or self.not_types.matches_everything

    def effective_limit(self, default: int, maximum: int) -> int:
        """``limit`` (or ``default`` if unset), capped at ``maximum``."""
        return min(self.limit if self.limit is not None else default, maximum)

    def allows(
        self,
        event_type: str,
        sender: str | None,
        room_id: str | None = None,
        content: Mapping[str, Any] | None = None,
    ) -> bool:
        """Whether an event with these properties passes this filter."""
        if self.not_types.patterns and self.not_types.matches(event_type):
            return False
        if self.types is not None and not self.types.matches(event_type):
            return False
        if sender is not None and sender in self.not_senders:
            return False
        return self.senders is None or (sender is not None and sender in self.senders)

    def matches(self, event: Mapping[str, Any], *, room_id: str | None = None) -> bool:
        """Whether a client-format event dict (``type``, ``sender``, ``room_id``,
        ``content``) passes.  ``room_id`` stands in for events that do not carry one
        (ephemeral and room account data events in ``/sync``)."""
        event_type = event.get("type")
        sender = event.get("sender")
        content = event.get("content")
        return self.allows(
            event_type if isinstance(event_type, str) else "",
            sender if isinstance(sender, str) else None,
            room_id if room_id is not None else event.get("room_id"),
            content if isinstance(content, Mapping) else None,
        )

    def filter(self, events: Iterable[M], *, room_id: str | None = None) -> list[M]:
        """The event dicts that pass, in order."""
        return [event for event in events if self.matches(event, room_id=room_id)]

    def filter_by(
        self,
        items: Iterable[T],
        as_dict: Callable[[T], Mapping[str, Any]],
        *,
        room_id: str | None = None,
    ) -> list[T]:
        """The items whose event dict (``as_dict(item)``) passes, in order."""
        return [item for item in items if self.matches(as_dict(item), room_id=room_id)]


@attrs.frozen
class RoomEventFilter(EventFilter):
    """``RoomEventFilter``: for ``room.timeline``, ``state``, ``ephemeral``, ``account_data``."""

    rooms: frozenset[str] | None = None
    not_rooms: frozenset[str] = frozenset()
    #: None: ``url`` is not considered; True: only events whose content has a string
    #: ``url``; False: only events without one.
    contains_url: bool | None = None
    lazy_load_members: bool = False
    include_redundant_members: bool = False
    unread_thread_notifications: bool = False

    def room_allowed(self, room_id: str | None) -> bool:
        if room_id is not None and room_id in self.not_rooms:
            return False
        return self.rooms is None or (room_id is not None and room_id in self.rooms)

    @property
    def excludes_everything(self) -> bool:
        return super().excludes_everything or (self.rooms is not None and not self.rooms)

    def allows(
        self,
        event_type: str,
        sender: str | None,
        room_id: str | None = None,
        content: Mapping[str, Any] | None = None,
    ) -> bool:
        if not self.room_allowed(room_id):
            return False
        if not super().allows(event_type, sender, room_id, content):
            return False
        if self.contains_url is not None:
            has_url = content is not None and isinstance(content.get("url"), str)
            if has_url != self.contains_url:
                return False
        return True


@attrs.frozen
class RoomFilter:
    """``room`` in a sync filter."""

    rooms: frozenset[str] | None = None
    not_rooms: frozenset[str] = frozenset()
    include_leave: bool = False
    timeline: RoomEventFilter = RoomEventFilter()
    state: RoomEventFilter = RoomEventFilter()
    ephemeral: RoomEventFilter = RoomEventFilter()
    account_data: RoomEventFilter = RoomEventFilter()

    def room_allowed(self, room_id: str) -> bool:
        """Applied before the ``timeline``/``state``/``ephemeral``/``account_data`` filters."""
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms


@attrs.frozen
class FilterCollection:
    """A whole sync filter (``Filter`` in the spec)."""

    room: RoomFilter = RoomFilter()
    account_data: EventFilter = EventFilter()
    presence: EventFilter = EventFilter()
    #: Parsed ``event_fields`` paths, or None to keep every field.
    event_fields: tuple[FieldPath, ...] | None = None
    event_format: EventFormat = "client"

    @classmethod
    def from_json(cls, definition: object) -> FilterCollection:
        """Validate and parse a filter definition; :class:`InvalidFilterError` if invalid."""
        body = _object(definition, "filter")
        event_fields = _string_list(body, "event_fields", "")
        event_format = body.get("event_format", "client")
        if event_format not in ("client", "federation"):
            raise InvalidFilterError("'event_format' must be 'client' or 'federation'")
        return cls(
            room=_room_filter(body, "room"),
            account_data=_event_filter(body, "account_data", ""),
            presence=_event_filter(body, "presence", ""),
            event_fields=(
                None if event_fields is None else tuple(map(parse_field_path, event_fields))
            ),
            event_format=event_format,
        )

    @property
    def include_leave(self) -> bool:
        return self.room.include_leave

    @property
    def lazy_load_members(self) -> bool:
        """Lazy-load members in ``/sync``.  Clients (Element, matrix-js-sdk) and
        Synapse put the flag on the room *state* filter; the timeline filter's is
        honoured too, as the spec defines it on every RoomEventFilter."""
        return self.room.state.lazy_load_members or self.room.timeline.lazy_load_members

    @property
    def include_redundant_members(self) -> bool:
        """Send members the device already holds (only with :attr:`lazy_load_members`)."""
        return self.room.state.include_redundant_members or (
            self.room.timeline.include_redundant_members
        )

    def room_allowed(self, room_id: str) -> bool:
        return self.room.room_allowed(room_id)

    def apply_event_fields(self, event: dict[str, Any]) -> dict[str, Any]:
        """``event`` reduced to ``event_fields`` (``event`` itself if there are none)."""
        if self.event_fields is None:
            return event
        return only_fields(event, self.event_fields)


#: The filter used when a request names none: everything passes.
DEFAULT_FILTER = FilterCollection()


# --- parsing ---------------------------------------------------------------------------


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidFilterError(f"{path!r} must be an object")
    return value


def _string_list(
    body: dict[str, Any],
    key: str,
    path: str,
    check: Callable[[str], bool] | None = None,
    what: str = "",
) -> list[str] | None:
    if key not in body:
        return None
    value = body[key]
    where = _where(path, key)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidFilterError(f"{where!r} must be a list of strings")
    if check is not None:
        for item in value:
            if not check(item):
                raise InvalidFilterError(f"{where!r}: {item!r} is not a valid {what}")
    return value


def _id_set(
    body: dict[str, Any], key: str, path: str, check: Callable[[str], bool], what: str
) -> frozenset[str] | None:
    values = _string_list(body, key, path, check, what)
    return None if values is None else frozenset(values)


def _bool(body: dict[str, Any], key: str, path: str) -> bool | None:
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, bool):
        raise InvalidFilterError(f"{_where(path, key)!r} must be a boolean")
    return value


def _limit(body: dict[str, Any], path: str) -> int | None:
    if "limit" not in body:
        return None
    value = body["limit"]
    # JSON Schema integers include numbers like 10.0; booleans are not numbers.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    # The schema says "greater than 0", but Synapse accepts 0 and clients (and sytest)
    # send ``timeline.limit: 0`` to get a room list without timelines; it means "no
    # events", so it is accepted.  Negative limits still are not.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidFilterError(f"{_where(path, 'limit')!r} must be a non-negative integer")
    return value


def _event_filter_fields(body: dict[str, Any], path: str) -> dict[str, Any]:
    types = _string_list(body, "types", path)
    not_types = _string_list(body, "not_types", path)
    return {
        "limit": _limit(body, path),
        "types": None if types is None else TypePatterns(tuple(types)),
        "not_types": TypePatterns(tuple(not_types or ())),
        "senders": _id_set(body, "senders", path, is_valid_user_id, "user ID"),
        "not_senders": _id_set(body, "not_senders", path, is_valid_user_id, "user ID")
        or frozenset(),
    }


def _event_filter(parent: dict[str, Any], key: str, path: str) -> EventFilter:
    if key not in parent:
        return EventFilter()
    where = _where(path, key)
    return EventFilter(**_event_filter_fields(_object(parent[key], where), where))


def _room_event_filter(parent: dict[str, Any], key: str, path: str) -> RoomEventFilter:
    if key not in parent:
        return RoomEventFilter()
    where = _where(path, key)
    body = _object(parent[key], where)
    return RoomEventFilter(
        **_event_filter_fields(body, where),
        rooms=_id_set(body, "rooms", where, is_valid_room_id, "room ID"),
        not_rooms=_id_set(body, "not_rooms", where, is_valid_room_id, "room ID") or frozenset(),
        contains_url=_bool(body, "contains_url", where),
        lazy_load_members=bool(_bool(body, "lazy_load_members", where)),
        include_redundant_members=bool(_bool(body, "include_redundant_members", where)),
        unread_thread_notifications=bool(_bool(body, "unread_thread_notifications", where)),
    )


def _room_filter(parent: dict[str, Any], key: str) -> RoomFilter:
    if key not in parent:
        return RoomFilter()
    body = _object(parent[key], key)
    return RoomFilter(
        rooms=_id_set(body, "rooms", key, is_valid_room_id, "room ID"),
        not_rooms=_id_set(body, "not_rooms", key, is_valid_room_id, "room ID") or frozenset(),
        include_leave=bool(_bool(body, "include_leave", key)),
        timeline=_room_event_filter(body, "timeline", key),
        state=_room_event_filter(body, "state", key),
        ephemeral=_room_event_filter(body, "ephemeral", key),
        account_data=_room_event_filter(body, "account_data", key),
    )
