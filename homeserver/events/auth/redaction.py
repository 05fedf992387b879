"""Whether a redaction that passed the auth rules should actually be applied.

From room version 3 the auth rules always allow ``m.room.redaction`` (subject to the
usual send level); whether it *takes effect* on its target is decided separately, once
both events are known.  spec: rooms/fragments/v3-handling-redactions.md; for v1-v2 the
same conditions were auth rule 11 (rooms/fragments/v1-auth-rules.md).
"""

from __future__ import annotations

from homeserver.events.auth.ids import domain_of
from homeserver.events.auth.power_levels import PowerLevels
from homeserver.events.event import Event, StateMap
from homeserver.events.room_versions import EventFormat, RoomVersion


def redaction_applies(
    room_version: RoomVersion,
    redaction: Event,
    redacted: Event,
    state: StateMap[Event],
) -> bool:
    """Whether ``redaction`` (accepted) may redact ``redacted``, given ``state``.

    ``state`` is the state the redaction is judged against (normally the state at the
    redaction).  Allowed when the redaction's sender has at least the *redact level*,
    or when the two events come from the same server: the events' senders from v3,
    the events' IDs in v1-v2 (whose IDs carry the origin's domain).
    """
    if redaction.type != "m.room.redaction" or redaction.redacts != redacted.event_id:
        return False
    if redaction.room_id != redacted.room_id:
        return False
    levels = PowerLevels.from_state(room_version, state)
    if levels.user_level(redaction.sender) >= levels.named_level("redact"):
        return True
    if room_version.event_format is EventFormat.V1:
        return domain_of(redaction.event_id) == domain_of(redacted.event_id)
    return domain_of(redaction.sender) == domain_of(redacted.sender)
