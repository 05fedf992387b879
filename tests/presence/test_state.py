"""How a user's presence moves (homeserver/presence/state.py): pure functions of the
old presence, the configuration and the time, tested without a server.

spec: client-server-api/modules/presence.md; design: docs/live-status.md ("What moves it")
"""

from __future__ import annotations

import attrs
from hypothesis import given
from hypothesis import strategies as st

from homeserver.config.model import PresenceConfig
from homeserver.presence.record import OFFLINE, ONLINE, PRESENCE_STATES, UNAVAILABLE, UserPresence
from homeserver.presence.state import active, connected, next_deadline, set_by_user, timed_out

ALICE = "@alice:example.org"
CONFIG = PresenceConfig(
    idle_timeout_ms=300_000, sync_online_timeout_ms=30_000, last_active_granularity_ms=60_000
)
T0 = 1_700_000_000_000


def online_at(now_ms: int) -> UserPresence:
    """Alice, offline until a sync with ``set_presence=online`` at ``now_ms``."""
    return connected(UserPresence(ALICE), ONLINE, now_ms)


# -- connecting ------------------------------------------------------------------------


def test_connecting_online_brings_an_offline_user_online_and_currently_active() -> None:
    assert online_at(T0) == UserPresence(
        ALICE,
        state=ONLINE,
        last_active_ts=T0,
        last_user_sync_ts=T0,
        currently_active=True,
    )


def test_connecting_with_set_presence_offline_changes_nothing() -> None:
    for before in (
        UserPresence(ALICE),
        UserPresence(ALICE, state=UNAVAILABLE, last_active_ts=5, last_user_sync_ts=7),
        online_at(T0),
    ):
        assert connected(before, OFFLINE, T0 + 10_000) is before


def test_connecting_unavailable_shows_the_user_unavailable() -> None:
    from_offline = connected(UserPresence(ALICE, status_msg="away"), UNAVAILABLE, T0)
    assert from_offline == UserPresence(
        ALICE, state=UNAVAILABLE, status_msg="away", last_user_sync_ts=T0
    )
    from_online = connected(online_at(T0), UNAVAILABLE, T0 + 1_000)
    assert from_online == UserPresence(
        ALICE,
        state=UNAVAILABLE,
        last_active_ts=T0,
        last_user_sync_ts=T0 + 1_000,
        currently_active=False,
    )


def test_connecting_again_only_refreshes_the_connection_time() -> None:
    # Syncing is not activity: last_active_ts stays, and an idle user stays idle.
    again = connected(online_at(T0), ONLINE, T0 + 20_000)
    assert again == attrs.evolve(online_at(T0), last_user_sync_ts=T0 + 20_000)
    idle = UserPresence(ALICE, state=UNAVAILABLE, last_active_ts=T0, last_user_sync_ts=T0)
    assert connected(idle, ONLINE, T0 + 400_000) == attrs.evolve(
        idle, last_user_sync_ts=T0 + 400_000
    )


# -- activity and the user's own choice ------------------------------------------------


def test_activity_brings_an_unavailable_user_back_online() -> None:
    idle = UserPresence(
        ALICE, state=UNAVAILABLE, status_msg="lunch", last_active_ts=T0, last_user_sync_ts=T0
    )
    assert active(idle, T0 + 400_000) == UserPresence(
        ALICE,
        state=ONLINE,
        status_msg="lunch",
        last_active_ts=T0 + 400_000,
        last_user_sync_ts=T0 + 400_000,
        currently_active=True,
    )


def test_activity_of_an_active_user_moves_only_the_times_and_announces_nothing() -> None:
    before = online_at(T0)
    after = active(before, T0 + 5_000)
    assert (after.last_active_ts, after.last_user_sync_ts) == (T0 + 5_000, T0 + 5_000)
    assert not after.announces_change_from(before)


def test_setting_online_is_activity_and_sets_the_status_message() -> None:
    assert set_by_user(UserPresence(ALICE), ONLINE, "here", T0) == UserPresence(
        ALICE,
        state=ONLINE,
        status_msg="here",
        last_active_ts=T0,
        last_user_sync_ts=T0,
        currently_active=True,
    )


def test_setting_unavailable_or_offline_is_not_activity() -> None:
    before = attrs.evolve(online_at(T0), status_msg="here")
    for state in (UNAVAILABLE, OFFLINE):
        after = set_by_user(before, state, "gone", T0 + 1_000)
        assert after == UserPresence(
            ALICE,
            state=state,
            status_msg="gone",
            last_active_ts=T0,
            last_user_sync_ts=T0 + 1_000,
            currently_active=False,
        )
        assert after.announces_change_from(before)


def test_an_omitted_status_message_clears_it() -> None:
    before = set_by_user(UserPresence(ALICE), ONLINE, "here", T0)
    assert set_by_user(before, ONLINE, None, T0 + 1).status_msg is None


# -- time ------------------------------------------------------------------------------


def test_activity_older_than_the_granularity_is_no_longer_currently_active() -> None:
    presence = online_at(T0)
    just_before = T0 + CONFIG.last_active_granularity_ms - 1
    assert timed_out(presence, CONFIG, just_before, is_connected=True) == presence
    after = timed_out(presence, CONFIG, just_before + 1, is_connected=True)
    assert after == attrs.evolve(presence, currently_active=False)
    assert after.announces_change_from(presence)


def test_online_without_activity_for_the_idle_timeout_becomes_unavailable() -> None:
    presence = attrs.evolve(online_at(T0), currently_active=False)
    just_before = T0 + CONFIG.idle_timeout_ms - 1
    assert timed_out(presence, CONFIG, just_before, is_connected=True) == presence
    assert timed_out(presence, CONFIG, just_before + 1, is_connected=True) == attrs.evolve(
        presence, state=UNAVAILABLE
    )
    # Straight from currently active too (a timer that fired late).
    assert timed_out(
        online_at(T0), CONFIG, T0 + 10 * CONFIG.idle_timeout_ms, is_connected=True
    ) == (attrs.evolve(presence, state=UNAVAILABLE))


def test_disconnected_past_the_sync_online_timeout_is_offline() -> None:
    presence = online_at(T0)
    deadline = T0 + CONFIG.sync_online_timeout_ms
    assert timed_out(presence, CONFIG, deadline - 1, is_connected=False) == presence
    offline = timed_out(presence, CONFIG, deadline, is_connected=False)
    # "Last seen" survives going offline.
    assert offline == attrs.evolve(presence, state=OFFLINE, currently_active=False)
    assert offline.content(deadline + 5) == {
        "presence": OFFLINE,
        "last_active_ago": deadline + 5 - T0,
    }
    idle = UserPresence(ALICE, state=UNAVAILABLE, last_active_ts=T0, last_user_sync_ts=T0)
    assert timed_out(idle, CONFIG, deadline, is_connected=False).state == OFFLINE


def test_a_connected_user_never_goes_offline_by_time() -> None:
    presence = online_at(T0)
    much_later = timed_out(presence, CONFIG, T0 + 10**9, is_connected=True)
    assert much_later.state == UNAVAILABLE


def test_an_offline_user_has_no_deadline_and_nothing_times_out() -> None:
    for presence in (
        UserPresence(ALICE),
        UserPresence(ALICE, status_msg="away", last_active_ts=T0, last_user_sync_ts=T0),
    ):
        for is_connected in (False, True):
            assert next_deadline(presence, CONFIG, is_connected=is_connected) is None
            assert timed_out(presence, CONFIG, T0 + 10**9, is_connected=is_connected) == presence


def test_the_next_deadline_is_the_earliest_of_the_timeouts() -> None:
    presence = online_at(T0)
    assert next_deadline(presence, CONFIG, is_connected=True) == T0 + 60_000
    assert next_deadline(presence, CONFIG, is_connected=False) == T0 + 30_000
    inactive = attrs.evolve(presence, currently_active=False)
    assert next_deadline(inactive, CONFIG, is_connected=True) == T0 + 300_000
    idle = UserPresence(ALICE, state=UNAVAILABLE, last_active_ts=T0, last_user_sync_ts=T0 + 5)
    assert next_deadline(idle, CONFIG, is_connected=True) is None
    assert next_deadline(idle, CONFIG, is_connected=False) == T0 + 5 + 30_000


# -- the timer loop can never spin -----------------------------------------------------

_configs = st.builds(
    PresenceConfig,
    idle_timeout_ms=st.integers(0, 1_000),
    sync_online_timeout_ms=st.integers(0, 1_000),
    last_active_granularity_ms=st.integers(0, 1_000),
)
_presences = st.builds(
    UserPresence,
    user_id=st.just(ALICE),
    state=st.sampled_from(PRESENCE_STATES),
    status_msg=st.none() | st.just("hi"),
    last_active_ts=st.integers(0, 2_000),
    last_user_sync_ts=st.integers(0, 2_000),
    currently_active=st.booleans(),
)


@given(_presences, _configs, st.booleans())
def test_next_deadline_is_exactly_when_timed_out_changes_something(
    presence: UserPresence, config: PresenceConfig, is_connected: bool
) -> None:
    """The handler arms its one timer for ``next_deadline`` and applies ``timed_out``
    when it fires: a deadline at which nothing changes, or a change that comes before
    its deadline, would make the timer fire for nothing (or too late) forever."""
    deadline = next_deadline(presence, config, is_connected=is_connected)
    if deadline is None:
        assert timed_out(presence, config, 10**9, is_connected=is_connected) == presence
        return
    # Nothing happens before it.
    assert timed_out(presence, config, deadline - 1, is_connected=is_connected) == presence
    # Something happens at it.
    changed = timed_out(presence, config, deadline, is_connected=is_connected)
    assert changed != presence
    # Applying it again at the same moment is a fixed point, and the next deadline is
    # strictly later: the timer loop always makes progress.
    assert timed_out(changed, config, deadline, is_connected=is_connected) == changed
    following = next_deadline(changed, config, is_connected=is_connected)
    assert following is None or following > deadline


@given(_presences, _configs, st.booleans(), st.integers(0, 5_000))
def test_timed_out_applied_late_equals_applied_at_each_deadline(
    presence: UserPresence, config: PresenceConfig, is_connected: bool, now: int
) -> None:
    """A timer that fires late (a busy reactor) lands where firing on time would have."""
    stepped = presence
    for _ in range(10):
        deadline = next_deadline(stepped, config, is_connected=is_connected)
        if deadline is None or deadline > now:
            break
        stepped = timed_out(stepped, config, deadline, is_connected=is_connected)
    assert timed_out(presence, config, now, is_connected=is_connected) == stepped
