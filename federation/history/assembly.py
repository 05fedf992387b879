"""Building room history over federation (called from ``federation/assembly.py``).

Two pieces, built at different times: the asking side (:func:`build_remote_history`)
before the room handlers, since ``RoomReader`` takes it in its constructor; the
serving side (:func:`history_registrar`) with the other federation servlets.
"""

from __future__ import annotations

from collections.abc import Callable

from federation.history.remote import FederationHistory, HistoryPath
from federation.history.serving import BackfillGraph, HistoryReadHandler
from federation.inbound.event_reads import AclCheck
from federation.inbound.pdu_checks import PduChecker, SignatureVerifier
from federation.protocols import FederationGetter
from federation.servlets import history as history_servlet
from federation.transport.server import FederationRequestAuthenticator
from homeserver.clock import Clock
from homeserver.config.model import HomeServerConfig
from homeserver.http.server import Router
from homeserver.reactor import IServerReactor
from homeserver.rooms.assembly import RoomCore, RoomServices
from homeserver.storage.database import Database
from homeserver.storage.erased_users import ErasedUserStore
from homeserver.storage.event_graph import EventGraphStore

#: Which listener resources serve these endpoints (as ``FEDERATION_RESOURCES``).
_FEDERATION = frozenset({"federation"})


def build_remote_history(
    *,
    config: HomeServerConfig,
    reactor: IServerReactor,
    database: Database,
    client: FederationGetter,
    keyring: SignatureVerifier,
    rooms: RoomCore,
    path: HistoryPath | None = None,
) -> FederationHistory | None:
    """The asking side, or None when this server does not federate (``/messages``
    then shows the history held here only).  ``path`` defaults to the room core's
    event path."""
    if not config.federation.enabled:
        return None
    return FederationHistory(
        server_name=config.server_name,
        client=client,
        checker=PduChecker(keyring),
        path=rooms.pipeline.path if path is None else path,
        graph=rooms.events,
        servers=EventGraphStore(database, rooms.state_store),
        reactor=reactor,
    )


def history_registrar(
    *,
    config: HomeServerConfig,
    clock: Clock,
    database: Database,
    rooms: RoomServices,
    authenticator: FederationRequestAuthenticator,
    graph: BackfillGraph,
    acl: AclCheck,
) -> Callable[[Router, frozenset[str]], None]:
    """Registers ``/backfill`` and ``/timestamp_to_event`` on federation listeners.
    ``graph`` and ``acl`` are the inbound side's (one cache of each per process)."""
    reads = HistoryReadHandler(
        server_name=config.server_name,
        events=rooms.events,
        state=rooms.state_store,
        graph=graph,
        timeline=rooms.timeline,
        acl=acl,
        clock=clock,
        erased=ErasedUserStore(database),
    )

    def register(router: Router, resources: frozenset[str]) -> None:
        if resources & _FEDERATION:
            history_servlet.register(router, authenticator=authenticator, reads=reads)

    return register
