"""The asking side of the handshakes against the serving side, two servers in one
process with their own databases (both engines): ``example.org`` (Alice's rooms)
and ``remote.test`` (Rita), each side's client reaching the other's serving handler
(loopback.py).  What each server then holds is read from its own stores.

spec: server-server-api.md#joining-rooms, #knocking-rooms, #inviting-to-a-room,
#leaving-rooms-rejecting-invites
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import pytest
import pytest_twisted

from homeserver.auth.tokens import Requester
from homeserver.errors import MatrixError
from homeserver.reactor import installed_reactor
from homeserver.storage.database import Database
from homeserver.storage.migrations import prepare_database
from tests.federation.inbound.signing import TestServer
from tests.federation.membership.conftest import (
    ALICE,
    LOCAL,
    REMOTE,
    RITA,
    Resident,
    build_serving,
)
from tests.federation.membership.loopback import LoopbackClient
from tests.support.postgres import temporary_database


@attrs.frozen
class TwoServers:
    home: Resident
    away: Resident
    home_client: LoopbackClient
    away_client: LoopbackClient


@pytest_twisted.async_yield_fixture
async def other_db(database_config: dict[str, Any], tmp_path: Path) -> AsyncIterator[Database]:
    """A second database of the same engine, for the second server."""
    with ExitStack() as stack:
        if database_config["name"] == "sqlite3":
            name, args = "sqlite3", {"database": str(tmp_path / "away.db")}
        else:
            name, args = "psycopg2", dict(stack.enter_context(temporary_database()))
        database = Database.connect(name, args, reactor=installed_reactor())
        await prepare_database(database)
        yield database
        database.close()


@pytest_twisted.async_yield_fixture
async def servers(db: Database, other_db: Database) -> AsyncIterator[TwoServers]:
    home_key, away_key = TestServer(LOCAL), TestServer(REMOTE)
    home_client, away_client = LoopbackClient(LOCAL), LoopbackClient(REMOTE)
    home = build_serving(db, home_key, away_key, client=home_client)
    away = build_serving(other_db, away_key, home_key, client=away_client)
    home_client.serving, away_client.serving = away.serving, home.serving
    home.room_id = await home.create_room("public")
    yield TwoServers(home, away, home_client, away_client)


def requester(user_id: str) -> Requester:
    return Requester(user_id, "DEVICE", 1, False)


async def membership_on(side: Resident, room_id: str, user_id: str) -> str | None:
    """``user_id``'s membership in ``room_id`` as ``side``'s membership index has it."""
    room = await side.state.room(room_id)
    if room is None:
        return None
    row = await side.state.membership(room, user_id)
    return None if row is None else row.membership


async def rita(side: Resident, room_id: str, action: Any, servers: list[str]) -> Any:
    return await side.membership.update_membership(
        requester(RITA), room_id, RITA, action, servers=servers
    )


@pytest_twisted.ensureDeferred
async def test_a_join_through_the_resident_gives_both_servers_the_room(
    servers: TwoServers,
) -> None:
    home, away = servers.home, servers.away
    sent = await rita(away, home.room_id, "join", [LOCAL])
    assert sent.event.sender == RITA
    assert await home.membership_of(RITA) == "join"
    away_state = await away.current_state(home.room_id)
    assert away_state[("m.room.member", RITA)].membership == "join"
    assert away_state[("m.room.member", ALICE)].membership == "join"
    assert ("m.room.create", "") in away_state
    assert await membership_on(away, home.room_id, RITA) == "join"


@pytest_twisted.ensureDeferred
async def test_a_join_tries_the_next_server_when_one_does_not_know_the_room(
    servers: TwoServers,
) -> None:
    home, away = servers.home, servers.away
    # The room ID names example.org, which the candidates end with.
    await rita(away, home.room_id, "join", ["nowhere.test"])
    assert await home.membership_of(RITA) == "join"


@pytest_twisted.ensureDeferred
async def test_a_join_the_resident_refuses_is_the_clients_error(servers: TwoServers) -> None:
    home, away = servers.home, servers.away
    await home.send("m.room.join_rules", {"join_rule": "invite"}, "")
    with pytest.raises(MatrixError) as refused:
        await rita(away, home.room_id, "join", [LOCAL])
    assert (refused.value.status, refused.value.errcode) == (403, "M_FORBIDDEN")
    assert await away.state.room(home.room_id) is None


@pytest_twisted.ensureDeferred
async def test_a_join_without_any_server_to_ask_is_not_found(servers: TwoServers) -> None:
    with pytest.raises(MatrixError) as refused:
        await rita(servers.away, "!unknown:remote.test", "join", [])
    assert (refused.value.status, refused.value.errcode) == (404, "M_NOT_FOUND")


@pytest_twisted.ensureDeferred
async def test_an_invite_of_a_remote_user_is_countersigned_then_stored_on_both(
    servers: TwoServers,
) -> None:
    home, away = servers.home, servers.away
    sent = await home.membership.update_membership(requester(ALICE), home.room_id, RITA, "invite")
    assert set(sent.event.pdu["signatures"]) == {LOCAL, REMOTE}
    assert await home.membership_of(RITA) == "invite"
    assert await membership_on(away, home.room_id, RITA) == "invite"
    kept = (await away.events.get_events([sent.event.event_id]))[sent.event.event_id]
    kinds = {entry["type"] for entry in kept.unsigned.get("invite_room_state", [])}
    assert {"m.room.create", "m.room.join_rules"} <= kinds
    assert (
        "PUT",
        f"/_matrix/federation/v2/invite/{_q(home.room_id)}/{_q(sent.event.event_id)}",
    ) in (servers.home_client.requests)


@pytest_twisted.ensureDeferred
async def test_an_invite_the_invitees_server_cannot_sign_stores_nothing(
    servers: TwoServers,
) -> None:
    home = servers.home
    servers.home_client.unreachable = True
    with pytest.raises(MatrixError) as failed:
        await home.membership.update_membership(requester(ALICE), home.room_id, RITA, "invite")
    assert failed.value.status == 502
    assert await home.membership_of(RITA) is None


@pytest_twisted.ensureDeferred
async def test_the_invitee_joins_through_the_inviters_server(servers: TwoServers) -> None:
    home, away = servers.home, servers.away
    await home.send("m.room.join_rules", {"join_rule": "invite"}, "")
    await home.membership.update_membership(requester(ALICE), home.room_id, RITA, "invite")
    await rita(away, home.room_id, "join", [])  # no via: the inviter's server
    assert await home.membership_of(RITA) == "join"
    assert await membership_on(away, home.room_id, RITA) == "join"


@pytest_twisted.ensureDeferred
async def test_rejecting_an_invite_goes_through_the_inviters_server(servers: TwoServers) -> None:
    home, away = servers.home, servers.away
    await home.membership.update_membership(requester(ALICE), home.room_id, RITA, "invite")
    await rita(away, home.room_id, "leave", [])
    assert await home.membership_of(RITA) == "leave"
    assert await membership_on(away, home.room_id, RITA) == "leave"


@pytest_twisted.ensureDeferred
async def test_leaving_a_room_one_is_not_invited_to_is_refused(servers: TwoServers) -> None:
    with pytest.raises(MatrixError) as refused:
        await rita(servers.away, servers.home.room_id, "leave", [LOCAL])
    assert refused.value.status == 404


@pytest_twisted.ensureDeferred
async def test_a_knock_reaches_the_resident_and_keeps_the_rooms_state(
    servers: TwoServers,
) -> None:
    home, away = servers.home, servers.away
    room_id = await home.create_room("knock")
    await home.send_in(room_id, "m.room.name", {"name": "Knock here"}, "")
    sent = await rita(away, room_id, "knock", [LOCAL])
    assert await home.membership_of(RITA, room_id) == "knock"
    assert await membership_on(away, room_id, RITA) == "knock"
    stored = (await away.events.get_events([sent.event.event_id]))[sent.event.event_id]
    kinds = {entry["type"] for entry in stored.unsigned.get("knock_room_state", [])}
    assert {"m.room.create", "m.room.name", "m.room.join_rules"} <= kinds


@pytest_twisted.ensureDeferred
async def test_a_knock_can_be_retracted_through_the_resident(servers: TwoServers) -> None:
    home, away = servers.home, servers.away
    room_id = await home.create_room("knock")
    await rita(away, room_id, "knock", [LOCAL])
    await rita(away, room_id, "leave", [])
    assert await home.membership_of(RITA, room_id) == "leave"


def _q(segment: str) -> str:
    return quote(segment, safe="")


@pytest_twisted.ensureDeferred
async def test_deactivation_rejects_invites_to_rooms_we_are_not_in(servers: TwoServers) -> None:
    home, away = servers.home, servers.away
    await home.membership.update_membership(requester(ALICE), home.room_id, RITA, "invite")
    await away.membership.leave_all_rooms(RITA)
    assert await home.membership_of(RITA) == "leave"
    assert await membership_on(away, home.room_id, RITA) == "leave"


@pytest_twisted.ensureDeferred
async def test_a_restricted_join_is_vouched_for_through_a_room_joined_over_federation(
    servers: TwoServers,
) -> None:
    """The allowed room is one ``example.org`` joined through ``remote.test``: Rita's
    membership there comes from the state the join brought."""
    home, away = servers.home, servers.away
    space = await away.create_room_as(RITA, "public")
    await home.membership.update_membership(
        requester(ALICE), space, ALICE, "join", servers=[REMOTE]
    )
    restricted = await home.create_room(
        "restricted", allow=[{"type": "m.room_membership", "room_id": space}]
    )
    await rita(away, restricted, "join", [LOCAL])
    assert await home.membership_of(RITA, restricted) == "join"


@pytest_twisted.ensureDeferred
async def test_a_restricted_join_keeps_the_residents_countersignature(servers: TwoServers) -> None:
    home, away = servers.home, servers.away
    await rita(away, home.room_id, "join", [LOCAL])
    restricted = await home.create_room(
        "restricted", allow=[{"type": "m.room_membership", "room_id": home.room_id}]
    )
    sent = await rita(away, restricted, "join", [LOCAL])
    assert sent.event.content["join_authorised_via_users_server"] == ALICE
    assert set(sent.event.pdu["signatures"]) == {LOCAL, REMOTE}
    stored = (await away.events.get_events([sent.event.event_id]))[sent.event.event_id]
    assert set(stored.pdu["signatures"]) == {LOCAL, REMOTE}
    assert await home.membership_of(RITA, restricted) == "join"


@pytest_twisted.ensureDeferred
async def test_an_invite_from_a_server_that_is_gone_is_rejected_here_alone(
    servers: TwoServers,
) -> None:
    home, away = servers.home, servers.away
    sent = await home.membership.update_membership(requester(ALICE), home.room_id, RITA, "invite")
    servers.away_client.unreachable = True
    left = await rita(away, home.room_id, "leave", [])
    assert await membership_on(away, home.room_id, RITA) == "leave"
    assert left.event.prev_event_ids == [sent.event.event_id]
    assert await home.membership_of(RITA) == "invite"  # it never heard of it


@pytest_twisted.ensureDeferred
async def test_an_invite_to_a_server_without_v2_invites_falls_back_to_v1(
    servers: TwoServers,
) -> None:
    """A server that answers ``/v2/invite`` with M_UNRECOGNIZED gets the v1 form,
    for a room of version 1 (all such a server can hold)."""
    home, away = servers.home, servers.away
    room_id = await home.create_room_as(ALICE, "invite", version="1")
    servers.home_client.v1_invites_only = True
    sent = await home.membership.update_membership(requester(ALICE), room_id, RITA, "invite")
    assert set(sent.event.pdu["signatures"]) == {LOCAL, REMOTE}
    assert await membership_on(away, room_id, RITA) == "invite"
    v1_path = f"/_matrix/federation/v1/invite/{_q(room_id)}/{_q(sent.event.event_id)}"
    assert ("PUT", v1_path) in servers.home_client.requests


@pytest_twisted.ensureDeferred
async def test_no_v1_invite_fallback_for_rooms_a_v1_server_cannot_hold(
    servers: TwoServers,
) -> None:
    home = servers.home
    room_id = await home.create_room_as(ALICE, "invite", version="10")
    servers.home_client.v1_invites_only = True
    with pytest.raises(MatrixError) as refused:
        await home.membership.update_membership(requester(ALICE), room_id, RITA, "invite")
    assert refused.value.status == 403
    assert not any("/v1/invite/" in path for _, path in servers.home_client.requests)


@pytest.mark.parametrize("version", ["1", "3", "12"])
@pytest_twisted.ensureDeferred
async def test_invite_join_and_leave_in_other_room_versions(
    servers: TwoServers, version: str
) -> None:
    """v1: event IDs chosen by the sender and hashed references; v3: plain references;
    v12: room IDs with no server (the inviter's server is the only candidate)."""
    home, away = servers.home, servers.away
    room_id = await home.create_room_as(ALICE, "invite", version=version)
    await home.membership.update_membership(requester(ALICE), room_id, RITA, "invite")
    await rita(away, room_id, "join", [])
    assert await home.membership_of(RITA, room_id) == "join"
    assert await membership_on(away, room_id, RITA) == "join"
    await rita(away, room_id, "leave", [])
    # The leave is a local event of remote.test now: it reaches example.org through
    # remote.test's sender, which this test does not run.
    assert await membership_on(away, room_id, RITA) == "leave"


@pytest.mark.parametrize("version", ["1", "12"])
@pytest_twisted.ensureDeferred
async def test_an_invite_is_rejected_here_alone_in_other_room_versions(
    servers: TwoServers, version: str
) -> None:
    home, away = servers.home, servers.away
    room_id = await home.create_room_as(ALICE, "invite", version=version)
    await home.membership.update_membership(requester(ALICE), room_id, RITA, "invite")
    servers.away_client.unreachable = True
    await rita(away, room_id, "leave", [])
    assert await membership_on(away, room_id, RITA) == "leave"
