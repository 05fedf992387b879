"""The resident's answer to a partial-state join (``send_join`` with ``omit_members``)
and to joiners while our own join of a room is still partial: through the handler
with the real event path and stores on both engines, then over HTTP between two of
our servers (the query parameter, X-Matrix signed).

spec: data/api/server-server/joins-v2.yaml (``omit_members``, ``members_omitted``,
``servers_in_room``, ``auth_chain``); data/api/client-server/sync.yaml (``m.heroes``)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import attrs
import pytest
import pytest_twisted

from federation.acl import ServerAcl
from federation.inbound.pdu_checks import PduChecker
from federation.membership.serving import MembershipServing, never_partial
from homeserver.errors import MatrixError
from homeserver.events.hashing import compute_event_id
from homeserver.events.room_versions import get_room_version
from homeserver.events.signing import sign_event_and_compute_id
from homeserver.rooms.builder import EventDraft
from homeserver.storage.database import Database
from homeserver.storage.event_graph import EventGraphStore
from homeserver.storage.state import StateStore
from homeserver.storage.timeline import TimelineStore
from tests.federation.inbound.signing import TestKeyring, TestServer
from tests.federation.interop.clients import ServerPair, create_room, new_user
from tests.federation.membership.conftest import (
    ALICE,
    LOCAL,
    REMOTE,
    RITA,
    ROOM_VERSION,
    Resident,
    build_serving,
)
from tests.support.federation import (
    FederatedServer,
    TestCA,
    federation_request,
)

V10 = get_room_version(ROOM_VERSION)
#: Local members who join after Alice, in this order (so by stream order too).
MEMBERS = [f"@m{n}:{LOCAL}" for n in range(1, 7)]
#: /sync's heroes of the room for Rita: the first five joined or invited members.
HEROES = {ALICE, *MEMBERS[:4]}
RON = f"@ron:{REMOTE}"

PartialState = Callable[[str], Awaitable[bool]]


def serving_of(resident: Resident, db: Database, partial_state: PartialState) -> MembershipServing:
    """A serving side over ``resident``'s stores as the server assembles it: with the
    timeline's room summaries (heroes) and ``partial_state``."""
    state_store = StateStore(db)
    keyring = TestKeyring(resident.local, resident.remote)
    return MembershipServing(
        server_name=LOCAL,
        signing_key=resident.local.key,
        pipeline=resident.pipeline,
        state=resident.state,
        events=resident.events,
        graph=EventGraphStore(db, state_store),
        membership=resident.membership,
        pdus=PduChecker(keyring),
        acl=ServerAcl(events=resident.events, state=state_store),
        invites=resident.pipeline.path,
        summaries=TimelineStore(db, resident.events),
        partial_state=partial_state,
    )


@pytest.fixture(params=["summaries", "no-summaries"])
def with_summaries(request: pytest.FixtureRequest) -> bool:
    """Heroes by the timeline's /sync rule, or (no store given) by depth: the same
    members in a room whose members joined one after another."""
    return bool(request.param == "summaries")


@pytest_twisted.async_yield_fixture
async def crowded(db: Database, with_summaries: bool) -> AsyncIterator[Resident]:
    """Alice's public room with six more local members, unnamed."""
    resident = build_serving(db, TestServer(LOCAL), TestServer(REMOTE))
    if with_summaries:
        resident.serving = serving_of(resident, db, never_partial)
    resident.room_id = await resident.create_room("public")
    for member in MEMBERS:
        await resident.pipeline.send(
            EventDraft(
                resident.room_id, "m.room.member", member, {"membership": "join"}, state_key=member
            )
        )
    yield resident


async def partial_join(
    resident: Resident, user_id: str = RITA, *, omit_members: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """make_join then send_join (``omit_members``) of remote.test's ``user_id``: the
    join event sent and the answer."""
    made = await resident.serving.make(REMOTE, "join", resident.room_id, user_id, [ROOM_VERSION])
    pdu, event_id = resident.complete(made["event"])
    answer = await resident.serving.send_join(
        REMOTE, resident.room_id, event_id, pdu, omit_members=omit_members
    )
    return pdu, answer


def members_in(pdus: list[dict[str, Any]]) -> set[str]:
    return {pdu["state_key"] for pdu in pdus if pdu["type"] == "m.room.member"}


def ids_of(pdus: list[dict[str, Any]]) -> set[str]:
    return {compute_event_id(pdu, V10) for pdu in pdus}


@pytest_twisted.ensureDeferred
async def test_omitting_members_keeps_only_the_heroes_of_an_unnamed_room(
    crowded: Resident,
) -> None:
    _join, answer = await partial_join(crowded)
    assert answer["members_omitted"] is True
    assert members_in(answer["state"]) == HEROES
    kinds = {(pdu["type"], pdu["state_key"]) for pdu in answer["state"]}
    assert {("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.join_rules", "")} <= kinds
    assert answer["servers_in_room"] == [LOCAL]


@pytest_twisted.ensureDeferred
async def test_omitting_members_of_a_named_room_leaves_out_every_member(
    crowded: Resident,
) -> None:
    await crowded.send("m.room.name", {"name": "Crowded"}, "")
    _join, answer = await partial_join(crowded)
    assert members_in(answer["state"]) == set()
    assert ("m.room.name", "") in {(pdu["type"], pdu["state_key"]) for pdu in answer["state"]}
    assert answer["members_omitted"] is True


@pytest_twisted.ensureDeferred
async def test_a_room_with_only_a_canonical_alias_needs_no_heroes_either(
    crowded: Resident,
) -> None:
    alias = f"#crowded:{LOCAL}"
    await crowded.send("m.room.canonical_alias", {"alias": alias}, "")
    _join, answer = await partial_join(crowded)
    assert members_in(answer["state"]) == set()


@pytest_twisted.ensureDeferred
async def test_an_emptied_name_leaves_the_room_unnamed_so_the_heroes_are_sent(
    crowded: Resident,
) -> None:
    await crowded.send("m.room.name", {"name": "Crowded"}, "")
    await crowded.send("m.room.name", {"name": ""}, "")
    _join, answer = await partial_join(crowded)
    assert members_in(answer["state"]) == HEROES


@pytest_twisted.ensureDeferred
async def test_an_invited_joiner_gets_its_own_invite_with_the_members_omitted(
    crowded: Resident,
) -> None:
    await crowded.send("m.room.name", {"name": "Crowded"}, "")
    invite = await crowded.send("m.room.member", {"membership": "invite"}, RITA)
    _join, answer = await partial_join(crowded)
    assert members_in(answer["state"]) == {RITA}
    assert invite.event_id in ids_of(answer["state"])


@pytest_twisted.ensureDeferred
async def test_servers_in_room_are_those_with_joined_members_before_the_join(
    crowded: Resident,
) -> None:
    await partial_join(crowded, RON)  # remote.test now has a joined member
    await crowded.send("m.room.member", {"membership": "invite"}, "@ivan:invited.test")
    _join, answer = await partial_join(crowded)
    assert answer["servers_in_room"] == sorted([LOCAL, REMOTE])


@pytest_twisted.ensureDeferred
async def test_the_auth_chain_leaves_out_the_state_yet_covers_the_join_and_the_state(
    crowded: Resident,
) -> None:
    await crowded.send("m.room.name", {"name": "Crowded"}, "")
    join, answer = await partial_join(crowded)
    state_ids, chain_ids = ids_of(answer["state"]), ids_of(answer["auth_chain"])
    assert not state_ids & chain_ids
    # Alice's join authorises the power levels (and her name event) but is no
    # longer in the state sent: the auth chain carries it.
    current = await crowded.current_state()
    assert current[("m.room.member", ALICE)].event_id in chain_ids
    # Closed: every event cited as an auth event by the join, a state event or an
    # event of the chain itself is in the state or the chain.
    known = state_ids | chain_ids
    for pdu in [join, *answer["state"], *answer["auth_chain"]]:
        assert set(pdu["auth_events"]) <= known, pdu["type"]
    # Nothing beyond the auth chains: the omitted members' joins are not cited.
    assert current[("m.room.member", MEMBERS[-1])].event_id not in chain_ids


@pytest_twisted.ensureDeferred
async def test_without_omit_members_every_member_is_sent(crowded: Resident) -> None:
    invited = f"@invited:{LOCAL}"
    await crowded.send("m.room.member", {"membership": "invite"}, invited)
    join, answer = await partial_join(crowded, omit_members=False)
    assert answer["members_omitted"] is False
    assert members_in(answer["state"]) == {ALICE, *MEMBERS, invited}
    assert answer["servers_in_room"] == [LOCAL]
    # The full form's auth chain is the join's and the state's, whole.
    assert ALICE in members_in(answer["auth_chain"])
    assert set(join["auth_events"]) <= ids_of(answer["state"]) | ids_of(answer["auth_chain"])


# --- while our own join is partial ----------------------------------------------------


@attrs.define
class PartialRooms:
    """The ``partial_state`` function a test switches rooms in and out of."""

    rooms: set[str] = attrs.Factory(set)

    async def is_partial(self, room_id: str) -> bool:
        return room_id in self.rooms


@pytest_twisted.async_yield_fixture
async def half_joined(db: Database) -> AsyncIterator[tuple[Resident, PartialRooms]]:
    """Alice's public and knockable rooms, served with a switchable partial state."""
    partial = PartialRooms()
    resident = build_serving(db, TestServer(LOCAL), TestServer(REMOTE))
    resident.serving = serving_of(resident, db, partial.is_partial)
    resident.room_id = await resident.create_room("public")
    yield resident, partial


async def refused(awaitable: Awaitable[Any]) -> MatrixError:
    with pytest.raises(MatrixError) as caught:
        await awaitable
    return caught.value


def not_fully_joined(error: MatrixError) -> bool:
    return (error.status, error.errcode) == (404, "M_NOT_FOUND") and "not fully joined" in str(
        error.to_json()["error"]
    )


@pytest_twisted.ensureDeferred
async def test_make_join_in_a_partially_joined_room_sends_the_joiner_elsewhere(
    half_joined: tuple[Resident, PartialRooms],
) -> None:
    resident, partial = half_joined
    partial.rooms.add(resident.room_id)
    error = await refused(resident.serving.make(REMOTE, "join", resident.room_id, RITA, ["10"]))
    assert not_fully_joined(error)


@pytest_twisted.ensureDeferred
async def test_send_join_in_a_room_that_became_partial_is_not_found_and_not_stored(
    half_joined: tuple[Resident, PartialRooms],
) -> None:
    resident, partial = half_joined
    made = await resident.serving.make(REMOTE, "join", resident.room_id, RITA, ["10"])
    pdu, event_id = resident.complete(made["event"])
    partial.rooms.add(resident.room_id)
    error = await refused(resident.serving.send_join(REMOTE, resident.room_id, event_id, pdu))
    assert not_fully_joined(error)
    assert await resident.membership_of(RITA) is None


@pytest_twisted.ensureDeferred
async def test_knocks_in_a_partially_joined_room_are_sent_elsewhere(
    half_joined: tuple[Resident, PartialRooms],
) -> None:
    resident, partial = half_joined
    room_id = await resident.create_room("knock")
    made = await resident.serving.make(REMOTE, "knock", room_id, RITA, ["10"])
    pdu, event_id = resident.complete(made["event"])
    partial.rooms.add(room_id)
    assert not_fully_joined(
        await refused(resident.serving.make(REMOTE, "knock", room_id, RITA, ["10"]))
    )
    assert not_fully_joined(
        await refused(resident.serving.send_knock(REMOTE, room_id, event_id, pdu))
    )
    assert await resident.membership_of(RITA, room_id) is None


@pytest_twisted.ensureDeferred
async def test_a_member_may_still_leave_a_partially_joined_room(
    half_joined: tuple[Resident, PartialRooms],
) -> None:
    resident, partial = half_joined
    await resident.join_remote(resident.room_id)
    partial.rooms.add(resident.room_id)
    await resident.leave_remote(resident.room_id)
    assert await resident.membership_of(RITA) == "leave"


@pytest_twisted.ensureDeferred
async def test_other_rooms_are_served_while_one_is_partial(
    half_joined: tuple[Resident, PartialRooms],
) -> None:
    resident, partial = half_joined
    partial.rooms.add("!elsewhere:example.org")
    await resident.join_remote(resident.room_id)
    assert await resident.membership_of(RITA) == "join"


# --- over HTTP --------------------------------------------------------------------------


@attrs.frozen
class Pair:
    ca: TestCA
    #: Where the rooms are (the resident).
    home: FederatedServer
    #: Whose users join through ``home``.
    away: FederatedServer


@pytest.fixture
def pair(servers: ServerPair) -> Pair:
    """The shared pair of our servers (``tests/federation/conftest.py``), by role."""
    return Pair(servers.ca, servers.ours, servers.other)


def signed_join(pair: Pair, room_id: str, localpart: str) -> tuple[dict[str, Any], str]:
    """make_join over HTTP, the template completed and signed as the away server."""
    user_id = pair.away.user_id(localpart)
    response = federation_request(
        pair.ca,
        pair.home,
        "GET",
        f"/_matrix/federation/v1/make_join/{quote(room_id, safe='')}/{quote(user_id, safe='')}"
        "?ver=10",
        origin=pair.away.server_name,
        signing_key=pair.away.signing_key(),
    )
    assert response.status == 200, response.body
    pdu = {k: v for k, v in response.json()["event"].items() if k != "origin"}
    pdu["origin_server_ts"] = int(time.time() * 1000)
    event_id = sign_event_and_compute_id(pdu, pair.away.server_name, pair.away.signing_key(), V10)
    return pdu, event_id


def send_join(
    pair: Pair, room_id: str, pdu: dict[str, Any], event_id: str, query: str, *, version: str = "v2"
) -> tuple[int, Any]:
    path = (
        f"/_matrix/federation/{version}/send_join/{quote(room_id, safe='')}/"
        f"{quote(event_id, safe='')}{query}"
    )
    response = federation_request(
        pair.ca,
        pair.home,
        "PUT",
        path,
        body=pdu,
        origin=pair.away.server_name,
        signing_key=pair.away.signing_key(),
    )
    return response.status, response.json()


@pytest.mark.slow
@pytest.mark.xdist_group("federation-omit-members")
def test_send_join_over_http_with_omit_members_omits_them(pair: Pair) -> None:
    alice = new_user(pair.home, "alice")
    room_id = create_room(alice, preset="public_chat", room_version="10", name="Named")
    pdu, event_id = signed_join(pair, room_id, "pat")
    status, body = send_join(pair, room_id, pdu, event_id, "?omit_members=true")
    assert status == 200, body
    assert body["members_omitted"] is True
    assert body["servers_in_room"] == [pair.home.server_name]
    assert members_in(body["state"]) == set()
    assert alice.user_id in members_in(body["auth_chain"])


@pytest.mark.slow
@pytest.mark.xdist_group("federation-omit-members")
def test_send_join_over_http_with_omit_members_false_sends_every_member(pair: Pair) -> None:
    alice = new_user(pair.home, "alice")
    room_id = create_room(alice, preset="public_chat", room_version="10", name="Named")
    pdu, event_id = signed_join(pair, room_id, "quin")
    status, body = send_join(pair, room_id, pdu, event_id, "?omit_members=false")
    assert status == 200, body
    assert body["members_omitted"] is False
    assert members_in(body["state"]) == {alice.user_id}
    assert body["servers_in_room"] == [pair.home.server_name]


@pytest.mark.slow
@pytest.mark.xdist_group("federation-omit-members")
@pytest.mark.parametrize("value", ["yes", "1", "True", ""])
def test_an_omit_members_that_is_not_a_boolean_is_an_invalid_param(pair: Pair, value: str) -> None:
    alice = new_user(pair.home, "alice")
    room_id = create_room(alice, preset="public_chat", room_version="10")
    pdu, event_id = signed_join(pair, room_id, "rex")
    status, body = send_join(pair, room_id, pdu, event_id, f"?omit_members={value}")
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    # Refused before the join was looked at: it was never stored.
    response = alice.server.process.request(
        "GET",
        "/_matrix/client/v3/rooms/"
        + quote(room_id, safe="")
        + "/state/m.room.member/"
        + quote(pair.away.user_id("rex"), safe=""),
        headers={"Authorization": f"Bearer {alice.access_token}"},
    )
    assert response.status == 404, response.body


@pytest.mark.slow
@pytest.mark.xdist_group("federation-omit-members")
def test_the_v1_send_join_has_no_omit_members_and_sends_every_member(pair: Pair) -> None:
    """spec: data/api/server-server/joins-v1.yaml (no ``omit_members``)"""
    alice = new_user(pair.home, "alice")
    room_id = create_room(alice, preset="public_chat", room_version="10", name="Named")
    pdu, event_id = signed_join(pair, room_id, "sol")
    status, body = send_join(pair, room_id, pdu, event_id, "?omit_members=true", version="v1")
    assert status == 200, body
    status_in_body, answer = body
    assert status_in_body == 200
    assert answer["members_omitted"] is False
    assert members_in(answer["state"]) == {alice.user_id}


@pytest.mark.slow
@pytest.mark.xdist_group("federation-omit-members")
def test_send_join_over_http_of_an_unnamed_room_keeps_the_heroes(pair: Pair) -> None:
    alice = new_user(pair.home, "alice")
    room_id = create_room(alice, preset="public_chat", room_version="10")
    pdu, event_id = signed_join(pair, room_id, "tam")
    status, body = send_join(pair, room_id, pdu, event_id, "?omit_members=true")
    assert status == 200, body
    assert body["members_omitted"] is True
    assert members_in(body["state"]) == {alice.user_id}
    assert alice.user_id not in members_in(body["auth_chain"])
