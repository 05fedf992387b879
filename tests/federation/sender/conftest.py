"""The sender tests' harness: rooms made through the real pipeline, the real outbound
client and backoff, and a recording peer (peer.py) behind every remote name.

Timers (backoff waits, retries, the consumer's poll) run on a ``task.Clock`` the
test advances; HTTP and the database run on the real reactor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest_twisted
from signedjson.key import generate_signing_key
from twisted.internet import task

from federation.client.backoff import DestinationBackoff
from federation.client.http import FederationHttpClient
from federation.sender.sender import FederationSender
from homeserver.clock import Clock
from homeserver.reactor import installed_reactor
from homeserver.storage.database import Database
from homeserver.storage.destinations import DestinationStore
from homeserver.storage.federation_outbound import FederationOutboundStore
from homeserver.storage.stream_consumers import StreamConsumerStore
from tests.federation.sender.peer import LoopbackAgent, Peer
from tests.receipts.rooms import ALICE, SERVER, Rooms

#: A realistic "now" for the fake clock (transaction IDs start with it).
START_S = 1_750_000_000.0


@attrs.define
class Harness:
    db: Database
    rooms: Rooms
    peer: Peer
    clock: task.Clock
    store: FederationOutboundStore
    senders: list[FederationSender]

    def new_sender(self, **options: Any) -> FederationSender:
        """A sender as a new process would build it (its own backoff cache, its own
        transaction IDs), hooked to the pipeline and started."""
        fake_clock = Clock(self.clock)
        backoff = DestinationBackoff(
            DestinationStore(self.db),
            fake_clock,
            min_interval_ms=1_000,
            multiplier=2.0,
            max_interval_ms=8_000,
        )
        client = FederationHttpClient(
            reactor=installed_reactor(),
            agent=LoopbackAgent(self.peer),
            server_name=SERVER,
            signing_key=generate_signing_key("t"),
            backoff=backoff,
            domain_whitelist=None,
            user_agent="sender-tests",
        )
        sender = FederationSender(
            server_name=SERVER,
            client=client,
            backoff=backoff,
            store=self.store,
            events=self.rooms.events,
            consumers=StreamConsumerStore(self.db),
            clock=fake_clock,
            reactor=self.clock,
            **options,
        )
        backoff.on_destination_up.append(sender.wake_destination)
        self.rooms.pipeline.on_new_event.append(sender.on_new_event)
        sender.start()
        self.senders.append(sender)
        return sender

    async def stop_sender(self, sender: FederationSender) -> None:
        self.rooms.pipeline.on_new_event.remove(sender.on_new_event)
        await sender.stop()
        self.senders.remove(sender)

    async def message(self, room_id: str, body: str) -> str:
        return await self.rooms.message(room_id, ALICE, body)

    async def caught_up(self) -> None:
        """The running senders' consumers have read every event written so far."""
        position = await self.rooms.events.get_max_stream_ordering()
        for sender in self.senders:
            await sender.ready()
            sender.notify_new_events()
            assert await sender.consumer.wait_for(position, 30)

    def later(self, seconds: float) -> None:
        """Let the fake clock move (backoff expiries, retry timers)."""
        self.clock.advance(seconds)


async def until(condition: Callable[[], bool], what: str = "condition") -> None:
    for _ in range(750):
        if condition():
            return
        await task.deferLater(installed_reactor(), 0.02, lambda: None)
    raise AssertionError(f"{what} never held")


async def until_stored(check: Callable[[], Any], what: str = "condition") -> None:
    for _ in range(750):
        if await check():
            return
        await task.deferLater(installed_reactor(), 0.02, lambda: None)
    raise AssertionError(f"{what} never held")


async def failing(harness: Harness, destination: str) -> None:
    """Wait until the client has recorded a failure of ``destination``."""
    store = DestinationStore(harness.db)

    async def recorded() -> bool:
        return await store.get_retry_timings(destination) is not None

    await until_stored(recorded, f"a failure of {destination} recorded")


@pytest_twisted.async_yield_fixture
async def harness(db: Database) -> AsyncIterator[Harness]:
    peer = Peer()
    peer.start()
    clock = task.Clock()
    clock.advance(START_S)
    rooms = Rooms.on(db)
    setup = Harness(
        db=db,
        rooms=rooms,
        peer=peer,
        clock=clock,
        store=FederationOutboundStore(db),
        senders=[],
    )
    yield setup
    for sender in list(setup.senders):
        await setup.stop_sender(sender)
    await peer.stop()
