"""The asking side's rules, on a fake clock with remote servers that answer when the
test says: one backfill per room, a reader never held beyond the wait, who is asked
and when not to ask again, and what is made of answers that are no use.

(The end-to-end behaviour, with real events between two real servers, is in
``test_two_servers.py``.)  spec: server-server-api.md#backfilling-and-retrieving-missing-events
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, cast

import attrs
import pytest
from twisted.internet import defer, task

from federation.history.remote import (
    BACKFILL_WAIT_SECONDS,
    FRUITLESS_RETRY_MS,
    FederationHistory,
)
from federation.inbound.pdu_checks import PduChecker
from homeserver.events.event import Event
from homeserver.rooms.event_path_types import PathResult
from homeserver.rooms.reading import Backfill
from homeserver.storage.events import RoomRecord

ROOM = RoomRecord(7, "!room:creator.test", "10", 1)


@attrs.define
class Request:
    destination: str
    path: str
    args: Mapping[str, Any] | None
    answer: defer.Deferred[Any]


class Servers:
    """Remote servers whose every answer the test gives (``answer``/``fail``)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    async def get_json(
        self,
        destination: str,
        path: str,
        *,
        args: Mapping[str, str | Sequence[str]] | None = None,
        timeout: float = 60.0,  # noqa: ASYNC109
        max_size: int = 0,
    ) -> Any:
        request = Request(destination, path, args, defer.Deferred())
        self.requests.append(request)
        return await request.answer

    def answer(self, body: Any) -> None:
        self.pending().answer.callback(body)

    def fail(self) -> None:
        self.pending().answer.errback(ConnectionRefusedError("down"))

    def pending(self) -> Request:
        [request] = [r for r in self.requests if not r.answer.called]
        return request


@attrs.define
class Room:
    """What this server holds of ``ROOM``."""

    backward: set[str] = attrs.Factory(lambda: {"$gap"})
    #: Depths of the events held as outliers (backward extremities of gaps).
    depths: dict[str, int] = attrs.Factory(dict)
    joined: frozenset[str] = frozenset({"ours.test", "creator.test", "another.test"})
    stored: list[Sequence[Event]] = attrs.Factory(list)

    async def get_backward_extremities(
        self, room_nid: int, among: Collection[str] | None = None
    ) -> set[str]:
        return set(self.backward)

    async def get_events(self, event_ids: Sequence[str]) -> Mapping[str, Event]:
        return {
            event_id: cast(Event, HeldOutlier(self.depths[event_id]))
            for event_id in event_ids
            if event_id in self.depths
        }

    async def get_joined_servers(self, room_id: str) -> Collection[str]:
        return self.joined

    async def receive_backfill(
        self, room_id: str, events: Sequence[Event], *, origin: str | None = None
    ) -> list[PathResult]:
        self.stored.append(events)
        return []


@attrs.frozen
class HeldOutlier:
    """An event held outside the graph (only its depth is read)."""

    depth: int


class NoKeys:
    async def verify_json_for_server(
        self, server_name: str, json_object: Mapping[str, Any], valid_at_ts: int
    ) -> None:
        raise AssertionError("no PDU should need checking here")


@pytest.fixture
def clock() -> task.Clock:
    clock = task.Clock()
    clock.advance(1_000_000)
    return clock


@pytest.fixture
def servers() -> Servers:
    return Servers()


@pytest.fixture
def room() -> Room:
    return Room()


@pytest.fixture
def history(clock: task.Clock, servers: Servers, room: Room) -> FederationHistory:
    return FederationHistory(
        server_name="ours.test",
        client=servers,
        checker=PduChecker(NoKeys()),
        path=room,
        graph=room,
        servers=room,
        reactor=clock,
    )


def backfill(
    history: FederationHistory, down_to_depth: int | None = None
) -> defer.Deferred[Backfill]:
    return defer.ensureDeferred(history.backfill(ROOM, down_to_depth=down_to_depth))


def result_of(deferred: defer.Deferred[Any]) -> Any:
    assert deferred.called, "still waiting"
    results: list[Any] = []
    deferred.addBoth(results.append)
    return results[0]


def test_concurrent_readers_share_one_backfill(
    history: FederationHistory, servers: Servers
) -> None:
    first, second = backfill(history), backfill(history)
    assert len(servers.requests) == 1
    [request] = servers.requests
    assert request.destination == "creator.test"
    assert request.path == "/_matrix/federation/v1/backfill/%21room%3Acreator.test"
    assert request.args == {"v": ["$gap"], "limit": "100"}
    servers.answer({"pdus": []})
    servers.answer({"pdus": []})
    assert result_of(first) is result_of(second) is Backfill.NOTHING


def test_a_slow_server_holds_the_reader_only_so_long(
    history: FederationHistory, servers: Servers, clock: task.Clock
) -> None:
    reader = backfill(history)
    clock.advance(BACKFILL_WAIT_SECONDS - 0.1)
    assert not reader.called
    clock.advance(0.1)
    assert result_of(reader) is Backfill.PENDING
    # The backfill goes on; the next reader joins it rather than asking again.
    next_reader = backfill(history)
    assert len(servers.requests) == 1
    servers.fail()
    servers.answer({"pdus": []})
    assert result_of(next_reader) is Backfill.NOTHING


def test_a_room_whose_history_is_whole_asks_nobody(
    history: FederationHistory, servers: Servers, room: Room
) -> None:
    room.backward = set()
    assert result_of(backfill(history)) is Backfill.NOTHING
    assert servers.requests == []


def test_servers_that_had_nothing_are_not_asked_again_soon(
    history: FederationHistory, servers: Servers, room: Room, clock: task.Clock
) -> None:
    reader = backfill(history)
    servers.answer({"pdus": []})
    servers.fail()
    assert result_of(reader) is Backfill.NOTHING
    # The room's creator's server first, then the others; never ourselves.
    assert [r.destination for r in servers.requests] == ["creator.test", "another.test"]
    assert result_of(backfill(history)) is Backfill.NOTHING
    assert len(servers.requests) == 2
    # A new gap is worth asking about at once...
    room.backward.add("$another_gap")
    backfill(history)
    assert len(servers.requests) == 3
    servers.answer({"pdus": []})
    servers.answer({"pdus": []})
    # ... and the same one again after a while.
    clock.advance(FRUITLESS_RETRY_MS / 1000)
    backfill(history)
    assert len(servers.requests) == 5


def test_a_page_asks_about_the_gaps_within_it_and_leaves_deeper_ones(
    history: FederationHistory, servers: Servers, room: Room
) -> None:
    # A gap left while this server was away (its edge held at depth 20), one
    # deeper (depth 5), and the bottom of the history held (not held at all).
    room.backward = {"$recent_gap", "$old_gap", "$bottom"}
    room.depths = {"$recent_gap": 20, "$old_gap": 5}
    backfill(history, down_to_depth=10)
    assert [r.args for r in servers.requests] == [{"v": ["$recent_gap"], "limit": "100"}]
    servers.answer({"pdus": []})
    servers.answer({"pdus": []})
    # A page reading no deeper than the gaps asks nothing.
    assert result_of(backfill(history, down_to_depth=21)) is Backfill.NOTHING
    assert len(servers.requests) == 2
    # The page reaching the oldest event held: every gap.
    backfill(history)
    assert servers.requests[-1].args == {
        "v": ["$bottom", "$old_gap", "$recent_gap"],
        "limit": "100",
    }


@pytest.mark.parametrize(
    "answer", ["not an object", {"pdus": "not a list"}, {"pdus": [17, None, "x"]}, {}]
)
def test_answers_of_no_use_store_nothing(
    history: FederationHistory, servers: Servers, room: Room, answer: Any
) -> None:
    reader = backfill(history)
    servers.answer(answer)
    servers.answer(answer)
    assert result_of(reader) is Backfill.NOTHING
    assert room.stored == []


class LocalEvent:
    """The event this server found nearest a time (only its timestamp is read)."""

    def __init__(self, origin_server_ts: int) -> None:
        self.origin_server_ts = origin_server_ts


def near(history: FederationHistory, ts: int, direction: str, local: Any) -> Any:
    return defer.ensureDeferred(history.event_near_timestamp(ROOM, ts, direction, local))  # type: ignore[arg-type]


def test_an_exact_local_answer_asks_nobody(history: FederationHistory, servers: Servers) -> None:
    assert result_of(near(history, 5_000, "f", LocalEvent(5_000))) is None
    assert servers.requests == []


def test_whole_history_here_asks_nobody(
    history: FederationHistory, servers: Servers, room: Room
) -> None:
    room.backward = set()
    assert result_of(near(history, 5_000, "f", LocalEvent(9_000))) is None
    assert servers.requests == []


@pytest.mark.parametrize(
    ("direction", "claimed_ts", "local_ts"),
    [("f", 4_999, None), ("b", 5_001, None), ("f", 9_000, 8_000), ("b", 1_000, 2_000)],
    ids=["before-going-forward", "after-going-back", "farther-forward", "farther-back"],
)
def test_a_remote_event_no_nearer_is_not_fetched(
    history: FederationHistory,
    servers: Servers,
    direction: str,
    claimed_ts: int,
    local_ts: int | None,
) -> None:
    local = None if local_ts is None else LocalEvent(local_ts)
    found = near(history, 5_000, direction, local)
    [request] = servers.requests
    assert request.path == "/_matrix/federation/v1/timestamp_to_event/%21room%3Acreator.test"
    assert request.args == {"ts": "5000", "dir": direction}
    servers.answer({"event_id": "$far", "origin_server_ts": claimed_ts})
    assert result_of(found) is None
    assert len(servers.requests) == 1  # no /event


def test_malformed_timestamp_answers_are_passed_over(
    history: FederationHistory, servers: Servers
) -> None:
    found = near(history, 5_000, "f", None)
    servers.answer({"event_id": 3, "origin_server_ts": 5_000})
    servers.answer({"event_id": "$x", "origin_server_ts": "5000"})
    assert result_of(found) is None
    assert [r.destination for r in servers.requests] == ["creator.test", "another.test"]
