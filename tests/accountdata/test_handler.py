"""AccountDataHandler on both engines: positions, notifications, changes, tags,
ignored users."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from homeserver.accountdata.handler import (
    AccountDataChanges,
    AccountDataHandler,
    check_client_may_set,
)
from homeserver.errors import MatrixError
from homeserver.storage.account_data import AccountDataStore
from homeserver.storage.database import Database
from homeserver.streams.notifier import Notifier
from homeserver.streams.token import StreamToken

ALICE, BOB = "@alice:hs", "@bob:hs"
ROOM, OTHER_ROOM = "!room:hs", "!other:hs"


async def make_handler(db: Database, **kwargs: Any) -> tuple[AccountDataHandler, Notifier]:
    notifier = Notifier(reactor, StreamToken())
    handler = AccountDataHandler(AccountDataStore(db), notifier, **kwargs)
    await handler.load()
    return handler, notifier


@pytest_twisted.ensureDeferred
async def test_changes_advance_the_position_and_wake_the_user(db: Database) -> None:
    handler, notifier = await make_handler(db)
    assert handler.current_position() == 0
    first = await handler.set_global(ALICE, "x.config", {"a": 1})
    assert handler.current_position() == first
    assert notifier.current_token.account_data == first
    # A waiter for Alice from before the change is woken at once; Bob's is not.
    since = StreamToken(account_data=0)
    assert await notifier.wait_for_changes(ALICE, [], since, timeout_ms=0)
    assert not await notifier.wait_for_changes(BOB, [], since, timeout_ms=0)
    second = await handler.set_room(ALICE, ROOM, "x.config", {"b": 2})
    assert second > first
    assert handler.current_position() == second
    assert await handler.get_global(ALICE, "x.config") == {"a": 1}
    assert await handler.get_room(ALICE, ROOM, "x.config") == {"b": 2}
    assert await handler.get_room(ALICE, OTHER_ROOM, "x.config") is None
    assert await handler.get_global(BOB, "x.config") is None


@pytest_twisted.ensureDeferred
async def test_load_starts_from_the_newest_position(db: Database) -> None:
    handler, _ = await make_handler(db)
    await handler.set_global(ALICE, "one", {})
    last = await handler.set_global(ALICE, "two", {})
    restarted, _ = await make_handler(db)
    assert restarted.current_position() == last
    # A restarted handler still answers changes made before it started.
    changes = await restarted.changes(ALICE, 0, last)
    assert set(changes.global_data) == {"one", "two"}


@pytest_twisted.ensureDeferred
async def test_changes_hold_the_newest_content_in_the_range(db: Database) -> None:
    handler, _ = await make_handler(db)
    p1 = await handler.set_global(ALICE, "x.a", {"v": 1})
    p2 = await handler.set_room(ALICE, ROOM, "x.b", {"v": 2})
    await handler.set_global(BOB, "x.a", {"v": "bob"})
    p4 = await handler.add_tag(ALICE, OTHER_ROOM, "m.favourite", {"order": 0.5})
    everything = await handler.changes(ALICE, 0, p4)
    assert everything == AccountDataChanges(
        global_data={"x.a": {"v": 1}},
        room_data={
            ROOM: {"x.b": {"v": 2}},
            OTHER_ROOM: {"m.tag": {"tags": {"m.favourite": {"order": 0.5}}}},
        },
    )
    assert await handler.changes(ALICE, p1, p2) == AccountDataChanges(
        room_data={ROOM: {"x.b": {"v": 2}}}
    )
    assert not await handler.changes(ALICE, p4, p4)
    assert not await handler.changes(ALICE, p4, p4 + 100)
    p5 = await handler.set_global(ALICE, "x.a", {"v": 5})
    assert await handler.changes(ALICE, p4, p5) == AccountDataChanges(global_data={"x.a": {"v": 5}})


@pytest_twisted.ensureDeferred
async def test_changes_stay_right_when_the_change_cache_overflows(db: Database) -> None:
    handler, _ = await make_handler(db, change_cache_size=2)
    alice = await handler.set_global(ALICE, "x", {"who": "alice"})
    for n in range(3):
        await handler.set_global(f"@user{n}:hs", "x", {})
    # Alice's entry was evicted; her change must still be found.
    assert (await handler.changes(ALICE, 0, handler.current_position())).global_data == {
        "x": {"who": "alice"}
    }
    assert not await handler.changes(ALICE, alice, handler.current_position())


@pytest_twisted.ensureDeferred
async def test_tags_are_added_replaced_and_removed(db: Database) -> None:
    handler, _ = await make_handler(db)
    assert await handler.get_tags(ALICE, ROOM) == {}
    await handler.add_tag(ALICE, ROOM, "m.favourite", {"order": 0.25})
    await handler.add_tag(ALICE, ROOM, "u.work", {})
    await handler.add_tag(ALICE, ROOM, "m.favourite", {"order": 1})
    assert await handler.get_tags(ALICE, ROOM) == {"m.favourite": {"order": 1}, "u.work": {}}
    assert await handler.get_room(ALICE, ROOM, "m.tag") == {
        "tags": {"m.favourite": {"order": 1}, "u.work": {}}
    }
    removed = await handler.remove_tag(ALICE, ROOM, "u.work")
    assert removed == handler.current_position()
    assert await handler.get_tags(ALICE, ROOM) == {"m.favourite": {"order": 1}}
    # Removing a tag that is not there changes nothing.
    assert await handler.remove_tag(ALICE, ROOM, "u.none") == removed
    assert await handler.get_tags(BOB, ROOM) == {}


@pytest_twisted.ensureDeferred
async def test_malformed_tag_content_set_directly_is_tolerated(db: Database) -> None:
    handler, _ = await make_handler(db)
    await handler.set_room(ALICE, ROOM, "m.tag", {"tags": {"ok": {}, "bad": 5}, "extra": 1})
    assert await handler.get_tags(ALICE, ROOM) == {"ok": {}}
    await handler.add_tag(ALICE, ROOM, "new", {})
    assert await handler.get_room(ALICE, ROOM, "m.tag") == {
        "tags": {"ok": {}, "new": {}},
        "extra": 1,
    }
    await handler.set_room(ALICE, OTHER_ROOM, "m.tag", {"tags": "nonsense"})
    assert await handler.get_tags(ALICE, OTHER_ROOM) == {}


@pytest.mark.parametrize(
    ("tag", "content", "errcode"),
    [
        ("x" * 256, {}, "M_INVALID_PARAM"),
        ("é" * 128, {}, "M_INVALID_PARAM"),  # 256 bytes
        ("u.ok", {"order": "1"}, "M_BAD_JSON"),
        ("u.ok", {"order": True}, "M_BAD_JSON"),
        ("u.ok", {"order": None}, "M_BAD_JSON"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_tags_are_refused(
    db: Database, tag: str, content: dict[str, Any], errcode: str
) -> None:
    handler, _ = await make_handler(db)
    with pytest.raises(MatrixError) as got:
        await handler.add_tag(ALICE, ROOM, tag, content)
    assert (got.value.status, got.value.errcode) == (400, errcode)
    assert handler.current_position() == 0


@pytest_twisted.ensureDeferred
async def test_ignored_users_follow_the_list(db: Database) -> None:
    handler, _ = await make_handler(db)
    changed: list[str] = []
    handler.on_ignored_users_changed.append(changed.append)
    assert await handler.ignored_users(ALICE) == frozenset()
    await handler.set_global(ALICE, "m.ignored_user_list", {"ignored_users": {BOB: {}}})
    assert await handler.ignored_users(ALICE) == {BOB}
    assert changed == [ALICE]
    # Setting the same set again is not a change.
    await handler.set_global(ALICE, "m.ignored_user_list", {"ignored_users": {BOB: {}}})
    assert changed == [ALICE]
    # Ignoring yourself is stored (the spec allows it) but never hides your own events.
    await handler.set_global(ALICE, "m.ignored_user_list", {"ignored_users": {BOB: {}, ALICE: {}}})
    assert await handler.ignored_users(ALICE) == {BOB}
    assert changed == [ALICE]
    await handler.set_global(ALICE, "m.ignored_user_list", {"ignored_users": {}})
    assert await handler.ignored_users(ALICE) == frozenset()
    assert changed == [ALICE, ALICE]
    # A fresh handler reads the list from the database.
    await handler.set_global(ALICE, "m.ignored_user_list", {"ignored_users": {BOB: {}}})
    fresh, _ = await make_handler(db)
    assert await fresh.ignored_users(ALICE) == {BOB}


@pytest.mark.parametrize(
    "content",
    [
        {},
        {"ignored_users": []},
        {"ignored_users": None},
        {"ignored_users": {"bob": {}}},
        {"ignored_users": {"@bob": {}}},
        {"ignored_users": {BOB: True}},
        {"ignored_users": {BOB: None}},
    ],
)
@pytest_twisted.ensureDeferred
async def test_malformed_ignored_user_lists_are_refused(
    db: Database, content: dict[str, Any]
) -> None:
    handler, _ = await make_handler(db)
    with pytest.raises(MatrixError) as got:
        await handler.set_global(ALICE, "m.ignored_user_list", content)
    assert (got.value.status, got.value.errcode) == (400, "M_BAD_JSON")
    assert await handler.get_global(ALICE, "m.ignored_user_list") is None


@pytest_twisted.ensureDeferred
async def test_long_or_nul_types_are_refused(db: Database) -> None:
    handler, _ = await make_handler(db)
    for bad in ("x" * 256, "a\x00b"):
        with pytest.raises(MatrixError) as got:
            await handler.set_global(ALICE, bad, {})
        assert got.value.errcode == "M_INVALID_PARAM"
        with pytest.raises(MatrixError):
            await handler.set_room(ALICE, ROOM, bad, {})
        with pytest.raises(MatrixError):
            await handler.get_global(ALICE, bad)
        with pytest.raises(MatrixError):
            await handler.get_room(ALICE, ROOM, bad)
    await handler.set_global(ALICE, "x" * 255, {})


def test_server_managed_types_cannot_be_set_by_clients() -> None:
    for managed in ("m.fully_read", "m.push_rules"):
        with pytest.raises(MatrixError) as got:
            check_client_may_set(managed)
        assert (got.value.status, got.value.errcode) == (405, "M_BAD_JSON")
    check_client_may_set("m.direct")


class _PausingStore(AccountDataStore):
    """The real store, except that the first read fires ``read_done`` once it has
    read, then waits for ``release``.

    The gate is claimed when the read is *called*, not when it finishes: reads run on
    a thread pool, so a later read (the writer's look at the old list) may finish
    first, and it must not be the one left waiting on a gate released only after it.
    """

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.release: defer.Deferred[None] | None = defer.Deferred()
        self.read_done: defer.Deferred[None] = defer.Deferred()

    async def get(self, user_id: str, room_id: str | None, data_type: str) -> Any:
        gate, self.release = self.release, None
        content = await super().get(user_id, room_id, data_type)
        if gate is not None:
            self.read_done.callback(None)
            await gate
        return content


@pytest_twisted.ensureDeferred
async def test_a_slow_read_never_caches_an_older_ignored_list(db: Database) -> None:
    store = _PausingStore(db)
    handler = AccountDataHandler(store, Notifier(reactor, StreamToken()))
    await handler.load()
    gate = store.release
    assert gate is not None
    # A read of the (empty) list starts and stalls after reading; meanwhile the list
    # is written.  When the stale read finishes it must not overwrite the cache.
    slow_read = defer.ensureDeferred(handler.ignored_users(ALICE))
    # On PostgreSQL's pool the read could otherwise run after the write commits.
    await store.read_done
    await handler.set_global(ALICE, "m.ignored_user_list", {"ignored_users": {BOB: {}}})
    gate.callback(None)
    assert await slow_read == frozenset()
    assert await handler.ignored_users(ALICE) == {BOB}
