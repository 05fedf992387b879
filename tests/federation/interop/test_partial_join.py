"""Joining a room on another server with partial state ("faster joins").

Our server asks the resident for the state without its membership events
(``omit_members``); the join returns, and the member list arrives in the
background.  Here the resident is our second server or Synapse, the room has more
members than the resident would name as heroes, and a name (so it names none).

spec: data/api/server-server/joins-v2.yaml (omit_members, members_omitted,
servers_in_room)
"""

from __future__ import annotations

import re

import pytest

from tests.federation.interop.clients import (
    ServerPair,
    SyncWatcher,
    create_room,
    has_event_id,
    join,
    new_user,
    room_path,
    send_text,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-interop-partial-join")]

#: Members the resident's room has besides its creator: more than the five heroes.
RESIDENT_MEMBERS = 7
COMPLETED = re.compile(r"room (\S+) has its full state: (\d+) entries added, (\d+) members")


def test_a_partial_join_completes_with_every_member(servers: ServerPair) -> None:
    """The joiner's member list ends up whole, and it got there by a partial join:
    our server's log says how many members the completion added."""
    resident, joiner_server = servers.other, servers.ours
    creator = new_user(resident, "host")
    room_id = create_room(creator, preset="public_chat", name="Partial join")
    residents = [new_user(resident, "member") for _ in range(RESIDENT_MEMBERS)]
    for member in residents:
        join(member, room_id, via=[resident.server_name])
    joiner = new_user(joiner_server, "joiner")
    join(joiner, room_id, via=[resident.server_name])

    # /joined_members waits for the full state of a partial room.
    joined = joiner.call("GET", room_path(room_id, "joined_members"))["joined"]
    expected = {creator.user_id, joiner.user_id, *(m.user_id for m in residents)}
    assert set(joined) == expected
    members = joiner.call("GET", room_path(room_id, "members"))["chunk"]
    assert {m["state_key"] for m in members if m["content"]["membership"] == "join"} == expected

    if servers.pairing == "synapse-synapse":
        return  # the log line below is our server's
    completions = [
        m for m in COMPLETED.finditer(joiner_server.process.log()) if m.group(1) == room_id
    ]
    assert completions, "the join did not go through partial state"
    assert int(completions[-1].group(3)) >= RESIDENT_MEMBERS


def test_messages_flow_both_ways_after_a_partial_join(servers: ServerPair) -> None:
    """Right after the join returns, the joiner can send and receive, whatever the
    state of the background fetch."""
    resident, joiner_server = servers.other, servers.ours
    creator = new_user(resident, "host")
    room_id = create_room(creator, preset="public_chat", name="Talk after joining")
    for _ in range(RESIDENT_MEMBERS):
        join(new_user(resident, "member"), room_id, via=[resident.server_name])
    joiner = new_user(joiner_server, "joiner")
    creator_sync, joiner_sync = SyncWatcher(creator), SyncWatcher(joiner)
    creator_sync.wait_for(lambda body: body.get("next_batch"))
    join(joiner, room_id, via=[resident.server_name])

    sent_by_joiner = send_text(joiner, room_id, "hello from the joiner")
    creator_sync.wait_for_event(room_id, has_event_id(sent_by_joiner))
    sent_by_creator = send_text(creator, room_id, "hello from the resident")
    joiner_sync.wait_for_event(room_id, has_event_id(sent_by_creator))
