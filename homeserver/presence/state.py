"""A user's presence and how it moves: pure functions of the old state and the time.

Three things drive it (docs/live-status.md):

- **being connected**: a ``/sync`` in progress, a WebSocket stream open, or one of
  them ended less than ``sync_online_timeout`` ago.  Connecting with
  ``set_presence=online`` brings an offline user online; being disconnected for
  longer than the timeout makes anyone offline.
- **activity**: what the user does — sending events, receipts, typing, setting
  their presence online, a heartbeat marked ``active``.  It sets ``last_active_ts``
  and makes the user online and ``currently_active``.
- **time**: online with no activity for ``idle_timeout`` is ``unavailable``;
  activity older than ``last_active_granularity`` is no longer ``currently_active``.

Only a change of what others see — the state, the status message or
``currently_active`` — is announced.  Activity while already online and currently
active only moves ``last_active_ts`` (others compute ``last_active_ago`` from it at the
next announcement), so a busy user costs nobody anything.

spec: client-server-api/modules/presence.md
"""

from __future__ import annotations

import attrs

from homeserver.config.model import PresenceConfig
from homeserver.presence.record import OFFLINE, ONLINE, UNAVAILABLE, UserPresence


def connected(presence: UserPresence, set_presence: str, now_ms: int) -> UserPresence:
    """A /sync, stream or heartbeat with ``set_presence`` (``offline`` never affects
    presence: spec "the client is not marked as being online")."""
    if set_presence == OFFLINE:
        return presence
    updated = attrs.evolve(presence, last_user_sync_ts=now_ms)
    if set_presence == ONLINE and presence.state == OFFLINE:
        return attrs.evolve(updated, state=ONLINE, last_active_ts=now_ms, currently_active=True)
    if set_presence == UNAVAILABLE and presence.state != UNAVAILABLE:
        return attrs.evolve(updated, state=UNAVAILABLE, currently_active=False)
    return updated


def active(presence: UserPresence, now_ms: int) -> UserPresence:
    """The user did something: online and currently active (and, having just made a
    request, connected for another ``sync_online_timeout``)."""
    return attrs.evolve(
        presence,
        state=ONLINE,
        last_active_ts=now_ms,
        last_user_sync_ts=now_ms,
        currently_active=True,
    )


def set_by_user(
    presence: UserPresence, state: str, status_msg: str | None, now_ms: int
) -> UserPresence:
    """``PUT /presence/{userId}/status``: the state and status message as given (an
    omitted message clears it, as Synapse does).  The request itself is a sign of
    life: the user counts as connected for another ``sync_online_timeout``."""
    if state == ONLINE:
        return attrs.evolve(active(presence, now_ms), status_msg=status_msg, currently_active=True)
    return attrs.evolve(
        presence,
        state=state,
        status_msg=status_msg,
        last_user_sync_ts=now_ms,
        currently_active=False,
    )


def timed_out(
    presence: UserPresence, config: PresenceConfig, now_ms: int, *, is_connected: bool
) -> UserPresence:
    """What time alone has made of ``presence`` by ``now_ms``."""
    updated = presence
    since_active = now_ms - presence.last_active_ts
    if updated.currently_active and since_active >= config.last_active_granularity_ms:
        updated = attrs.evolve(updated, currently_active=False)
    if updated.state == ONLINE and since_active >= config.idle_timeout_ms:
        updated = attrs.evolve(updated, state=UNAVAILABLE, currently_active=False)
    if (
        not is_connected
        and updated.state != OFFLINE
        and now_ms - presence.last_user_sync_ts >= config.sync_online_timeout_ms
    ):
        updated = attrs.evolve(updated, state=OFFLINE, currently_active=False)
    return updated


def next_deadline(
    presence: UserPresence, config: PresenceConfig, *, is_connected: bool
) -> int | None:
    """The next time (ms) at which :func:`timed_out` would change ``presence``, if any."""
    deadlines = []
    if presence.currently_active:
        deadlines.append(presence.last_active_ts + config.last_active_granularity_ms)
    if presence.state == ONLINE:
        deadlines.append(presence.last_active_ts + config.idle_timeout_ms)
    if not is_connected and presence.state != OFFLINE:
        deadlines.append(presence.last_user_sync_ts + config.sync_online_timeout_ms)
    return min(deadlines) if deadlines else None
