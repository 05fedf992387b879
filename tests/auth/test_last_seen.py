"""Last-seen batching: remembered in memory, written by a timer, on both engines."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import task

from homeserver.auth.last_seen import FLUSH_INTERVAL_SECONDS, LastSeenTracker
from homeserver.clock import Clock
from homeserver.storage.database import Database
from homeserver.storage.devices import DeviceStore


@pytest_twisted.ensureDeferred
async def test_requests_are_written_in_one_batch_by_the_timer(db: Database) -> None:
    devices = DeviceStore(db)
    await devices.add_device_with_token("@a:hs", "A", "h1", created_ts=1)
    await devices.add_device_with_token("@a:hs", "B", "h2", created_ts=1)
    reactor = task.Clock()
    reactor.advance(1000)
    tracker = LastSeenTracker(Clock(reactor), devices, reactor)
    tracker.start()
    tracker.record("@a:hs", "A", "10.0.0.1", "UA/1")
    tracker.record("@a:hs", "A", "10.0.0.2", "UA/2")  # only the latest is kept
    tracker.record("@a:hs", "B", "10.0.0.3", None)
    pending = tracker.pending("@a:hs", "A")
    assert pending is not None and pending.ip == "10.0.0.2"
    device = await devices.get_device("@a:hs", "A")
    assert device is not None and device.last_seen_ts is None  # nothing written yet
    reactor.advance(FLUSH_INTERVAL_SECONDS)
    await tracker.stop()  # waits for the flush the timer started, if still running
    device = await devices.get_device("@a:hs", "A")
    assert device is not None
    assert (device.last_seen_ip, device.last_seen_user_agent, device.last_seen_ts) == (
        "10.0.0.2",
        "UA/2",
        1_000_000,
    )
    assert tracker.pending("@a:hs", "A") is None


@pytest_twisted.ensureDeferred
async def test_stop_writes_what_is_pending(db: Database) -> None:
    devices = DeviceStore(db)
    await devices.add_device_with_token("@a:hs", "A", "h1", created_ts=1)
    reactor = task.Clock()
    tracker = LastSeenTracker(Clock(reactor), devices, reactor)
    tracker.start()
    tracker.record("@a:hs", "A", "10.0.0.9", None)
    await tracker.stop()
    device = await devices.get_device("@a:hs", "A")
    assert device is not None and device.last_seen_ip == "10.0.0.9"


@pytest_twisted.ensureDeferred
async def test_forgotten_users_are_not_written(db: Database) -> None:
    devices = DeviceStore(db)
    reactor = task.Clock()
    tracker = LastSeenTracker(Clock(reactor), devices, reactor)
    tracker.record("@a:hs", "A", "10.0.0.9", None)
    tracker.forget_user("@a:hs")
    assert tracker.pending("@a:hs", "A") is None
