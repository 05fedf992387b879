"""Event authorization: the per-room-version rules deciding whether an event is allowed.

Pure functions over events and state maps; no I/O.

- :func:`check_auth_rules` - the authorization rules against a state.
- :func:`auth_types_for_event` / :func:`check_auth_events_selection` - which auth
  events an event must cite, and checking the ones it did.
- power level helpers (:func:`get_user_power_level`, :func:`required_power_level`, ...).
- :func:`redaction_applies` - whether an accepted redaction takes effect (v3+).

spec: server-server-api.md#authorisation-rules, rooms/v1.md .. rooms/v12.md
"""

from homeserver.events.auth.errors import AuthError
from homeserver.events.auth.ids import is_valid_user_id
from homeserver.events.auth.membership import join_rule_in, membership_in
from homeserver.events.auth.power_levels import (
    PowerLevels,
    get_named_level,
    get_power_level_for_event,
    get_room_creators,
    get_user_power_level,
    parse_power_level,
    required_power_level,
)
from homeserver.events.auth.redaction import redaction_applies
from homeserver.events.auth.rules import check_auth_rules
from homeserver.events.auth.selection import auth_types_for_event, check_auth_events_selection

__all__ = [
    "AuthError",
    "PowerLevels",
    "auth_types_for_event",
    "check_auth_events_selection",
    "check_auth_rules",
    "get_named_level",
    "get_power_level_for_event",
    "get_room_creators",
    "get_user_power_level",
    "is_valid_user_id",
    "join_rule_in",
    "membership_in",
    "parse_power_level",
    "redaction_applies",
    "required_power_level",
]
