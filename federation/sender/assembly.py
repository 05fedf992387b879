"""Building the federation sender (``federation/assembly.py`` calls
:func:`build_sender`) and the hooks that feed it.

Hooks wired here: new visible events poke it (``pipeline.on_new_event``), and a
destination answering again after failures is caught up at once
(``DestinationBackoff.on_destination_up``).  The caller adds :meth:`start` and
:meth:`stop` to the server's background work, and may wake a destination that
contacts us (``wake_destination``).
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime

from federation.sender.queue import Backoff, TransactionClient
from federation.sender.recipients import PartialServers
from federation.sender.sender import FederationSender
from homeserver.clock import Clock
from homeserver.config.federation import FederationConfig
from homeserver.rooms.pipeline import EventPipeline
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore
from homeserver.storage.federation_outbound import FederationOutboundStore
from homeserver.storage.stream_consumers import StreamConsumerStore


def build_sender(
    *,
    server_name: str,
    config: FederationConfig,
    database: Database,
    events: EventStore,
    pipeline: EventPipeline,
    client: TransactionClient,
    backoff: Backoff,
    on_destination_up: list[Callable[[str], None]],
    clock: Clock,
    reactor: IReactorTime,
    partial_servers: PartialServers | None = None,
) -> FederationSender:
    whitelist = config.federation_domain_whitelist
    allowed_names = None if whitelist is None else frozenset(whitelist)
    sender = FederationSender(
        server_name=server_name,
        client=client,
        backoff=backoff,
        store=FederationOutboundStore(database),
        events=events,
        consumers=StreamConsumerStore(database),
        clock=clock,
        reactor=reactor,
        io_reactor=reactor,
        allowed=lambda destination: allowed_names is None or destination in allowed_names,
        timeout_s=config.client_timeout_ms / 1000,
        partial_servers=partial_servers,
    )
    pipeline.on_new_event.append(sender.on_new_event)
    on_destination_up.append(sender.wake_destination)
    return sender
