"""Building the inbound side of federation (``federation/assembly.py`` calls
:func:`build_inbound`): transactions, PDU checks, EDU dispatch, server ACLs, the
reads other servers make of our rooms, and the source the event path fetches
missing events from."""

from __future__ import annotations

import attrs

from federation.acl import ServerAcl
from federation.inbound.edus import EduRegistry
from federation.inbound.event_reads import EventReadHandler
from federation.inbound.missing_events import FederationMissingEventSource
from federation.inbound.pdu_checks import PduChecker
from federation.inbound.transactions import TransactionHandler
from federation.protocols import FederationReader, SignatureVerifier
from federation.servlets import events as events_servlet
from federation.servlets import send as send_servlet
from federation.transport.server import FederationRequestAuthenticator
from homeserver.clock import Clock
from homeserver.http.server import Router
from homeserver.rooms.assembly import RoomServices
from homeserver.storage.database import Database
from homeserver.storage.erased_users import ErasedUserStore
from homeserver.storage.event_graph import EventGraphStore
from homeserver.storage.federation_inbound import LocalResidencyStore, ReceivedTransactionStore

#: The listener resource that serves these endpoints.
FEDERATION_RESOURCE = "federation"


@attrs.frozen
class InboundServices:
    #: Checks steps 1-3 of every PDU from another server (joins and invites too).
    pdu_checker: PduChecker
    #: EDU handlers register here by type (typing, receipts, presence, to-device...).
    edus: EduRegistry
    #: ``check(origin, room_id)``: 403 unless the room's ACL admits the server.
    acl: ServerAcl
    #: The servers joined to a room, auth chains (``get_joined_servers`` et al.).
    graph: EventGraphStore
    transactions: TransactionHandler
    event_reads: EventReadHandler
    #: What the event path should ask for events it lacks (None without an
    #: outbound client).  Built after the path, which must then be given it.
    missing_events: FederationMissingEventSource | None
    authenticator: FederationRequestAuthenticator

    def register_servlets(self, router: Router, resources: frozenset[str]) -> None:
        if FEDERATION_RESOURCE not in resources:
            return
        send_servlet.register(
            router, authenticator=self.authenticator, transactions=self.transactions
        )
        events_servlet.register(router, authenticator=self.authenticator, reads=self.event_reads)


def build_inbound(
    *,
    server_name: str,
    clock: Clock,
    database: Database,
    keyring: SignatureVerifier,
    client: FederationReader | None,
    rooms: RoomServices,
    authenticator: FederationRequestAuthenticator,
) -> InboundServices:
    checker = PduChecker(keyring)
    edus = EduRegistry()
    acl = ServerAcl(events=rooms.events, state=rooms.state_store)
    graph = EventGraphStore(database, rooms.state_store)
    transactions = TransactionHandler(
        store=ReceivedTransactionStore(database),
        rooms=rooms.events,
        residency=LocalResidencyStore(database, server_name),
        checker=checker,
        acl=acl,
        path=rooms.pipeline.path,
        edus=edus,
        clock=clock,
    )
    event_reads = EventReadHandler(
        server_name=server_name,
        events=rooms.events,
        state=rooms.state_store,
        graph=graph,
        acl=acl,
        clock=clock,
        erased=ErasedUserStore(database),
        partial_state=rooms.partial_state.is_partial,
    )
    missing_events = (
        None
        if client is None
        else FederationMissingEventSource(
            server_name=server_name,
            client=client,
            checker=checker,
            rooms=graph,
            events=rooms.events,
        )
    )
    return InboundServices(
        pdu_checker=checker,
        edus=edus,
        acl=acl,
        graph=graph,
        transactions=transactions,
        event_reads=event_reads,
        missing_events=missing_events,
        authenticator=authenticator,
    )
