"""Applies a user's push rules to an event: does it notify them, and how.

:class:`PushRuleEvaluator` is built once per :class:`~homeserver.push.rules.Ruleset`
and then answers :meth:`PushRuleEvaluator.evaluate` for any number of events.  Rules
are compiled once: disabled rules and rules that can never match (an unknown
condition kind, a malformed known condition) are dropped, conditions become small
functions, glob patterns become regular expressions (shared between evaluators
through a bounded cache).  Room and sender rules are dictionary lookups, and
override/underride rules pinned to one room by an ``event_match`` on ``room_id``
(as clients mute rooms) are only looked at for that room.

Choices where the spec leaves room (each pinned by a test):

- Events the user sent themselves never notify ("Homeservers MUST NOT notify the
  Push Gateway for events that the user has sent themselves").
- ``highlight`` and ``sound`` describe a notification: without ``notify`` the
  result is :data:`NOTHING`, whatever the tweaks say.  Historical actions
  (``dont_notify``, ``coalesce``) are ignored, so ``["dont_notify"]`` equals ``[]``.
- The ``room_id`` property is the context's room (events in the client format have
  no ``room_id``).
- "Case-insensitive" is Python's: ``str.lower`` for patterns without wildcards,
  ``re.IGNORECASE`` otherwise.  Word characters are exactly ``[A-Za-z0-9_]``.
- Glob matching runs in time linear in the value for a given pattern (no
  backtracking between ``*``), so long message bodies cannot make it expensive.
- ``sender_notification_permission``: a key missing from the power levels'
  ``notifications`` needs level 50 (the default of ``room``).
- ``contains_display_name``: the display name is matched literally, case-insensitively,
  between word boundaries, like a content rule; an empty or blank name never matches.

spec: client-server-api/modules/push.md#push-rules, #actions, #conditions-1;
appendices.md#glob-style-matching, #dot-separated-property-paths
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs

from homeserver.push.rules import CONDITION_KINDS, MEMBER_COUNT_RE, PushRule, Ruleset
from homeserver.util.caches import LruCache
from homeserver.util.property_paths import split_property_path


@attrs.frozen
class Actions:
    """What a matching rule asks for.  ``highlight`` and ``sound`` are only ever set
    with ``notify``."""

    notify: bool
    highlight: bool
    sound: str | None = None
    #: The matched rule's ``actions`` as JSON, tweaks included (``GET /notifications``
    #: and pushers show them); empty for :data:`NOTHING`.
    raw: tuple[Any, ...] = attrs.field(default=(), eq=False, repr=False)


NOTHING: Final = Actions(notify=False, highlight=False)

#: ``notifications`` when the power levels say nothing.
#: spec: data/event-schemas/schema/m.room.power_levels.yaml
DEFAULT_NOTIFICATION_LEVELS: Final[Mapping[str, int]] = {"room": 50}
DEFAULT_NOTIFICATION_LEVEL: Final = 50


@attrs.frozen
class EvaluationContext:
    """What the rules need to know besides the event, for one recipient."""

    user_id: str
    #: The user's display name in the room (``contains_display_name``).
    user_display_name: str | None
    room_member_count: int
    #: The sender's power level in the room.
    sender_power_level: int
    #: The power levels' ``notifications`` (:data:`DEFAULT_NOTIFICATION_LEVELS` when absent).
    notification_levels: Mapping[str, int]
    room_id: str


def tweaks_of(actions: Sequence[Any]) -> dict[str, Any]:
    """Every ``set_tweak`` of ``actions`` as ``{tweak: value}`` (the ``tweaks`` push
    gateways get), custom ones included; ``highlight`` without a value is true, another
    tweak without one is None.  Later tweaks win over earlier ones.
    spec: client-server-api/modules/push.md#actions"""
    tweaks: dict[str, Any] = {}
    for action in actions:
        if isinstance(action, Mapping) and isinstance(action.get("set_tweak"), str):
            tweak = action["set_tweak"]
            tweaks[tweak] = action.get("value", True if tweak == "highlight" else None)
    return tweaks


def actions_of(actions: Sequence[Any]) -> Actions:
    """A rule's ``actions`` as :class:`Actions`: ``notify``; ``set_tweak: highlight``
    with no value or ``true``; ``set_tweak: sound`` with a string value (from
    :func:`tweaks_of`).  spec: client-server-api/modules/push.md#actions"""
    if "notify" not in actions:
        return NOTHING
    tweaks = tweaks_of(actions)
    sound = tweaks.get("sound")
    return Actions(
        notify=True,
        highlight=tweaks.get("highlight", False) is True,
        sound=sound if isinstance(sound, str) else None,
        raw=tuple(actions),
    )


# --- property paths ------------------------------------------------------------------


#: Condition keys are few and repeat across users: split each once.
split_path = functools.lru_cache(maxsize=4096)(split_property_path)


_ABSENT: Final = object()

Getter = Callable[[Mapping[str, Any], EvaluationContext], Any]


def _getter(path: tuple[str, ...]) -> Getter:
    """A function reading the property at ``path`` (``_ABSENT`` when missing)."""
    if path == ("room_id",):
        return lambda event, context: context.room_id
    if len(path) == 1:
        (only,) = path
        return lambda event, context: event.get(only, _ABSENT)

    def get(event: Mapping[str, Any], context: EvaluationContext) -> Any:
        value: Any = event
        for part in path:
            if not isinstance(value, Mapping):
                return _ABSENT
            value = value.get(part, _ABSENT)
            if value is _ABSENT:
                return _ABSENT
        return value

    return get


# --- glob patterns -------------------------------------------------------------------

_FLAGS: Final = re.IGNORECASE | re.DOTALL
_NOT_AFTER_WORD: Final = r"(?<!(?-i:[A-Za-z0-9_]))"
_NOT_BEFORE_WORD: Final = r"(?!(?-i:[A-Za-z0-9_]))"

StringMatcher = Callable[[str], bool]


def _segment(glob: str) -> str:
    """A ``*``-free glob as a regular expression matching exactly len(glob) characters."""
    return "".join("." if char == "?" else re.escape(char) for char in glob)


@functools.lru_cache(maxsize=4096)
def glob_matcher(pattern: str, *, word_boundary: bool = False) -> StringMatcher:
    """Whether a string matches a glob (``*``: any characters, ``?``: one character),
    case-insensitively: the whole string, or with ``word_boundary`` any substring that
    starts and ends at a word boundary (start/end of the value or a character outside
    ``[A-Za-z0-9_]`` next to it), as ``content.body`` is matched.

    Patterns are split at ``*``; each piece matches a fixed number of characters.
    Matching the first piece at its leftmost possible place and each later piece at
    its leftmost place after the previous is enough (a ``*`` can absorb anything in
    between), so the time is linear in the value for a given pattern.

    spec: appendices.md#glob-style-matching, client-server-api/modules/push.md#conditions-1
    """
    pieces = pattern.split("*")
    if len(pieces) == 1:
        if not word_boundary:
            if "?" not in pattern:
                lowered = pattern.lower()
                limit = len(lowered)
                # str.lower never shortens a string, so longer values cannot match.
                return lambda value: len(value) <= limit and value.lower() == lowered
            exact = re.compile(_segment(pattern), _FLAGS)
            return lambda value: exact.fullmatch(value) is not None
        whole = re.compile(_NOT_AFTER_WORD + _segment(pattern) + _NOT_BEFORE_WORD, _FLAGS)
        return lambda value: whole.search(value) is not None

    first, *middle, last = pieces
    middles = tuple(re.compile(_segment(piece), _FLAGS) for piece in middle if piece)
    if word_boundary:
        start = re.compile(_NOT_AFTER_WORD + _segment(first), _FLAGS)
        end = re.compile(_segment(last) + _NOT_BEFORE_WORD, _FLAGS)

        def match_words(value: str) -> bool:
            found = start.search(value)
            if found is None:
                return False
            position = found.end()
            for piece in middles:
                found = piece.search(value, position)
                if found is None:
                    return False
                position = found.end()
            return end.search(value, position) is not None

        return match_words

    head = re.compile(_segment(first), _FLAGS) if first else None
    tail = re.compile(_segment(last), _FLAGS) if last else None
    fixed = len(first) + len(last)

    def match_whole(value: str) -> bool:
        size = len(value)
        if size < fixed:
            return False
        if head is not None and head.match(value) is None:
            return False
        stop = size - len(last)
        if tail is not None and tail.fullmatch(value, stop) is None:
            return False
        position = len(first)
        for piece in middles:
            found = piece.search(value, position, stop)
            if found is None:
                return False
            position = found.end()
        return True

    return match_whole


@functools.lru_cache(maxsize=4096)
def _display_name_matcher(name: str) -> StringMatcher:
    regex = re.compile(_NOT_AFTER_WORD + re.escape(name) + _NOT_BEFORE_WORD, _FLAGS)
    return lambda body: regex.search(body) is not None


# --- conditions ----------------------------------------------------------------------

Condition = Callable[[Mapping[str, Any], EvaluationContext], bool]

_BODY_PATH: Final = ("content", "body")
_get_body: Final = _getter(_BODY_PATH)


@functools.lru_cache(maxsize=4096)
def _event_match(key: str, pattern: str) -> Condition:
    path = split_path(key)
    get = _getter(path)
    matcher = glob_matcher(pattern, word_boundary=path == _BODY_PATH)

    def condition(event: Mapping[str, Any], context: EvaluationContext) -> bool:
        value = get(event, context)
        return isinstance(value, str) and matcher(value)

    return condition


def _same_scalar(found: Any, wanted: Any) -> bool:
    """Exact equality of canonical JSON scalars: no casts (``true`` is not ``1``)."""
    if wanted is None or isinstance(wanted, bool):
        return found is wanted
    if isinstance(wanted, str):
        return isinstance(found, str) and found == wanted
    return type(found) is int and found == wanted


@functools.lru_cache(maxsize=4096)
def _property_is(key: str, value_type: str, value: Any) -> Condition:
    # value_type keeps true and 1 (equal, same hash) apart in the cache.
    get = _getter(split_path(key))
    return lambda event, context: _same_scalar(get(event, context), value)


@functools.lru_cache(maxsize=4096)
def _property_contains(key: str, value_type: str, value: Any) -> Condition:
    get = _getter(split_path(key))

    def condition(event: Mapping[str, Any], context: EvaluationContext) -> bool:
        found = get(event, context)
        if not isinstance(found, list):
            return False
        if isinstance(value, str):
            return value in found  # only an equal str compares equal to a str
        return any(_same_scalar(item, value) for item in found)

    return condition


def _contains_display_name(event: Mapping[str, Any], context: EvaluationContext) -> bool:
    name = context.user_display_name
    if not isinstance(name, str) or not name.strip():
        return False
    body = _get_body(event, context)
    return isinstance(body, str) and _display_name_matcher(name)(body)


_COMPARISONS: Final[Mapping[str, Callable[[int, int], bool]]] = {
    "==": lambda count, n: count == n,
    "<": lambda count, n: count < n,
    ">": lambda count, n: count > n,
    "<=": lambda count, n: count <= n,
    ">=": lambda count, n: count >= n,
}


@functools.lru_cache(maxsize=1024)
def _member_count(is_: str) -> Condition | None:
    parsed = MEMBER_COUNT_RE.fullmatch(is_)
    if parsed is None:
        return None
    compare = _COMPARISONS[parsed.group(1) or "=="]
    number = int(parsed.group(2))
    return lambda event, context: compare(context.room_member_count, number)


@functools.lru_cache(maxsize=1024)
def _notification_permission(key: str) -> Condition:
    def condition(event: Mapping[str, Any], context: EvaluationContext) -> bool:
        level = context.notification_levels.get(key, DEFAULT_NOTIFICATION_LEVEL)
        if not isinstance(level, int) or isinstance(level, bool):
            level = DEFAULT_NOTIFICATION_LEVEL
        return context.sender_power_level >= level

    return condition


def compile_condition(condition: Mapping[str, Any]) -> Condition | None:
    """A condition as a function, or ``None`` if it can never match (unknown kind, or
    a known kind without the parameters it needs)."""
    kind = condition.get("kind")
    key = condition.get("key")
    if kind == "event_match":
        pattern = condition.get("pattern")
        if isinstance(key, str) and isinstance(pattern, str):
            return _event_match(key, pattern)
    elif kind in ("event_property_is", "event_property_contains"):
        value = condition.get("value", _ABSENT)
        scalar = value is None or isinstance(value, str | int)  # bool is an int
        if isinstance(key, str) and scalar:
            make = _property_is if kind == "event_property_is" else _property_contains
            return make(key, type(value).__name__, value)
    elif kind == "contains_display_name":
        return _contains_display_name
    elif kind == "room_member_count":
        is_ = condition.get("is")
        if isinstance(is_, str):
            return _member_count(is_)
    elif kind == "sender_notification_permission":
        if isinstance(key, str):
            return _notification_permission(key)
    return None


# --- rules ---------------------------------------------------------------------------


@attrs.frozen
class _Compiled:
    rule: PushRule
    actions: Actions
    conditions: tuple[Condition, ...]
    #: Lowercased room ID the rule is limited to by an ``event_match`` on ``room_id``.
    room: str | None = None

    def matches(self, event: Mapping[str, Any], context: EvaluationContext) -> bool:
        for condition in self.conditions:
            if not condition(event, context):
                return False
        return True


def _pinned_room(conditions: Sequence[Mapping[str, Any]]) -> str | None:
    for condition in conditions:
        pattern = condition.get("pattern")
        if (
            condition.get("kind") == "event_match"
            and condition.get("key") == "room_id"
            and isinstance(pattern, str)
            and "*" not in pattern
            and "?" not in pattern
        ):
            return pattern.lower()
    return None


def _compile_rule(kind: str, rule: PushRule) -> _Compiled | None:
    """The rule ready to evaluate as a rule of ``kind`` (the list it is in), or
    ``None`` if it is disabled or never matches."""
    if not rule.enabled:
        return None
    actions = actions_of(rule.actions)
    if kind in CONDITION_KINDS:
        raw = rule.conditions or ()
        compiled = []
        for condition in raw:
            function = compile_condition(condition) if isinstance(condition, Mapping) else None
            if function is None:
                return None
            compiled.append(function)
        return _Compiled(rule, actions, tuple(compiled), _pinned_room(raw))
    if kind == "content":
        if not isinstance(rule.pattern, str):
            return None
        return _Compiled(rule, actions, (_event_match("content.body", rule.pattern),))
    if kind in ("room", "sender"):
        return _Compiled(rule, actions, ())
    return None


@attrs.frozen
class _Plan:
    """The override and underride rules that can match in one room."""

    overrides: tuple[_Compiled, ...]
    underrides: tuple[_Compiled, ...]


#: Rooms whose plan each evaluator keeps (only for rulesets with room-pinned rules).
ROOM_PLAN_CACHE_SIZE = 64


class PushRuleEvaluator:
    """A ruleset compiled for evaluating events."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        compiled: dict[str, list[_Compiled]] = {}
        for kind, rules in ruleset.rules_by_kind.items():
            compiled[kind] = [c for rule in rules if (c := _compile_rule(kind, rule)) is not None]
        self._overrides = tuple(compiled.get("override", ()))
        self._content = tuple(compiled.get("content", ()))
        self._underrides = tuple(compiled.get("underride", ()))
        self._rooms: dict[str, Actions] = {}
        for rule in compiled.get("room", ()):
            self._rooms.setdefault(rule.rule.rule_id, rule.actions)
        self._senders: dict[str, Actions] = {}
        for rule in compiled.get("sender", ()):
            self._senders.setdefault(rule.rule.rule_id, rule.actions)
        self._pinned = any(c.room is not None for c in self._overrides + self._underrides)
        self._unpinned_plan = _Plan(
            tuple(c for c in self._overrides if c.room is None),
            tuple(c for c in self._underrides if c.room is None),
        )
        self._plans: LruCache[str, _Plan] = LruCache(ROOM_PLAN_CACHE_SIZE)

    def _plan(self, room_id: str) -> _Plan:
        if not self._pinned:
            return self._unpinned_plan
        plan = self._plans.get(room_id)
        if plan is None:
            room = room_id.lower()
            plan = _Plan(
                tuple(c for c in self._overrides if c.room is None or c.room == room),
                tuple(c for c in self._underrides if c.room is None or c.room == room),
            )
            self._plans.set(room_id, plan)
        return plan

    def evaluate(self, event: Mapping[str, Any], context: EvaluationContext) -> Actions:
        """The actions of the first enabled rule (in the spec's order) matching the
        event for ``context.user_id``; :data:`NOTHING` if none matches or the user
        sent the event.  ``event`` is in the client or PDU format (``type``,
        ``sender``, ``state_key``, ``content``); any content is handled without
        raising."""
        sender = event.get("sender")
        if sender == context.user_id:
            return NOTHING
        plan = self._plan(context.room_id)
        for rule in plan.overrides:
            if rule.matches(event, context):
                return rule.actions
        for rule in self._content:
            if rule.matches(event, context):
                return rule.actions
        room_actions = self._rooms.get(context.room_id)
        if room_actions is not None:
            return room_actions
        if isinstance(sender, str):
            sender_actions = self._senders.get(sender)
            if sender_actions is not None:
                return sender_actions
        for rule in plan.underrides:
            if rule.matches(event, context):
                return rule.actions
        return NOTHING
