"""Building membership over federation (called from ``federation/assembly.py`` and
``homeserver/app.py``).

Two pieces, built at different times: the asking side
(:func:`build_remote_membership`) before the room handlers, since
``MembershipHandler`` takes it in its constructor; the serving side
(:func:`membership_registrar`) with the other federation servlets, once every
handler exists.
"""

from __future__ import annotations

from collections.abc import Callable

from signedjson.types import SigningKey

from federation.acl import ServerAcl
from federation.inbound.pdu_checks import PduChecker
from federation.membership.pdus import PduCheck
from federation.membership.remote import (
    FederationJsonClient,
    RemoteMembershipClient,
    RemoteRoomStore,
)
from federation.membership.serving import (
    AuthChains,
    MembershipForwarder,
    MembershipServing,
)
from federation.protocols import ServerAclCheck, SignatureVerifier
from federation.servlets import membership as membership_servlets
from federation.transport.server import FederationRequestAuthenticator
from homeserver.clock import Clock
from homeserver.config.model import HomeServerConfig
from homeserver.http.server import Router
from homeserver.rooms.assembly import RoomServices

#: Which listener resources serve these endpoints (as ``FEDERATION_RESOURCES``).
_FEDERATION = frozenset({"federation"})


def build_remote_membership(
    *,
    config: HomeServerConfig,
    clock: Clock,
    signing_key: SigningKey,
    client: FederationJsonClient,
    keyring: SignatureVerifier,
    rooms: RemoteRoomStore,
    pdus: PduCheck | None = None,
) -> RemoteMembershipClient | None:
    """The client side, or None when this server does not federate (joins of rooms
    we are not in are then refused as "no known servers", as before federation).
    ``rooms`` is the event path; ``pdus`` defaults to a checker over ``keyring``."""
    if not config.federation.enabled:
        return None
    if pdus is None:
        pdus = PduChecker(keyring)
    return RemoteMembershipClient(
        server_name=config.server_name,
        signing_key=signing_key,
        clock=clock,
        client=client,
        pdus=pdus,
        keyring=keyring,
        rooms=rooms,
        partial_state_joins=config.federation.partial_state_joins,
    )


def membership_registrar(
    *,
    config: HomeServerConfig,
    signing_key: SigningKey,
    rooms: RoomServices,
    authenticator: FederationRequestAuthenticator,
    keyring: SignatureVerifier,
    graph: AuthChains,
    pdus: PduCheck | None = None,
    acl: ServerAclCheck | None = None,
    forwarder: MembershipForwarder | None = None,
) -> Callable[[Router, frozenset[str]], None]:
    """Registers the serving side's servlets on federation listeners.

    ``graph`` reads auth chains (``EventGraphStore``); ``pdus`` and ``acl`` are the
    inbound side's when it has them (one ACL cache per process is enough),
    otherwise they are made here; ``forwarder`` (the sender) passes joins, leaves and
    knocks made through us on to the room's other servers.
    """
    if pdus is None:
        pdus = PduChecker(keyring)
    if acl is None:
        acl = ServerAcl(events=rooms.events, state=rooms.state_store)
    serving = MembershipServing(
        server_name=config.server_name,
        signing_key=signing_key,
        pipeline=rooms.pipeline,
        state=rooms.state,
        events=rooms.events,
        graph=graph,
        membership=rooms.membership,
        pdus=pdus,
        acl=acl,
        invites=rooms.pipeline.path,
        forwarder=forwarder,
        # /sync's m.heroes rule picks the members a partial-state joiner gets.
        summaries=rooms.timeline,
        # While our own join of a room is partial, joiners and knockers are sent to
        # another server (we lack the member list their answers need).
        partial_state=rooms.partial_state.is_partial,
    )

    def register(router: Router, resources: frozenset[str]) -> None:
        if resources & _FEDERATION:
            membership_servlets.register(router, authenticator=authenticator, serving=serving)

    return register
