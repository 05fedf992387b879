"""The resident side of the membership handshakes, through the handler with the real
event path, stores and membership rules on both engines (the HTTP endpoints, with
X-Matrix signatures, are exercised between two real servers in test_two_servers.py).

spec: server-server-api.md#joining-rooms, #restricted-rooms, #knocking-rooms,
#inviting-to-a-room, #leaving-rooms-rejecting-invites
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from signedjson.key import get_verify_key
from signedjson.sign import verify_signed_json

from federation.membership.pdus import (
    INCOMPATIBLE_ROOM_VERSION,
    UNABLE_TO_AUTHORISE_JOIN,
)
from homeserver.errors import MatrixError
from homeserver.events.hashing import compute_event_id
from homeserver.events.redaction import prune_event_dict
from homeserver.events.room_versions import get_room_version
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore
from homeserver.storage.federation_outbound import FederationOutboundStore
from homeserver.storage.state import StateStore
from tests.federation.inbound.signing import TestServer
from tests.federation.membership.conftest import (
    ALICE,
    BOB,
    LOCAL,
    REMOTE,
    RITA,
    ROOM_VERSION,
    Resident,
    build_serving,
)

V10 = get_room_version(ROOM_VERSION)


async def refused(awaitable: Any) -> MatrixError:
    with pytest.raises(MatrixError) as caught:
        await awaitable
    return caught.value


@pytest_twisted.ensureDeferred
async def test_make_join_answers_an_unsigned_template_on_the_room_tip(resident: Resident) -> None:
    made = await resident.serving.make(REMOTE, "join", resident.room_id, RITA, ["9", "10"])
    template = made["event"]
    assert made["room_version"] == ROOM_VERSION
    assert "signatures" not in template and "hashes" not in template
    assert template["sender"] == template["state_key"] == RITA
    assert template["content"] == {"membership": "join"}
    room = await resident.state.room(resident.room_id)
    assert room is not None
    [tip] = await resident.pipeline.path.latest_events(room, 20)
    assert template["prev_events"] == [tip.event_id]
    assert template["depth"] == tip.depth + 1
    state = await resident.current_state()
    assert set(template["auth_events"]) == {
        state[("m.room.create", "")].event_id,
        state[("m.room.power_levels", "")].event_id,
        state[("m.room.join_rules", "")].event_id,
    }


@pytest_twisted.ensureDeferred
async def test_make_join_for_a_user_of_another_server_is_forbidden(resident: Resident) -> None:
    error = await refused(resident.serving.make(REMOTE, "join", resident.room_id, BOB, ["10"]))
    assert (error.status, error.errcode) == (403, "M_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_make_join_of_an_unknown_room_is_not_found(resident: Resident) -> None:
    error = await refused(resident.serving.make(REMOTE, "join", "!nope:example.org", RITA, ["10"]))
    assert (error.status, error.errcode) == (404, "M_NOT_FOUND")


@pytest_twisted.ensureDeferred
async def test_make_join_without_the_room_version_is_incompatible(resident: Resident) -> None:
    error = await refused(resident.serving.make(REMOTE, "join", resident.room_id, RITA, None))
    assert (error.status, error.errcode) == (400, INCOMPATIBLE_ROOM_VERSION)
    assert error.to_json()["room_version"] == ROOM_VERSION


@pytest_twisted.ensureDeferred
async def test_a_banned_user_cannot_make_a_join(resident: Resident) -> None:
    await resident.send("m.room.member", {"membership": "ban"}, RITA)
    error = await refused(resident.serving.make(REMOTE, "join", resident.room_id, RITA, ["10"]))
    assert (error.status, error.errcode) == (403, "M_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_a_server_denied_by_the_acl_cannot_make_a_join(resident: Resident) -> None:
    await resident.send("m.room.server_acl", {"allow": ["*"], "deny": [REMOTE]}, "")
    error = await refused(resident.serving.make(REMOTE, "join", resident.room_id, RITA, ["10"]))
    assert (error.status, error.errcode) == (403, "M_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_send_join_stores_the_join_and_answers_the_state_before_it(
    resident: Resident,
) -> None:
    answer = await resident.join_remote(resident.room_id)
    assert await resident.membership_of(RITA) == "join"
    state_keys = {(pdu["type"], pdu["state_key"]) for pdu in answer["state"]}
    assert state_keys == {
        ("m.room.create", ""),
        ("m.room.member", ALICE),
        ("m.room.power_levels", ""),
        ("m.room.join_rules", ""),
    }
    chain_ids = {_event_id(pdu) for pdu in answer["auth_chain"]}
    state = await resident.current_state()
    assert state[("m.room.create", "")].event_id in chain_ids
    assert state[("m.room.member", ALICE)].event_id in chain_ids
    assert answer["members_omitted"] is False
    assert "event" not in answer  # not a restricted join: nothing countersigned
    for pdu in [*answer["state"], *answer["auth_chain"]]:
        assert "unsigned" not in pdu


class _StoredForwarding:
    """What ``FederationSender.send_on_behalf_of`` does (a row the sender's consumer
    and catch-up read), noting whether the event was already stored then."""

    def __init__(self, db: Database) -> None:
        self.store = FederationOutboundStore(db)
        self.events = EventStore(db, StateStore(db))
        self.stored_already: list[bool] = []

    async def send_on_behalf_of(self, event_id: str, origin: str) -> None:
        self.stored_already.append(event_id in await self.events.get_events([event_id]))
        await self.store.add_forwarded(event_id, origin, 0)


@pytest_twisted.ensureDeferred
async def test_a_join_through_us_is_kept_for_the_other_servers_before_it_is_stored(
    db: Database,
) -> None:
    forwarding = _StoredForwarding(db)
    resident = build_serving(db, TestServer(LOCAL), TestServer(REMOTE), forwarder=forwarding)
    resident.room_id = await resident.create_room("public")
    await resident.join_remote(resident.room_id)
    join = (await resident.current_state())[("m.room.member", RITA)]
    assert await forwarding.store.forwarded_origins([join.event_id]) == {join.event_id: REMOTE}
    assert forwarding.stored_already == [False]


@pytest_twisted.ensureDeferred
async def test_send_join_of_a_leave_event_is_an_invalid_param(resident: Resident) -> None:
    made = await resident.serving.make(REMOTE, "join", resident.room_id, RITA, ["10"])
    pdu, event_id = resident.complete(made["event"], content={"membership": "leave"})
    error = await refused(resident.serving.send_join(REMOTE, resident.room_id, event_id, pdu))
    assert (error.status, error.errcode) == (400, "M_INVALID_PARAM")
    assert await resident.membership_of(RITA) is None


@pytest_twisted.ensureDeferred
async def test_send_join_from_a_server_that_is_not_the_senders_is_refused(
    resident: Resident,
) -> None:
    made = await resident.serving.make(REMOTE, "join", resident.room_id, RITA, ["10"])
    pdu, event_id = resident.complete(made["event"])
    error = await refused(
        resident.serving.send_join("elsewhere.test", resident.room_id, event_id, pdu)
    )
    assert (error.status, error.errcode) == (400, "M_INVALID_PARAM")


@pytest_twisted.ensureDeferred
async def test_send_join_under_another_event_id_is_refused(resident: Resident) -> None:
    made = await resident.serving.make(REMOTE, "join", resident.room_id, RITA, ["10"])
    pdu, _event_id = resident.complete(made["event"])
    error = await refused(resident.serving.send_join(REMOTE, resident.room_id, "$other", pdu))
    assert (error.status, error.errcode) == (400, "M_INVALID_PARAM")


@pytest_twisted.ensureDeferred
async def test_a_forged_join_is_refused(resident: Resident) -> None:
    made = await resident.serving.make(REMOTE, "join", resident.room_id, RITA, ["10"])
    forger = TestServer(REMOTE)  # same name, another key
    resident.remote, real = forger, resident.remote
    pdu, event_id = resident.complete(made["event"])
    resident.remote = real
    error = await refused(resident.serving.send_join(REMOTE, resident.room_id, event_id, pdu))
    assert (error.status, error.errcode) == (400, "M_INVALID_PARAM")
    assert await resident.membership_of(RITA) is None


@pytest_twisted.ensureDeferred
async def test_a_join_the_auth_rules_refuse_is_forbidden(resident: Resident) -> None:
    made = await resident.serving.make(REMOTE, "join", resident.room_id, RITA, ["10"])
    await resident.send("m.room.join_rules", {"join_rule": "invite"}, "")
    # The template predates the change; the rules see the invite-only rule it cites.
    pdu, event_id = resident.complete(made["event"])
    error = await refused(resident.serving.send_join(REMOTE, resident.room_id, event_id, pdu))
    assert (error.status, error.errcode) == (403, "M_FORBIDDEN")
    assert await resident.membership_of(RITA) is None


@pytest_twisted.ensureDeferred
async def test_a_restricted_join_is_vouched_for_and_countersigned(resident: Resident) -> None:
    space = await resident.create_room("public")
    await resident.join_remote(space)
    restricted = await resident.create_room(
        "restricted", allow=[{"type": "m.room_membership", "room_id": space}]
    )
    made = await resident.serving.make(REMOTE, "join", restricted, RITA, ["10"])
    assert made["event"]["content"]["join_authorised_via_users_server"] == ALICE
    pdu, event_id = resident.complete(made["event"])
    answer = await resident.serving.send_join(REMOTE, restricted, event_id, pdu)
    event = answer["event"]
    assert _event_id(event) == event_id
    verify_signed_json(prune_event_dict(event, V10), LOCAL, get_verify_key(resident.local.key))
    assert await resident.membership_of(RITA, restricted) == "join"


@pytest_twisted.ensureDeferred
async def test_a_restricted_join_of_someone_in_no_allowed_room_is_forbidden(
    resident: Resident,
) -> None:
    space = await resident.create_room("public")
    restricted = await resident.create_room(
        "restricted", allow=[{"type": "m.room_membership", "room_id": space}]
    )
    error = await refused(resident.serving.make(REMOTE, "join", restricted, RITA, ["10"]))
    assert (error.status, error.errcode) == (403, "M_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_a_restricted_join_through_rooms_we_do_not_know_cannot_be_authorised(
    resident: Resident,
) -> None:
    restricted = await resident.create_room(
        "restricted", allow=[{"type": "m.room_membership", "room_id": "!elsewhere:remote.test"}]
    )
    error = await refused(resident.serving.make(REMOTE, "join", restricted, RITA, ["10"]))
    assert (error.status, error.errcode) == (400, UNABLE_TO_AUTHORISE_JOIN)


@pytest_twisted.ensureDeferred
async def test_a_join_naming_an_authoriser_without_meeting_the_conditions_is_not_signed(
    resident: Resident,
) -> None:
    space = await resident.create_room("public")
    restricted = await resident.create_room(
        "restricted", allow=[{"type": "m.room_membership", "room_id": space}]
    )
    await resident.join_remote(space)
    made = await resident.serving.make(REMOTE, "join", restricted, RITA, ["10"])
    # Rita leaves the room that granted access before sending the join.
    await resident.leave_remote(space)
    pdu, event_id = resident.complete(made["event"])
    error = await refused(resident.serving.send_join(REMOTE, restricted, event_id, pdu))
    assert (error.status, error.errcode) == (403, "M_FORBIDDEN")
    assert await resident.membership_of(RITA, restricted) is None


@pytest_twisted.ensureDeferred
async def test_a_remote_user_leaves_through_make_and_send_leave(resident: Resident) -> None:
    await resident.join_remote(resident.room_id)
    made = await resident.serving.make(REMOTE, "leave", resident.room_id, RITA, None)
    assert made["event"]["content"] == {"membership": "leave"}
    pdu, event_id = resident.complete(made["event"])
    await resident.serving.send_leave(REMOTE, resident.room_id, event_id, pdu)
    assert await resident.membership_of(RITA) == "leave"


@pytest_twisted.ensureDeferred
async def test_a_remote_user_rejects_an_invite_through_send_leave(resident: Resident) -> None:
    await resident.send("m.room.member", {"membership": "invite"}, RITA)
    await resident.leave_remote(resident.room_id)
    assert await resident.membership_of(RITA) == "leave"


@pytest_twisted.ensureDeferred
async def test_a_knock_is_stored_and_answered_with_the_rooms_stripped_state(
    resident: Resident,
) -> None:
    room_id = await resident.create_room("knock")
    await resident.send_in(room_id, "m.room.name", {"name": "Knock knock"}, "")
    made = await resident.serving.make(REMOTE, "knock", room_id, RITA, ["10"])
    pdu, event_id = resident.complete(made["event"])
    answer = await resident.serving.send_knock(REMOTE, room_id, event_id, pdu)
    kinds = {entry["type"] for entry in answer["knock_room_state"]}
    assert {"m.room.create", "m.room.join_rules", "m.room.name"} <= kinds
    assert all("signatures" in entry for entry in answer["knock_room_state"])
    assert await resident.membership_of(RITA, room_id) == "knock"


@pytest_twisted.ensureDeferred
async def test_a_knock_on_a_public_room_is_forbidden(resident: Resident) -> None:
    error = await refused(resident.serving.make(REMOTE, "knock", resident.room_id, RITA, ["10"]))
    assert (error.status, error.errcode) == (403, "M_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_an_invite_of_our_user_in_a_room_we_are_in_is_countersigned_and_stored(
    resident: Resident,
) -> None:
    await resident.join_remote(resident.room_id)
    pdu, event_id = await resident.remote_event(
        resident.room_id, "m.room.member", {"membership": "invite"}, state_key=BOB
    )
    answer = await resident.serving.invite(
        REMOTE, resident.room_id, event_id, {"room_version": ROOM_VERSION, "event": pdu}
    )
    signed = answer["event"]
    verify_signed_json(prune_event_dict(signed, V10), LOCAL, get_verify_key(resident.local.key))
    verify_signed_json(prune_event_dict(signed, V10), REMOTE, get_verify_key(resident.remote.key))
    assert _event_id(signed) == event_id
    assert await resident.membership_of(BOB) == "invite"


@pytest_twisted.ensureDeferred
async def test_an_invite_of_a_user_of_another_server_is_refused(resident: Resident) -> None:
    await resident.join_remote(resident.room_id)
    pdu, event_id = await resident.remote_event(
        resident.room_id, "m.room.member", {"membership": "invite"}, state_key="@x:third.test"
    )
    body = {"room_version": ROOM_VERSION, "event": pdu}
    error = await refused(resident.serving.invite(REMOTE, resident.room_id, event_id, body))
    assert (error.status, error.errcode) == (400, "M_INVALID_PARAM")


@pytest_twisted.ensureDeferred
async def test_an_invite_in_an_unknown_room_version_is_incompatible(resident: Resident) -> None:
    body = {"room_version": "999", "event": {}}
    error = await refused(resident.serving.invite(REMOTE, "!r:remote.test", "$e", body))
    assert (error.status, error.errcode) == (400, INCOMPATIBLE_ROOM_VERSION)
    assert error.to_json()["room_version"] == "999"


@pytest_twisted.ensureDeferred
async def test_an_invite_claiming_another_version_than_the_rooms_is_incompatible(
    resident: Resident,
) -> None:
    await resident.join_remote(resident.room_id)
    pdu, event_id = await resident.remote_event(
        resident.room_id, "m.room.member", {"membership": "invite"}, state_key=BOB
    )
    body = {"room_version": "9", "event": pdu}
    error = await refused(resident.serving.invite(REMOTE, resident.room_id, event_id, body))
    assert (error.status, error.errcode) == (400, INCOMPATIBLE_ROOM_VERSION)
    assert error.to_json()["room_version"] == ROOM_VERSION
    assert await resident.membership_of(BOB) is None


@pytest_twisted.ensureDeferred
async def test_an_invite_sent_by_a_user_of_another_server_is_refused(resident: Resident) -> None:
    await resident.join_remote(resident.room_id)
    pdu, event_id = await resident.remote_event(
        resident.room_id, "m.room.member", {"membership": "invite"}, state_key=BOB
    )
    body = {"room_version": ROOM_VERSION, "event": pdu}
    error = await refused(resident.serving.invite("third.test", resident.room_id, event_id, body))
    assert (error.status, error.errcode) == (400, "M_INVALID_PARAM")
    assert await resident.membership_of(BOB) is None


def _event_id(pdu: dict[str, Any]) -> str:
    return compute_event_id(pdu, V10)
