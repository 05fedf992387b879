"""Push rules as data: the spec's server-default rules, a user's changes to them, the
resolved ruleset clients see, and the edits of the push rules API (pure, no I/O).

What a user changes is kept apart from the defaults (:class:`Customisations`): their
own rules per kind, and per server-default rule the ``enabled`` flag and/or
``actions`` they set.  :func:`resolve` merges the two in the spec's priority order,
so new default rules reach every user when the server is upgraded.

Ordering: within a kind, user-defined rules come before server-default rules, except
``.m.rule.master``, which is always the first override rule ("Predefined Rules":
"They operate at a lower priority than 'user-defined rules', except for the
``.m.rule.master`` rule which has always a higher priority than any other rule").

Limits (so one user's rules cannot make evaluating events expensive), refused with
``400 M_INVALID_PARAM`` (sizes) or ``400 M_TOO_LARGE`` (count):

- :data:`MAX_USER_RULES` user-defined rules in all kinds together;
- :data:`MAX_CONDITIONS` conditions and :data:`MAX_ACTIONS` actions per rule;
- :data:`MAX_PATTERN_CHARS` characters per glob pattern (content rules and
  ``event_match``), :data:`MAX_RULE_ID_BYTES` UTF-8 bytes per rule ID;
- :data:`MAX_RULE_BYTES` bytes for a rule's actions, conditions and pattern encoded as
  JSON, and :data:`MAX_JSON_DEPTH` levels of nesting in an action or condition (bounds
  tweak values and unknown conditions).

spec: client-server-api/modules/push.md#push-rules, #predefined-rules, #push-rules-api;
data/api/client-server/pushrules.yaml, definitions/push_rule.yaml,
definitions/push_condition.yaml, definitions/push_ruleset.yaml
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from homeserver.identifiers import is_valid_room_id, is_valid_user_id

#: The kinds of rule, in the order they are evaluated.
KINDS = ("override", "content", "room", "sender", "underride")
#: Kinds whose rules carry ``conditions``.
CONDITION_KINDS = frozenset({"override", "underride"})

MASTER_RULE_ID = ".m.rule.master"

MAX_USER_RULES = 1000
MAX_CONDITIONS = 20
MAX_ACTIONS = 20
MAX_PATTERN_CHARS = 256
MAX_RULE_ID_BYTES = 255
MAX_RULE_BYTES = 4096
MAX_JSON_DEPTH = 16

#: Version of the stored :class:`Customisations` document.
CUSTOMISATIONS_VERSION = 1

#: Actions without parameters.  ``dont_notify`` and ``coalesce`` are historical: they
#: are accepted (old clients send them) and ignored when evaluating.
#: spec: client-server-api/modules/push.md#historical-actions
SIMPLE_ACTIONS = frozenset({"notify", "dont_notify", "coalesce"})

#: ``room_member_count``'s ``is``: a decimal integer, optionally prefixed.
MEMBER_COUNT_RE = re.compile(r"(==|<=|>=|<|>)?([0-9]{1,18})")

#: ``event_property_is``/``_contains`` values: canonical JSON integers.
MAX_SAFE_INTEGER = 2**53 - 1


class PushRuleError(Exception):
    """A refused push rule change, with the Matrix error it is answered with."""

    def __init__(self, errcode: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"PushRuleError({self.errcode!r}, {self.message!r}, {self.status})"


def _invalid(message: str) -> PushRuleError:
    return PushRuleError("M_INVALID_PARAM", message)


def _bad_json(message: str) -> PushRuleError:
    return PushRuleError("M_BAD_JSON", message)


def _not_found(kind: str, rule_id: str) -> PushRuleError:
    return PushRuleError("M_NOT_FOUND", f"No push rule {rule_id!r} of kind {kind!r}", 404)


@attrs.frozen
class PushRule:
    """One push rule.  spec: data/api/client-server/definitions/push_rule.yaml

    ``conditions`` is set for override/underride rules only, ``pattern`` for content
    rules only.  Room and sender rules match events in the room / from the user named
    by their ``rule_id``; that implicit condition is the evaluator's business.
    """

    rule_id: str
    kind: str
    default: bool
    enabled: bool
    actions: tuple[Any, ...]
    conditions: tuple[dict[str, Any], ...] | None = None
    pattern: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "rule_id": self.rule_id,
            "default": self.default,
            "enabled": self.enabled,
            "actions": [copy_json(action) for action in self.actions],
        }
        if self.kind in CONDITION_KINDS:
            body["conditions"] = [copy_json(condition) for condition in self.conditions or ()]
        elif self.kind == "content":
            body["pattern"] = self.pattern if self.pattern is not None else ""
        return body


@attrs.frozen
class DefaultChange:
    """What a user changed on one server-default rule (``None``: unchanged)."""

    enabled: bool | None = None
    actions: tuple[Any, ...] | None = None

    def is_empty(self) -> bool:
        return self.enabled is None and self.actions is None


def _all_kinds(value: Mapping[str, Iterable[PushRule]]) -> dict[str, tuple[PushRule, ...]]:
    return {kind: tuple(value.get(kind, ())) for kind in KINDS}


@attrs.frozen
class Customisations:
    """A user's changes to the server-default push rules: what is stored.

    ``rules``: the user-defined rules of each kind, most important first (all five
    kinds present).  ``defaults``: changes to server-default rules, keyed by
    ``(kind, rule_id)``.
    """

    rules: Mapping[str, tuple[PushRule, ...]] = attrs.field(factory=dict, converter=_all_kinds)
    defaults: Mapping[tuple[str, str], DefaultChange] = attrs.field(factory=dict)

    def user_rule_count(self) -> int:
        return sum(len(rules) for rules in self.rules.values())

    def to_json(self) -> dict[str, Any]:
        """The stored document: ``{"version": 1, "rules": {kind: [rule, ...]},
        "defaults": {kind: {rule_id: {"enabled"?: bool, "actions"?: [...]}}}}``, kinds
        without changes left out.  User rules are stored without ``default``."""
        rules: dict[str, list[dict[str, Any]]] = {}
        for kind in KINDS:
            if self.rules[kind]:
                rules[kind] = [_stored_rule(rule) for rule in self.rules[kind]]
        defaults: dict[str, dict[str, dict[str, Any]]] = {}
        for (kind, rule_id), change in self.defaults.items():
            entry: dict[str, Any] = {}
            if change.enabled is not None:
                entry["enabled"] = change.enabled
            if change.actions is not None:
                entry["actions"] = [copy_json(action) for action in change.actions]
            if entry:
                defaults.setdefault(kind, {})[rule_id] = entry
        doc: dict[str, Any] = {"version": CUSTOMISATIONS_VERSION}
        if rules:
            doc["rules"] = rules
        if defaults:
            doc["defaults"] = defaults
        return doc

    @classmethod
    def from_json(cls, value: object) -> Customisations:
        """Reads a stored document leniently: anything malformed (or no longer valid
        under the current limits) is skipped, never raised.  A document of a later
        version is read as no changes."""
        if not isinstance(value, Mapping):
            return cls()
        version = value.get("version", CUSTOMISATIONS_VERSION)
        if version != CUSTOMISATIONS_VERSION or isinstance(version, bool):
            return cls()
        return cls(rules=_read_user_rules(value.get("rules")), defaults=_read_defaults(value))


def _stored_rule(rule: PushRule) -> dict[str, Any]:
    body = rule.to_json()
    del body["default"]
    return body


def _read_user_rules(value: object) -> dict[str, tuple[PushRule, ...]]:
    result: dict[str, tuple[PushRule, ...]] = {}
    if not isinstance(value, Mapping):
        return result
    budget = MAX_USER_RULES
    for kind in KINDS:
        entries = value.get(kind)
        if not isinstance(entries, list):
            continue
        rules: list[PushRule] = []
        seen: set[str] = set()
        for entry in entries:
            if budget <= 0:
                break
            if not isinstance(entry, Mapping):
                continue
            rule_id = entry.get("rule_id")
            enabled = entry.get("enabled", True)
            if not isinstance(rule_id, str) or rule_id in seen or not isinstance(enabled, bool):
                continue
            try:
                check_user_rule_id(kind, rule_id)
                rule = _rule_from_body(kind, rule_id, entry, enabled=enabled)
            except PushRuleError:
                continue
            seen.add(rule_id)
            rules.append(rule)
            budget -= 1
        result[kind] = tuple(rules)
    return result


def _read_defaults(value: Mapping[str, Any]) -> dict[tuple[str, str], DefaultChange]:
    defaults = value.get("defaults")
    result: dict[tuple[str, str], DefaultChange] = {}
    if not isinstance(defaults, Mapping):
        return result
    for kind, by_id in defaults.items():
        if not isinstance(by_id, Mapping):
            continue
        for rule_id, entry in by_id.items():
            if (kind, rule_id) not in DEFAULT_RULE_KEYS or not isinstance(entry, Mapping):
                continue
            enabled = entry.get("enabled")
            if not isinstance(enabled, bool):
                enabled = None
            actions: tuple[Any, ...] | None = None
            if "actions" in entry:
                try:
                    actions = validate_actions(entry["actions"])
                except PushRuleError:
                    actions = None
            change = DefaultChange(enabled=enabled, actions=actions)
            if not change.is_empty():
                result[(kind, rule_id)] = change
    return result


@attrs.frozen
class Ruleset:
    """A user's resolved rules: defaults merged with their changes, per kind in
    evaluation order.  spec: data/api/client-server/definitions/push_ruleset.yaml"""

    rules_by_kind: Mapping[str, tuple[PushRule, ...]] = attrs.field(converter=_all_kinds)

    def to_json(self) -> dict[str, Any]:
        """The ``GET /pushrules/`` body and ``m.push_rules`` content."""
        return {
            "global": {
                kind: [rule.to_json() for rule in self.rules_by_kind[kind]] for kind in KINDS
            }
        }

    def ordered(self) -> list[PushRule]:
        return [rule for kind in KINDS for rule in self.rules_by_kind[kind]]

    def find(self, kind: str, rule_id: str) -> PushRule | None:
        for rule in self.rules_by_kind.get(kind, ()):
            if rule.rule_id == rule_id:
                return rule
        return None


# --- the server-default rules ----------------------------------------------------


def _default(
    kind: str, rule_id: str, conditions: list[dict[str, Any]], actions: list[Any]
) -> PushRule:
    return PushRule(
        rule_id=rule_id,
        kind=kind,
        default=True,
        enabled=rule_id != MASTER_RULE_ID,
        actions=tuple(actions),
        conditions=tuple(conditions),
    )


def _type_is(event_type: str) -> dict[str, Any]:
    return {"kind": "event_match", "key": "type", "pattern": event_type}


_STATE_KEY_EMPTY = {"kind": "event_match", "key": "state_key", "pattern": ""}
_SOUND_DEFAULT = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}


def default_rules(user_id: str) -> list[PushRule]:
    """The spec's server-default rules, in the spec's order, for ``user_id``.

    spec: client-server-api/modules/push.md#default-override-rules,
    #default-underride-rules (v1.17: no legacy body-matching rules)
    """
    return [
        _default("override", MASTER_RULE_ID, [], []),
        _default(
            "override",
            ".m.rule.suppress_notices",
            [{"kind": "event_match", "key": "content.msgtype", "pattern": "m.notice"}],
            [],
        ),
        _default(
            "override",
            ".m.rule.invite_for_me",
            [
                {"key": "type", "kind": "event_match", "pattern": "m.room.member"},
                {"key": "content.membership", "kind": "event_match", "pattern": "invite"},
                {"key": "state_key", "kind": "event_match", "pattern": user_id},
            ],
            ["notify", dict(_SOUND_DEFAULT)],
        ),
        _default(
            "override",
            ".m.rule.member_event",
            [{"key": "type", "kind": "event_match", "pattern": "m.room.member"}],
            [],
        ),
        _default(
            "override",
            ".m.rule.is_user_mention",
            [
                {
                    "kind": "event_property_contains",
                    "key": "content.m\\.mentions.user_ids",
                    "value": user_id,
                }
            ],
            ["notify", dict(_SOUND_DEFAULT), dict(_HIGHLIGHT)],
        ),
        _default(
            "override",
            ".m.rule.is_room_mention",
            [
                {"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
                {"kind": "sender_notification_permission", "key": "room"},
            ],
            ["notify", dict(_HIGHLIGHT)],
        ),
        _default(
            "override",
            ".m.rule.tombstone",
            [_type_is("m.room.tombstone"), dict(_STATE_KEY_EMPTY)],
            ["notify", dict(_HIGHLIGHT)],
        ),
        _default("override", ".m.rule.reaction", [_type_is("m.reaction")], []),
        _default(
            "override",
            ".m.rule.room.server_acl",
            [_type_is("m.room.server_acl"), dict(_STATE_KEY_EMPTY)],
            [],
        ),
        _default(
            "override",
            ".m.rule.suppress_edits",
            [
                {
                    "kind": "event_property_is",
                    "key": "content.m\\.relates_to.rel_type",
                    "value": "m.replace",
                }
            ],
            [],
        ),
        _default(
            "underride",
            ".m.rule.call",
            [{"key": "type", "kind": "event_match", "pattern": "m.call.invite"}],
            ["notify", {"set_tweak": "sound", "value": "ring"}],
        ),
        _default(
            "underride",
            ".m.rule.encrypted_room_one_to_one",
            [{"kind": "room_member_count", "is": "2"}, _type_is("m.room.encrypted")],
            ["notify", dict(_SOUND_DEFAULT)],
        ),
        _default(
            "underride",
            ".m.rule.room_one_to_one",
            [{"kind": "room_member_count", "is": "2"}, _type_is("m.room.message")],
            ["notify", dict(_SOUND_DEFAULT)],
        ),
        _default("underride", ".m.rule.message", [_type_is("m.room.message")], ["notify"]),
        _default("underride", ".m.rule.encrypted", [_type_is("m.room.encrypted")], ["notify"]),
    ]


#: ``(kind, rule_id)`` of every server-default rule (they do not depend on the user).
DEFAULT_RULE_KEYS = frozenset((rule.kind, rule.rule_id) for rule in default_rules("@_:_"))


def resolve(user_id: str, customisations: Customisations) -> Ruleset:
    """The user's ruleset: ``.m.rule.master``, then per kind the user-defined rules
    followed by the server-default rules, with the user's changes to defaults applied.

    spec: client-server-api/modules/push.md#predefined-rules
    """
    by_kind: dict[str, list[PushRule]] = {kind: [] for kind in KINDS}
    master: PushRule | None = None
    for rule in default_rules(user_id):
        change = customisations.defaults.get((rule.kind, rule.rule_id))
        if change is not None:
            rule = attrs.evolve(
                rule,
                enabled=rule.enabled if change.enabled is None else change.enabled,
                actions=rule.actions if change.actions is None else change.actions,
            )
        if rule.rule_id == MASTER_RULE_ID:
            master = rule
        else:
            by_kind[rule.kind].append(rule)
    resolved: dict[str, tuple[PushRule, ...]] = {}
    for kind in KINDS:
        first = (master,) if kind == "override" and master is not None else ()
        resolved[kind] = (*first, *customisations.rules[kind], *by_kind[kind])
    return Ruleset(resolved)


# --- validation ------------------------------------------------------------------


def check_kind(kind: object) -> str:
    if not isinstance(kind, str) or kind not in KINDS:
        raise _invalid(f"Unknown push rule kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


def check_user_rule_id(kind: str, rule_id: object) -> str:
    """A rule ID a user may create: not server-default ("."), no slashes, and for room
    and sender rules a room ID / user ID.
    spec: data/api/client-server/pushrules.yaml (PUT ``ruleId``), push.md#push-rules"""
    if not isinstance(rule_id, str) or not rule_id:
        raise _invalid("The rule ID must be a non-empty string")
    if rule_id.startswith("."):
        raise _invalid("Rule IDs starting with '.' are reserved for server-default rules")
    if "/" in rule_id or "\\" in rule_id:
        raise _invalid("Rule IDs may not contain slashes or backslashes")
    if len(rule_id.encode("utf-8", "surrogatepass")) > MAX_RULE_ID_BYTES:
        raise _invalid(f"Rule IDs may be at most {MAX_RULE_ID_BYTES} bytes")
    if kind == "room" and not is_valid_room_id(rule_id):
        raise _invalid("The rule ID of a room rule must be a room ID")
    if kind == "sender" and not is_valid_user_id(rule_id):
        raise _invalid("The rule ID of a sender rule must be a user ID")
    return rule_id


def validate_actions(actions: object) -> tuple[Any, ...]:
    """``actions``: a list of ``notify``/``dont_notify``/``coalesce`` and
    ``{"set_tweak": name, "value"?: any}`` objects (``highlight``'s value a boolean,
    ``sound``'s a string).  spec: client-server-api/modules/push.md#actions"""
    if not isinstance(actions, list):
        raise _bad_json("'actions' must be a list")
    if len(actions) > MAX_ACTIONS:
        raise _invalid(f"A push rule may have at most {MAX_ACTIONS} actions")
    for action in actions:
        if isinstance(action, str):
            if action not in SIMPLE_ACTIONS:
                raise _invalid(f"Unknown push rule action {action!r}")
        elif isinstance(action, dict):
            tweak = action.get("set_tweak")
            if tweak is None:
                raise _invalid("Push rule actions objects must have 'set_tweak'")
            if not isinstance(tweak, str):
                raise _bad_json("'set_tweak' must be a string")
            if "value" in action:
                value = action["value"]
                if tweak == "highlight" and not isinstance(value, bool):
                    raise _bad_json("The value of the 'highlight' tweak must be a boolean")
                if tweak == "sound" and not isinstance(value, str):
                    raise _bad_json("The value of the 'sound' tweak must be a string")
        else:
            raise _bad_json("Push rule actions must be strings or objects")
        _check_depth(action)
    return tuple(copy_json(action) for action in actions)


def _check_key(condition: Mapping[str, Any]) -> None:
    key = condition.get("key")
    if not isinstance(key, str):
        raise _bad_json(f"{condition['kind']!r} conditions need a string 'key'")


def _check_scalar(condition: Mapping[str, Any]) -> None:
    if "value" not in condition:
        raise _bad_json(f"{condition['kind']!r} conditions need a 'value'")
    value = condition["value"]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise _invalid("Condition values must be integers in the canonical JSON range")
        return
    raise _bad_json("Condition values must be strings, integers, booleans or null")


def validate_condition(condition: object) -> dict[str, Any]:
    """One condition: an object with a string ``kind``.  The parameters of the kinds
    the spec defines are checked; other kinds are kept as given (they never match).
    spec: client-server-api/modules/push.md#conditions-1, definitions/push_condition.yaml
    """
    if not isinstance(condition, dict):
        raise _bad_json("Push rule conditions must be objects")
    kind = condition.get("kind")
    if not isinstance(kind, str):
        raise _bad_json("Push rule conditions need a string 'kind'")
    if kind == "event_match":
        _check_key(condition)
        pattern = condition.get("pattern")
        if not isinstance(pattern, str):
            raise _bad_json("'event_match' conditions need a string 'pattern'")
        _check_pattern(pattern)
    elif kind in ("event_property_is", "event_property_contains"):
        _check_key(condition)
        _check_scalar(condition)
    elif kind == "sender_notification_permission":
        _check_key(condition)
    elif kind == "room_member_count":
        is_ = condition.get("is")
        if not isinstance(is_, str):
            raise _bad_json("'room_member_count' conditions need a string 'is'")
        if MEMBER_COUNT_RE.fullmatch(is_) is None:
            raise _invalid("'is' must be a number, optionally prefixed by ==, <, >, <= or >=")
    _check_depth(condition)
    result: dict[str, Any] = copy_json(condition)
    return result


def validate_conditions(conditions: object) -> tuple[dict[str, Any], ...]:
    if not isinstance(conditions, list):
        raise _bad_json("'conditions' must be a list")
    if len(conditions) > MAX_CONDITIONS:
        raise _invalid(f"A push rule may have at most {MAX_CONDITIONS} conditions")
    return tuple(validate_condition(condition) for condition in conditions)


def _check_pattern(pattern: str) -> None:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise _invalid(f"Patterns may be at most {MAX_PATTERN_CHARS} characters")


def _rule_from_body(kind: str, rule_id: str, body: Mapping[str, Any], *, enabled: bool) -> PushRule:
    """The rule a PUT body (or a stored entry) describes; keys that do not apply to
    the kind are ignored."""
    if "actions" not in body:
        raise PushRuleError("M_MISSING_PARAM", "Missing parameter: actions")
    actions = validate_actions(body["actions"])
    conditions: tuple[dict[str, Any], ...] | None = None
    pattern: str | None = None
    if kind in CONDITION_KINDS:
        conditions = validate_conditions(body.get("conditions", []))
    elif kind == "content":
        if "pattern" not in body:
            raise PushRuleError("M_MISSING_PARAM", "Missing parameter: pattern")
        pattern = body["pattern"]
        if not isinstance(pattern, str):
            raise _bad_json("'pattern' must be a string")
        _check_pattern(pattern)
    try:
        size = len(json.dumps([actions, conditions, pattern], ensure_ascii=False).encode())
    except (TypeError, ValueError, RecursionError):  # not JSON (callers bypassing HTTP)
        raise _bad_json("Push rules must be JSON") from None
    if size > MAX_RULE_BYTES:
        raise _invalid(f"A push rule may be at most {MAX_RULE_BYTES} bytes")
    return PushRule(
        rule_id=rule_id,
        kind=kind,
        default=False,
        enabled=enabled,
        actions=actions,
        conditions=conditions,
        pattern=pattern,
    )


# --- edits (the push rules API) ---------------------------------------------------


def replace_kind(
    customisations: Customisations, kind: str, rules: Iterable[PushRule]
) -> Customisations:
    return attrs.evolve(customisations, rules={**customisations.rules, kind: tuple(rules)})


def _index(rules: tuple[PushRule, ...], rule_id: str) -> int | None:
    for index, rule in enumerate(rules):
        if rule.rule_id == rule_id:
            return index
    return None


def add_or_replace(
    customisations: Customisations,
    user_id: str,
    kind: str,
    rule_id: str,
    body: object,
    *,
    before: str | None,
    after: str | None,
) -> Customisations:
    """``PUT /pushrules/global/{kind}/{ruleId}``: creates a user-defined rule, or
    updates the one with that ID (its ``enabled`` flag is kept; new rules are enabled).

    Placement: with ``before`` the rule becomes the next more important rule than
    ``before`` (``before`` wins when both are given); with ``after`` the next less
    important one; without either an updated rule keeps its place and a new rule
    becomes the most important user-defined rule of its kind.  ``before``/``after``
    must name a user-defined rule of the same kind: ``400 M_UNKNOWN`` ("before/after
    rule not found", as the spec's example) or ``400 M_INVALID_PARAM`` for a
    server-default rule.

    spec: data/api/client-server/pushrules.yaml (``setPushRule``)
    """
    check_kind(kind)
    check_user_rule_id(kind, rule_id)
    if not isinstance(body, Mapping):
        raise _bad_json("The push rule must be a JSON object")
    current = customisations.rules[kind]
    index = _index(current, rule_id)
    enabled = current[index].enabled if index is not None else True
    rule = _rule_from_body(kind, rule_id, body, enabled=enabled)
    if index is None and customisations.user_rule_count() >= MAX_USER_RULES:
        raise PushRuleError("M_TOO_LARGE", f"At most {MAX_USER_RULES} push rules are allowed")
    others = [existing for existing in current if existing.rule_id != rule_id]
    if before is not None or after is not None:
        anchor = before if before is not None else after
        assert anchor is not None
        if anchor.startswith("."):
            raise _invalid("Rules cannot be placed relative to a server-default rule")
        if anchor == rule_id:
            raise _invalid("A rule cannot be placed relative to itself")
        position = _index(tuple(others), anchor)
        if position is None:
            raise PushRuleError("M_UNKNOWN", f"before/after rule not found: {anchor}")
        others.insert(position if before is not None else position + 1, rule)
    elif index is not None:
        others.insert(index, rule)
    else:
        others.insert(0, rule)
    return replace_kind(customisations, kind, others)


def _is_default(kind: str, rule_id: str) -> bool:
    return (kind, rule_id) in DEFAULT_RULE_KEYS


def delete(customisations: Customisations, user_id: str, kind: str, rule_id: str) -> Customisations:
    """``DELETE /pushrules/global/{kind}/{ruleId}``: removes a user-defined rule.
    Server-default rules cannot be deleted (``400 M_INVALID_PARAM``; the spec does not
    say which error); unknown rules are ``404 M_NOT_FOUND``."""
    check_kind(kind)
    if _is_default(kind, rule_id):
        raise _invalid("Server-default push rules cannot be deleted; disable them instead")
    current = customisations.rules[kind]
    if _index(current, rule_id) is None:
        raise _not_found(kind, rule_id)
    return replace_kind(customisations, kind, (r for r in current if r.rule_id != rule_id))


def _change_default(
    customisations: Customisations,
    user_id: str,
    kind: str,
    rule_id: str,
    *,
    enabled: bool | None = None,
    actions: tuple[Any, ...] | None = None,
) -> Customisations:
    """Records a change to a server-default rule; values equal to the default's are
    dropped so the stored document stays minimal."""
    default = next(
        rule for rule in default_rules(user_id) if (rule.kind, rule.rule_id) == (kind, rule_id)
    )
    old = customisations.defaults.get((kind, rule_id), DefaultChange())
    if enabled is not None:
        old = attrs.evolve(old, enabled=None if enabled == default.enabled else enabled)
    if actions is not None:
        old = attrs.evolve(old, actions=None if actions == default.actions else actions)
    defaults = dict(customisations.defaults)
    if old.is_empty():
        defaults.pop((kind, rule_id), None)
    else:
        defaults[(kind, rule_id)] = old
    return attrs.evolve(customisations, defaults=defaults)


def set_enabled(
    customisations: Customisations, user_id: str, kind: str, rule_id: str, enabled: bool
) -> Customisations:
    """``PUT /pushrules/global/{kind}/{ruleId}/enabled`` for user-defined and
    server-default rules; unknown rules are ``404 M_NOT_FOUND``."""
    check_kind(kind)
    if not isinstance(enabled, bool):
        raise _bad_json("'enabled' must be a boolean")
    if _is_default(kind, rule_id):
        return _change_default(customisations, user_id, kind, rule_id, enabled=enabled)
    current = customisations.rules[kind]
    index = _index(current, rule_id)
    if index is None:
        raise _not_found(kind, rule_id)
    rules = list(current)
    rules[index] = attrs.evolve(rules[index], enabled=enabled)
    return replace_kind(customisations, kind, rules)


def set_actions(
    customisations: Customisations, user_id: str, kind: str, rule_id: str, actions: object
) -> Customisations:
    """``PUT /pushrules/global/{kind}/{ruleId}/actions`` for user-defined and
    server-default rules ("This can be used to change the actions of builtin rules");
    unknown rules are ``404 M_NOT_FOUND``."""
    check_kind(kind)
    is_default = _is_default(kind, rule_id)
    current = customisations.rules[kind]
    index = _index(current, rule_id)
    if not is_default and index is None:
        raise _not_found(kind, rule_id)
    checked = validate_actions(actions)
    if is_default:
        return _change_default(customisations, user_id, kind, rule_id, actions=checked)
    assert index is not None
    rule = current[index]
    body: dict[str, Any] = {"actions": list(checked)}
    if rule.conditions is not None:
        body["conditions"] = list(rule.conditions)
    if rule.pattern is not None:
        body["pattern"] = rule.pattern
    rules = list(current)
    rules[index] = _rule_from_body(kind, rule_id, body, enabled=rule.enabled)
    return replace_kind(customisations, kind, rules)


def _check_depth(value: object) -> None:
    """Refuses JSON nested more than :data:`MAX_JSON_DEPTH` levels (checked without
    recursion, so copying and encoding the value afterwards are safe)."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list | tuple):
            if depth > MAX_JSON_DEPTH:
                raise _invalid(f"Push rules may nest at most {MAX_JSON_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def copy_json(value: Any) -> Any:
    """A copy of a JSON value, so a rule shares nothing with its callers' data."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [copy_json(item) for item in value]
    return value
