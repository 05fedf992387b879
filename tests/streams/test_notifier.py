"""Waking waiters: by user, by room, by timeout, and for changes that came first."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock

from homeserver.streams.notifier import Notifier
from homeserver.streams.token import StreamToken


def start_waiting(
    notifier: Notifier, user: str, rooms: list[str], since: StreamToken, timeout_ms: int
) -> defer.Deferred[bool]:
    return defer.ensureDeferred(notifier.wait_for_changes(user, rooms, since, timeout_ms))


def test_a_message_in_one_of_my_rooms_wakes_me() -> None:
    clock = Clock()
    notifier = Notifier(clock, StreamToken())
    waiting = start_waiting(notifier, "@a:x", ["!r:x"], notifier.current_token, 30_000)
    assert not waiting.called
    notifier.notify("events", 1, rooms=["!r:x"])
    assert waiting.result is True
    assert notifier.current_token.events == 1


def test_changes_elsewhere_do_not_wake_me_and_the_timeout_does() -> None:
    clock = Clock()
    notifier = Notifier(clock, StreamToken())
    waiting = start_waiting(notifier, "@a:x", ["!r:x"], notifier.current_token, 30_000)
    notifier.notify("events", 1, rooms=["!other:x"])
    notifier.notify("account_data", 1, users=["@b:x"])
    assert not waiting.called
    clock.advance(30)
    assert waiting.result is False


def test_a_change_addressed_to_me_wakes_me_without_rooms() -> None:
    clock = Clock()
    notifier = Notifier(clock, StreamToken())
    waiting = start_waiting(notifier, "@a:x", [], notifier.current_token, 30_000)
    notifier.notify("events", 4, rooms=["!new:x"], users=["@a:x"])  # an invite
    assert waiting.result is True


def test_a_change_between_computing_and_waiting_is_not_missed() -> None:
    clock = Clock()
    notifier = Notifier(clock, StreamToken())
    computed_at = notifier.current_token
    notifier.notify("receipts", 7, rooms=["!r:x"])
    waiting = start_waiting(notifier, "@a:x", ["!r:x"], computed_at, 30_000)
    assert waiting.result is True
    # ...but an unrelated one is.
    computed_at = notifier.current_token
    notifier.notify("receipts", 8, rooms=["!elsewhere:x"])
    waiting = start_waiting(notifier, "@a:x", ["!r:x"], computed_at, 30_000)
    assert not waiting.called
    clock.advance(31)
    assert waiting.result is False


def test_tokens_older_than_the_history_wake_at_once() -> None:
    clock = Clock()
    notifier = Notifier(clock, StreamToken())
    for position in range(1, 5000):
        notifier.notify("events", position, rooms=["!busy:x"])
    waiting = start_waiting(notifier, "@a:x", ["!quiet:x"], StreamToken(events=1), 30_000)
    assert waiting.result is True


def test_waiters_are_forgotten_after_waking() -> None:
    clock = Clock()
    notifier = Notifier(clock, StreamToken())
    waiting = start_waiting(notifier, "@a:x", ["!r:x"], notifier.current_token, 10)
    clock.advance(1)
    assert waiting.result is False
    assert not notifier._waiters_by_user and not notifier._waiters_by_room
