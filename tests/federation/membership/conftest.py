"""A room on our server (``example.org``) and the serving side of the membership
handshakes over it, built with the real event path, stores and membership rules on
both engines; ``remote.test`` is a server made in the test (its key known to the
checks' key verifier), which asks to join, leave, knock and invite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest_twisted
from twisted.internet import reactor

from federation.acl import ServerAcl
from federation.inbound.pdu_checks import PduChecker
from federation.membership.remote import FederationJsonClient, RemoteMembershipClient
from federation.membership.serving import MembershipForwarder, MembershipServing
from homeserver.clock import Clock
from homeserver.events.event import Event, StateKey
from homeserver.events.room_versions import get_room_version
from homeserver.events.signing import sign_event_and_compute_id
from homeserver.profile.handler import ProfileHandler
from homeserver.ratelimit import RateLimitConfig, RateLimiter
from homeserver.rooms.builder import EventDraft, RoomPosition, build_local_event
from homeserver.rooms.membership import MembershipHandler
from homeserver.rooms.pipeline import EventPipeline
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.database import Database
from homeserver.storage.event_graph import EventGraphStore
from homeserver.storage.events import EventStore
from homeserver.storage.profiles import ProfileStore
from homeserver.storage.state import StateStore
from homeserver.storage.timeline import TimelineStore
from homeserver.storage.users import UserStore
from tests.federation.inbound.signing import TestKeyring, TestServer

LOCAL = "example.org"
ALICE = f"@alice:{LOCAL}"
BOB = f"@bob:{LOCAL}"
REMOTE = "remote.test"
RITA = f"@rita:{REMOTE}"
ROOM_VERSION = "10"


@attrs.define
class Resident:
    """Our server with Alice's public room, and its serving side."""

    db: Database
    local: TestServer
    remote: TestServer
    pipeline: EventPipeline
    events: EventStore
    state: RoomStateReader
    membership: MembershipHandler
    serving: MembershipServing
    room_id: str
    ts: int = 1_700_000_000_000

    async def send(
        self, event_type: str, content: dict[str, Any], state_key: str | None = None
    ) -> Event:
        """An event of Alice's in the room."""
        return await self.send_in(self.room_id, event_type, content, state_key)

    async def send_in(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str | None = None
    ) -> Event:
        """An event of Alice's in ``room_id``."""
        sent = await self.pipeline.send(
            EventDraft(room_id, event_type, ALICE, content, state_key=state_key)
        )
        return sent.event

    async def remote_event(
        self,
        room_id: str,
        event_type: str,
        content: dict[str, Any],
        *,
        state_key: str | None = None,
        sender: str = RITA,
    ) -> tuple[dict[str, Any], str]:
        """A PDU remote.test would send next in ``room_id`` (on our latest event and
        current state), signed by it, and its ID."""
        self.ts += 1
        room = await self.state.room(room_id)
        assert room is not None
        [last] = await self.pipeline.path.latest_events(room, 1)
        state = await self.state.current_state_ids(room)
        event = build_local_event(
            last.room_version,
            EventDraft(room_id, event_type, sender, content, state_key=state_key),
            RoomPosition(
                prev_event_ids=[last.event_id], max_prev_depth=last.depth, state_before=state
            ),
            server_name=REMOTE,
            signing_key=self.remote.key,
            origin_server_ts=self.ts,
        )
        return dict(event.pdu), event.event_id

    async def create_room(self, join_rule: str, *, allow: list[Any] | None = None) -> str:
        """Another room of Alice's (v10), with ``join_rule``."""
        return await self.create_room_as(ALICE, join_rule, allow=allow)

    async def create_room_as(
        self,
        creator: str,
        join_rule: str,
        *,
        allow: list[Any] | None = None,
        version: str = ROOM_VERSION,
    ) -> str:
        """A room (v10 unless ``version``) of ``creator`` (a user of this server),
        with ``join_rule``."""
        [created, *_] = await self.pipeline.create_room(version, creator, {})
        room_id = created.event.room_id
        join_rules: dict[str, Any] = {"join_rule": join_rule}
        if allow is not None:
            join_rules["allow"] = allow
        for event_type, content, state_key in (
            ("m.room.member", {"membership": "join"}, creator),
            # v12 creators have infinite power and may not be listed.
            ("m.room.power_levels", {"users": {} if version == "12" else {creator: 100}}, ""),
            ("m.room.join_rules", join_rules, ""),
        ):
            await self.pipeline.send(
                EventDraft(room_id, event_type, creator, content, state_key=state_key)
            )
        return room_id

    def complete(
        self, template: dict[str, Any], *, content: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], str]:
        """What remote.test does with a template: its content, timestamp, signature."""
        self.ts += 1
        pdu = {
            key: value
            for key, value in template.items()
            if key not in ("origin", "hashes", "signatures")
        }
        if content is not None:
            pdu["content"] = content
        pdu["origin_server_ts"] = self.ts
        event_id = sign_event_and_compute_id(
            pdu, REMOTE, self.remote.key, get_room_version(ROOM_VERSION)
        )
        return pdu, event_id

    async def join_remote(self, room_id: str, user_id: str = RITA) -> dict[str, Any]:
        """make_join then send_join of remote.test's ``user_id``: the send_join answer."""
        made = await self.serving.make(REMOTE, "join", room_id, user_id, [ROOM_VERSION])
        pdu, event_id = self.complete(made["event"])
        return await self.serving.send_join(REMOTE, room_id, event_id, pdu)

    async def leave_remote(self, room_id: str, user_id: str = RITA) -> None:
        """make_leave then send_leave of remote.test's ``user_id``."""
        made = await self.serving.make(REMOTE, "leave", room_id, user_id, None)
        pdu, event_id = self.complete(made["event"])
        await self.serving.send_leave(REMOTE, room_id, event_id, pdu)

    async def current_state(self, room_id: str | None = None) -> dict[StateKey, Event]:
        room = await self.state.room(room_id or self.room_id)
        assert room is not None
        return await self.state.current_state(room)

    async def membership_of(self, user_id: str, room_id: str | None = None) -> str | None:
        member = (await self.current_state(room_id)).get(("m.room.member", user_id))
        return None if member is None else member.membership


def build_serving(
    db: Database,
    local: TestServer,
    remote: TestServer,
    *,
    client: FederationJsonClient | None = None,
    forwarder: MembershipForwarder | None = None,
) -> Resident:
    """One server (``local``) over ``db``, knowing ``remote``'s key; with ``client``,
    its membership handler goes through it for rooms it is not in."""
    state_store = StateStore(db)
    events = EventStore(db, state_store)
    timeline = TimelineStore(db, events)
    clock = Clock(reactor)
    pipeline = EventPipeline(
        server_name=local.name,
        signing_key=local.key,
        clock=clock,
        events=events,
        state=state_store,
    )
    state = RoomStateReader(events, state_store, timeline)
    keyring = TestKeyring(local, remote)
    remote_membership = (
        None
        if client is None
        else RemoteMembershipClient(
            server_name=local.name,
            signing_key=local.key,
            clock=clock,
            client=client,
            pdus=PduChecker(keyring),
            keyring=keyring,
            rooms=pipeline.path,
        )
    )
    unlimited = RateLimitConfig(per_second=1000, burst_count=1000)
    membership = MembershipHandler(
        server_name=local.name,
        pipeline=pipeline,
        state=state,
        timeline=timeline,
        profiles=ProfileHandler(local.name, UserStore(db), ProfileStore(db)),
        joins_limiter=RateLimiter(clock, unlimited),
        invites_per_room=RateLimiter(clock, unlimited),
        invites_per_user=RateLimiter(clock, unlimited),
        invites_per_issuer=RateLimiter(clock, unlimited),
        remote=remote_membership,
    )
    serving = MembershipServing(
        server_name=local.name,
        signing_key=local.key,
        pipeline=pipeline,
        state=state,
        events=events,
        graph=EventGraphStore(db, state_store),
        membership=membership,
        pdus=PduChecker(keyring),
        acl=ServerAcl(events=events, state=state_store),
        invites=pipeline.path,
        forwarder=forwarder,
    )
    return Resident(db, local, remote, pipeline, events, state, membership, serving, "")


@pytest_twisted.async_yield_fixture
async def resident(db: Database) -> AsyncIterator[Resident]:
    built = build_serving(db, TestServer(LOCAL), TestServer(REMOTE))
    built.room_id = await built.create_room("public")
    yield built
