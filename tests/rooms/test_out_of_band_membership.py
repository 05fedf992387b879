"""Memberships of local users in rooms this server is not in (an invite received over
federation, its rejection, a knock): ``EventPath.persist_outlier``, on both engines,
and what the invitee's /sync shows of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from homeserver.events.event import Event
from homeserver.reactor import installed_reactor
from homeserver.rooms.builder import EventDraft, RoomPosition, build_local_event
from homeserver.rooms.event_path import InvalidRemoteState
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore
from homeserver.storage.state import StateStore
from homeserver.storage.timeline import TimelineStore
from tests.rooms.test_event_path import RITA, RemoteServer, make_pipeline
from tests.rooms.test_joined_room import _OUR_KEY, BOB, RemoteRoom
from tests.support.matrix import call, register, running_server


@pytest.fixture
def remote() -> RemoteServer:
    return RemoteServer()


def invite_for(remote_room: RemoteRoom, user_id: str) -> Event:
    """Rita's invite of ``user_id``, as the invitee's server keeps it: with the room's
    stripped state in ``unsigned``."""
    invite = remote_room.send("m.room.member", RITA, {"membership": "invite"}, user_id)
    stripped = [
        {"type": e.type, "state_key": e.state_key, "content": e.content, "sender": e.sender}
        for key, e in sorted(remote_room.state.items())
        if key[0] != "m.room.member"
    ]
    pdu = {**invite.pdu, "unsigned": {"invite_room_state": stripped}}
    return Event(pdu, invite.room_version, invite.event_id)


def leave_of(remote_room: RemoteRoom, user_id: str, server_name: str) -> Event:
    """The user's rejection of their invite, built by the make_leave template."""
    leave = build_local_event(
        remote_room.last.room_version,
        EventDraft(remote_room.room_id, "m.room.member", user_id, {"membership": "leave"}, user_id),
        RoomPosition(
            prev_event_ids=[remote_room.last.event_id],
            max_prev_depth=remote_room.last.depth,
            state_before={key: e.event_id for key, e in remote_room.state.items()},
        ),
        server_name=server_name,
        signing_key=_OUR_KEY,
        origin_server_ts=1_700_000_200_000,
    )
    return Event(dict(leave.pdu), leave.room_version, leave.event_id)


@pytest_twisted.ensureDeferred
async def test_an_invite_to_an_unknown_room_reaches_the_invitees_memberships(
    db: Database, remote: RemoteServer
) -> None:
    pipeline = make_pipeline(db)
    announced: list[str] = []
    pipeline.on_new_event.append(lambda event, position: announced.append(event.event_id))
    remote_room = RemoteRoom(remote)
    invite = invite_for(remote_room, BOB)
    result = await pipeline.path.persist_outlier(remote_room.room_id, "10", invite)
    assert result.stored and result.stream_ordering is not None
    assert announced == [invite.event_id]
    events = pipeline._events
    room = await events.get_room(remote_room.room_id)
    assert room is not None and room.current_state_group is None
    assert await events.get_rooms_for_user(BOB, "invite") == [remote_room.room_id]
    assert await events.get_forward_extremities(room.room_nid) == []
    timeline = TimelineStore(db, EventStore(db, StateStore(db)))
    [row] = await timeline.get_memberships_for_user(BOB)
    assert (row.membership, row.event_id) == ("invite", invite.event_id)
    changes = await timeline.get_membership_changes(BOB, 0, result.stream_ordering)
    assert [c.event_id for c in changes] == [invite.event_id]
    stored = (await EventStore(db, StateStore(db)).get_events([invite.event_id]))[invite.event_id]
    assert stored.unsigned["invite_room_state"][0]["type"] == "m.room.create"

    again = await pipeline.path.persist_outlier(remote_room.room_id, "10", invite)
    assert again.duplicate

    # Bob rejects it through Rita's server.
    leave = leave_of(remote_room, BOB, "example.org")
    left = await pipeline.path.persist_outlier(remote_room.room_id, "10", leave)
    assert left.stream_ordering is not None and left.stream_ordering > result.stream_ordering
    assert await events.get_rooms_for_user(BOB, "invite") == []
    assert await events.get_rooms_for_user(BOB, "leave") == [remote_room.room_id]


@pytest_twisted.ensureDeferred
async def test_joining_after_an_invite_through_another_server(
    db: Database, remote: RemoteServer
) -> None:
    pipeline = make_pipeline(db)
    remote_room = RemoteRoom(remote)
    invite = invite_for(remote_room, BOB)
    await pipeline.path.persist_outlier(remote_room.room_id, "10", invite)
    remote_room.state[("m.room.member", BOB)] = remote.held[invite.event_id]
    join = remote_room.bobs_join()
    result = await pipeline.path.persist_joined_room(
        remote_room.room_id, "10", join, remote_room.send_join_answer()
    )
    assert result.visible and result.stream_ordering is not None
    assert await pipeline._events.get_rooms_for_user(BOB) == [remote_room.room_id]
    assert await pipeline._events.get_rooms_for_user(BOB, "invite") == []
    room = await pipeline._events.get_room(remote_room.room_id)
    assert room is not None
    timeline = TimelineStore(db, EventStore(db, StateStore(db)))
    # The invite has no place in the room's graph: the timeline starts at the join.
    events = await timeline.get_room_events(
        room.room_nid, after=None, up_to=None, direction="b", limit=10
    )
    assert [e.event_id for e in events] == [join.event_id]
    # Rita's membership is an outlier of the joined state: it holds as of the join
    # (not of the invite before it).
    rita = await timeline.get_membership(room.room_nid, RITA)
    assert rita is not None and rita.membership == "join"
    assert rita.stream_ordering == result.stream_ordering
    [bob] = await timeline.get_memberships_for_user(BOB)
    assert (bob.event_id, bob.stream_ordering) == (join.event_id, result.stream_ordering)


def _sync(server: Any, token: str, since: str | None = None) -> dict[str, Any]:
    path = "/sync?timeout=0" + (f"&since={since}" if since else "")
    response = call(server, "GET", path, token)
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json()
    return body


@pytest_twisted.ensureDeferred
async def test_the_invitee_syncs_an_invite_and_its_rejection(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    """The server is stopped while the invite is stored (as federation's inbound side
    would store it) and started again: its /sync shows the invite with the stripped
    state it carried, then the rejection in ``leave``."""
    remote = RemoteServer()
    remote_room = RemoteRoom(remote)
    user = "@bob:localhost"
    with running_server(tmp_path, database_config) as server:
        token = register(server, "bob")["access_token"]
        first = _sync(server, token)

    async def store(event: Event) -> None:
        args = dict(database_config["args"])
        args.pop("cp_min", None)
        args.pop("cp_max", None)
        database = Database.connect(
            database_config["name"], args, reactor=installed_reactor(), cp_min=1, cp_max=1
        )
        try:
            await make_pipeline(database).path.persist_outlier(remote_room.room_id, "10", event)
        finally:
            database.close()

    await store(invite_for(remote_room, user))
    with running_server(tmp_path, database_config) as server:
        invited = _sync(server, token, first["next_batch"])
        room = invited["rooms"]["invite"][remote_room.room_id]
        events = room["invite_state"]["events"]
        assert ("m.room.join_rules", "") in {(e["type"], e["state_key"]) for e in events}
        assert events[-1]["content"] == {"membership": "invite"}
        assert events[-1]["sender"] == RITA
        since = invited["next_batch"]
    await store(leave_of(remote_room, user, "localhost"))
    with running_server(tmp_path, database_config) as server:
        left = _sync(server, token, since)
        assert remote_room.room_id in left["rooms"]["leave"], left
        assert remote_room.room_id not in left["rooms"].get("invite", {})
        # The rejection is the left room's only event (the invite is not shown again).
        timeline = left["rooms"]["leave"][remote_room.room_id]["timeline"]["events"]
        assert [e["content"]["membership"] for e in timeline] == ["leave"]


@pytest_twisted.ensureDeferred
async def test_a_knock_through_another_server_keeps_its_stripped_state(
    db: Database, remote: RemoteServer
) -> None:
    pipeline = make_pipeline(db)
    remote_room = RemoteRoom(remote, room_version="7")
    remote_room.send("m.room.join_rules", RITA, {"join_rule": "knock"}, "")
    knock = build_local_event(
        remote_room.last.room_version,
        EventDraft(remote_room.room_id, "m.room.member", BOB, {"membership": "knock"}, BOB),
        RoomPosition(
            prev_event_ids=[remote_room.last.event_id],
            max_prev_depth=remote_room.last.depth,
            state_before={key: e.event_id for key, e in remote_room.state.items()},
        ),
        server_name="example.org",
        signing_key=_OUR_KEY,
        origin_server_ts=1_700_000_300_000,
    )
    stripped = [
        {
            "type": "m.room.join_rules",
            "state_key": "",
            "content": {"join_rule": "knock"},
            "sender": RITA,
        }
    ]
    kept = Event(
        {**knock.pdu, "unsigned": {"knock_room_state": stripped}},
        knock.room_version,
        knock.event_id,
    )
    result = await pipeline.path.persist_outlier(remote_room.room_id, "7", kept)
    assert result.stream_ordering is not None
    assert await pipeline._events.get_rooms_for_user(BOB, "knock") == [remote_room.room_id]
    with pytest.raises(InvalidRemoteState):
        await pipeline.path.persist_outlier(remote_room.room_id, "10", kept)


@pytest_twisted.ensureDeferred
async def test_a_room_joined_through_another_server_reads_like_any_other(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    """Stored while the server is stopped, as the join dance would: then /sync,
    /members, /messages and /state serve it from the outlier-backed state."""
    remote = RemoteServer()
    remote_room = RemoteRoom(remote)
    remote_room.send("m.room.name", RITA, {"name": "Rita's room"}, "")
    user = "@bob:localhost"
    with running_server(tmp_path, database_config) as server:
        token = register(server, "bob")["access_token"]
        first = _sync(server, token)

    join = build_local_event(
        remote_room.last.room_version,
        EventDraft(remote_room.room_id, "m.room.member", user, {"membership": "join"}, user),
        RoomPosition(
            prev_event_ids=[remote_room.last.event_id],
            max_prev_depth=remote_room.last.depth,
            state_before={key: e.event_id for key, e in remote_room.state.items()},
        ),
        server_name="localhost",
        signing_key=_OUR_KEY,
        origin_server_ts=1_700_000_100_000,
    )
    args = dict(database_config["args"])
    args.pop("cp_min", None)
    args.pop("cp_max", None)
    database = Database.connect(
        database_config["name"], args, reactor=installed_reactor(), cp_min=1, cp_max=1
    )
    try:
        await make_pipeline(database).path.persist_joined_room(
            remote_room.room_id,
            "10",
            Event(dict(join.pdu), join.room_version, join.event_id),
            remote_room.send_join_answer(),
        )
    finally:
        database.close()

    with running_server(tmp_path, database_config) as server:
        synced = _sync(server, token, first["next_batch"])
        room = synced["rooms"]["join"][remote_room.room_id]
        timeline_ids = [e["event_id"] for e in room["timeline"]["events"]]
        assert timeline_ids == [join.event_id]
        state = {(e["type"], e["state_key"]) for e in room["state"]["events"]}
        assert ("m.room.name", "") in state and ("m.room.member", RITA) in state
        assert room["summary"].get("m.joined_member_count") == 2
        members = call(server, "GET", f"/rooms/{remote_room.room_id}/members", token)
        assert members.status == 200, members.body
        joined = {e["state_key"] for e in members.json()["chunk"]}
        assert joined == {user, RITA}
        messages = call(server, "GET", f"/rooms/{remote_room.room_id}/messages?dir=b", token)
        assert messages.status == 200, messages.body
        assert [e["event_id"] for e in messages.json()["chunk"]] == [join.event_id]
        name = call(server, "GET", f"/rooms/{remote_room.room_id}/state/m.room.name/", token)
        assert name.status == 200 and name.json() == {"name": "Rita's room"}
        full = _sync(server, token)
        assert remote_room.room_id in full["rooms"]["join"]


@pytest_twisted.ensureDeferred
async def test_the_first_sync_after_joining_an_invited_room_carries_its_state(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    """Invited over federation, then joined through the inviting server: the joiner's
    fresh /sync shows the room from the join, with the whole state before it (the
    invite has no state to start a timeline from)."""
    remote = RemoteServer()
    remote_room = RemoteRoom(remote)
    remote_room.send("m.room.name", RITA, {"name": "Rita's room"}, "")
    user = "@bob:localhost"
    with running_server(tmp_path, database_config) as server:
        token = register(server, "bob")["access_token"]
    invite = invite_for(remote_room, user)
    remote_room.state[("m.room.member", user)] = remote.held[invite.event_id]
    join = build_local_event(
        remote_room.last.room_version,
        EventDraft(remote_room.room_id, "m.room.member", user, {"membership": "join"}, user),
        RoomPosition(
            prev_event_ids=[remote_room.last.event_id],
            max_prev_depth=remote_room.last.depth,
            state_before={key: e.event_id for key, e in remote_room.state.items()},
        ),
        server_name="localhost",
        signing_key=_OUR_KEY,
        origin_server_ts=1_700_000_100_000,
    )
    args = dict(database_config["args"])
    args.pop("cp_min", None)
    args.pop("cp_max", None)
    database = Database.connect(
        database_config["name"], args, reactor=installed_reactor(), cp_min=1, cp_max=1
    )
    try:
        pipeline = make_pipeline(database)
        await pipeline.path.persist_outlier(remote_room.room_id, "10", invite)
        await pipeline.path.persist_joined_room(
            remote_room.room_id,
            "10",
            Event(dict(join.pdu), join.room_version, join.event_id),
            remote_room.send_join_answer(),
        )
    finally:
        database.close()

    with running_server(tmp_path, database_config) as server:
        room = _sync(server, token)["rooms"]["join"][remote_room.room_id]
        assert [e["event_id"] for e in room["timeline"]["events"]] == [join.event_id]
        state = {(e["type"], e["state_key"]) for e in room["state"]["events"]}
        assert {
            ("m.room.create", ""),
            ("m.room.power_levels", ""),
            ("m.room.name", ""),
            ("m.room.member", RITA),
        } <= state, state
        members = call(server, "GET", f"/rooms/{remote_room.room_id}/members", token)
        assert members.status == 200, members.body
        assert {e["state_key"] for e in members.json()["chunk"]} == {user, RITA}
