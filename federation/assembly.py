"""Building the federation services (app.py calls this), in two steps.

1. :func:`build_federation_core` — after the room core (event pipeline and path,
   room state: ``rooms.assembly.build_room_core``), before the room handlers: our
   keys and the keyring, the outbound HTTP client and its backoff, membership over
   federation.  Homeserver handlers that need one of them in their constructor
   (named there as a ``Protocol``, e.g. ``RemoteMembership``) get it from here;
   what the room core needs from federation (the event path's source of missing
   events) is handed to it here, after its construction.
2. :func:`build_federation` — after every homeserver handler exists (:class:`Built`):
   the request authenticator, inbound transactions, the sender, membership over
   federation.  Each adds the servlets it serves through ``servlet_registrars``.

Each helper edits only its own marked section (``# --- keys (H2) ---`` ...): one
section in each class, one in each function body and one in each constructor call.

spec: server-server-api.md
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import attrs
from signedjson.types import SigningKey
from twisted.internet import defer

from federation.client.assembly import FederationClient, build_federation_client
from federation.e2ee.assembly import E2eeFederation, build_e2ee_federation
from federation.edus.assembly import EduServices, build_edus
from federation.history.assembly import build_remote_history, history_registrar
from federation.inbound.assembly import InboundServices, build_inbound
from federation.keys.assembly import KeyServices, build_key_services
from federation.membership.assembly import build_remote_membership, membership_registrar
from federation.membership.partial_state import PartialStateResync
from federation.membership.remote import RemoteMembershipClient
from federation.queries.assembly import QueryServices, build_queries
from federation.sender.assembly import build_sender
from federation.sender.sender import FederationSender
from federation.servlets import server_well_known
from federation.servlets import version as version_servlet
from federation.transport.server import FederationRequestAuthenticator, KeyVerifier
from homeserver.accountdata.handler import AccountDataHandler
from homeserver.auth.account import AccountHandler
from homeserver.auth.devices import DeviceHandler
from homeserver.auth.tokens import AccessTokenHandler
from homeserver.clock import Clock
from homeserver.config.model import HomeServerConfig
from homeserver.directory.handler import DirectoryHandler
from homeserver.e2ee.assembly import E2eeServices
from homeserver.http.server import Router
from homeserver.media.assembly import MediaServices
from homeserver.presence.handler import PresenceHandler
from homeserver.profile.handler import ProfileHandler
from homeserver.reactor import IServerReactor
from homeserver.receipts.handler import ReceiptsHandler
from homeserver.rooms.assembly import RoomCore, RoomServices
from homeserver.rooms.membership import RemoteMembership
from homeserver.rooms.reading import RemoteHistory
from homeserver.storage.database import Database
from homeserver.storage.presence import PresenceStore
from homeserver.streams.notifier import Notifier
from homeserver.typing.handler import TypingHandler

logger = logging.getLogger(__name__)

#: Adds servlets to one listener's router, given the listener's resource names
#: (``federation``, ``keys``, ``openid``, ``client`` ...).  Called once per listener.
ServletRegistrar = Callable[[Router, frozenset[str]], None]

#: Which listener resources serve the federation API (``/_matrix/federation/...``)
#: and which the key API (``/_matrix/key/v2/...``: on either, as Synapse does).
FEDERATION_RESOURCES = frozenset({"federation"})
KEY_RESOURCES = frozenset({"federation", "keys"})


class Built(Protocol):
    """The homeserver services federation builds on (``app.Handlers``)."""

    @property
    def rooms(self) -> RoomServices: ...
    @property
    def account(self) -> AccountHandler: ...
    @property
    def account_data(self) -> AccountDataHandler: ...
    @property
    def devices(self) -> DeviceHandler: ...
    @property
    def profile(self) -> ProfileHandler: ...
    @property
    def directory(self) -> DirectoryHandler: ...
    @property
    def receipts(self) -> ReceiptsHandler: ...
    @property
    def typing(self) -> TypingHandler: ...
    @property
    def presence(self) -> PresenceHandler: ...
    @property
    def e2ee(self) -> E2eeServices: ...
    @property
    def media(self) -> MediaServices: ...
    # --- queries (H11) ---
    @property
    def tokens(self) -> AccessTokenHandler: ...


@attrs.define
class FederationCore:
    """What exists before the room handlers (see the module docstring)."""

    # --- keys (H2) ---
    #: Our keys and key server, the keyring, the notary (federation/keys/assembly.py).
    keys: KeyServices

    @property
    def keyring(self) -> KeyVerifier:
        """Verifies signatures of remote servers (``federation.keys.keyring.Keyring``)."""
        return self.keys.keyring

    # --- outbound (H3) ---
    #: Signed requests to other servers (``client.http``: ``get_json``, ``put_json``
    #: ...) and the per-destination backoff (``client.backoff``, whose
    #: ``on_destination_up`` callbacks hear a destination come back).
    federation_client: FederationClient
    # --- membership (H8) ---
    #: Joins, leaves, knocks and invites through other servers (given to the room
    #: handlers' ``MembershipHandler``); None: rooms stay local.
    remote_membership: RemoteMembership | None
    # --- history (H12) ---
    #: History this server lacks, fetched for ``/messages`` and
    #: ``/timestamp_to_event`` (given to the room handlers' ``RoomReader``); None:
    #: only the history held here is shown.
    remote_history: RemoteHistory | None


@attrs.define
class FederationServices:
    core: FederationCore
    #: Checks the X-Matrix signature of every authenticated federation request;
    #: ``authenticator.on_inbound_request`` callbacks hear the verified origin.
    authenticator: FederationRequestAuthenticator
    #: Each adds its servlets to a listener's router (see :data:`ServletRegistrar`).
    servlet_registrars: list[ServletRegistrar]
    #: Background work started once the server listens, and stopped at shutdown.
    on_start: list[Callable[[], None]]
    on_stop: list[Callable[[], Awaitable[None]]]
    # (No defaults above: each section's fields below may then have none either.)
    # --- inbound (H6) ---
    #: Transactions, PDU checks, EDU handlers by type, server ACLs, graph reads.
    inbound: InboundServices
    # --- sender (H7) ---
    #: Local events and EDUs to other servers, per destination (``federation.sender``);
    #: None when this server does not federate.
    sender: FederationSender | None
    # --- membership (H8) ---
    # --- edus (H9) ---
    #: Typing, read receipts and presence to and from other servers (federation/edus/).
    edus: EduServices
    # --- e2ee (H10) ---
    #: Device lists, key queries and claims, to-device messages (federation/e2ee/).
    e2ee: E2eeFederation
    # --- queries (H11) ---
    #: Profiles, aliases, room directories, space hierarchies, OpenID and media,
    #: asked of other servers and answered for them (federation/queries/).
    queries: QueryServices

    def register_servlets(self, router: Router, resources: frozenset[str]) -> None:
        """Every federation servlet that listener ``resources`` serve."""
        for registrar in self.servlet_registrars:
            registrar(router, resources)

    def start(self) -> None:
        for start in self.on_start:
            start()

    async def stop(self) -> None:
        for stop in reversed(self.on_stop):
            await stop()


def build_federation_core(
    *,
    config: HomeServerConfig,
    reactor: IServerReactor,
    clock: Clock,
    database: Database,
    signing_key: SigningKey,
    rooms: RoomCore,
) -> FederationCore:
    # --- keys (H2) ---
    # (``keys`` is built just after the outbound client: the keyring fetches through it)
    # --- outbound (H3) ---
    federation_client = build_federation_client(
        config=config.federation,
        server_name=config.server_name,
        reactor=reactor,
        clock=clock,
        database=database,
        signing_key=signing_key,
    )
    keys = build_key_services(
        config=config,
        clock=clock,
        database=database,
        signing_key=signing_key,
        transport=federation_client.http,
    )
    # --- membership (H8) ---
    remote_membership: RemoteMembership | None = build_remote_membership(
        config=config,
        clock=clock,
        signing_key=signing_key,
        client=federation_client.http,
        keyring=keys.keyring,
        rooms=rooms.pipeline.path,
    )
    # --- history (H12) ---
    remote_history = build_remote_history(
        config=config,
        reactor=reactor,
        database=database,
        client=federation_client.http,
        keyring=keys.keyring,
        rooms=rooms,
    )
    return FederationCore(
        # --- keys (H2) ---
        keys=keys,
        # --- outbound (H3) ---
        federation_client=federation_client,
        # --- membership (H8) ---
        remote_membership=remote_membership,
        # --- history (H12) ---
        remote_history=remote_history,
    )


def build_federation(
    core: FederationCore,
    *,
    config: HomeServerConfig,
    reactor: IServerReactor,
    clock: Clock,
    database: Database,
    signing_key: SigningKey,
    notifier: Notifier,
    handlers: Built,
) -> FederationServices:
    federation_config = config.federation
    authenticator = FederationRequestAuthenticator(
        server_name=config.server_name,
        keyring=core.keyring,
        domain_whitelist=(
            None
            if federation_config.federation_domain_whitelist is None
            else frozenset(federation_config.federation_domain_whitelist)
        ),
        clock=clock,
    )
    registrars: list[ServletRegistrar] = [_version_registrar]
    if federation_config.serve_server_wellknown:
        registrars.append(_server_well_known_registrar(config.server_name))
    on_start: list[Callable[[], None]] = []
    on_stop: list[Callable[[], Awaitable[None]]] = []
    # --- outbound (H3) ---
    on_stop.append(core.federation_client.close)
    # --- keys (H2) ---

    def register_keys(router: Router, resources: frozenset[str]) -> None:
        if resources & KEY_RESOURCES:
            core.keys.register_servlets(router)

    registrars.append(register_keys)
    # --- inbound (H6) ---
    inbound = build_inbound(
        server_name=config.server_name,
        clock=clock,
        database=database,
        keyring=core.keyring,
        client=core.federation_client.http,
        rooms=handlers.rooms,
        authenticator=authenticator,
    )
    registrars.append(inbound.register_servlets)
    if inbound.missing_events is not None:
        handlers.rooms.pipeline.path.use_missing_event_source(inbound.missing_events)
    # --- sender (H7) ---
    sender = None
    if federation_config.enabled:
        sender = build_sender(
            server_name=config.server_name,
            config=federation_config,
            database=database,
            events=handlers.rooms.events,
            pipeline=handlers.rooms.pipeline,
            client=core.federation_client.http,
            backoff=core.federation_client.backoff,
            on_destination_up=core.federation_client.backoff.on_destination_up,
            clock=clock,
            reactor=reactor,
            partial_servers=handlers.rooms.partial_state.servers_while_partial,
        )
        # A server that contacts us is up: retry what it missed now.
        authenticator.on_inbound_request.append(sender.wake_destination)
        on_start.append(sender.start)
        on_stop.append(sender.stop)
    # --- partial-state joins ---
    resync = _partial_state_resync(
        core, config=config, reactor=reactor, handlers=handlers, inbound=inbound, sender=sender
    )
    if resync is not None:
        on_start.append(lambda: _in_background(resync.resume_all(), "resuming partial joins"))
        on_stop.append(resync.stop)
    # --- membership (H8) ---
    registrars.append(
        membership_registrar(
            config=config,
            signing_key=signing_key,
            rooms=handlers.rooms,
            authenticator=authenticator,
            keyring=core.keyring,
            graph=inbound.graph,
            pdus=inbound.pdu_checker,
            acl=inbound.acl,
            forwarder=sender,
        )
    )
    # --- history (H12) ---
    registrars.append(
        history_registrar(
            config=config,
            clock=clock,
            database=database,
            rooms=handlers.rooms,
            authenticator=authenticator,
            graph=inbound.graph,
            acl=inbound.acl,
        )
    )
    # --- edus (H9) ---
    edus = build_edus(
        server_name=config.server_name,
        reactor=reactor,
        clock=clock,
        registry=inbound.edus,
        sender=sender,
        joined_servers=inbound.graph,
        is_joined=handlers.rooms.timeline.is_joined,
        events=handlers.rooms.events,
        presence_rooms=PresenceStore(database),
        on_new_event=handlers.rooms.pipeline.on_new_event,
        typing=handlers.typing,
        receipts=handlers.receipts,
        presence=handlers.presence,
    )
    on_start.append(edus.start)
    on_stop.append(edus.stop)
    # --- e2ee (H10) ---
    e2ee = build_e2ee_federation(
        server_name=config.server_name,
        clock=clock,
        reactor=reactor,
        database=database,
        client=core.federation_client.http,
        sender=sender,
        edus=inbound.edus,
        e2ee=handlers.e2ee,
        events=handlers.rooms.events,
        on_new_event=handlers.rooms.pipeline.on_new_event,
        authenticator=authenticator,
    )
    registrars.append(e2ee.register_servlets)
    if e2ee.remote_lists is not None:
        handlers.rooms.partial_state_completer.on_completed.append(e2ee.remote_lists.members_added)
    joins = e2ee.joins
    if joins is not None:

        async def announce_local_members(room_id: str, _added: list[str]) -> None:
            room = await handlers.rooms.events.get_room(room_id)
            if room is None:
                return
            members = await handlers.rooms.events.get_room_members(room.room_nid)
            suffix = ":" + config.server_name
            await joins.room_completed(room_id, [m for m in members if m.endswith(suffix)])

        handlers.rooms.partial_state_completer.on_completed.append(announce_local_members)
    on_start.append(e2ee.start)
    on_stop.append(e2ee.stop)
    # --- queries (H11) ---
    queries = build_queries(
        config=config,
        clock=clock,
        client=core.federation_client,
        authenticator=authenticator,
        joined_servers=inbound.graph,
        acl=inbound.acl,
        profiles=handlers.profile,
        directory=handlers.directory,
        hierarchy=handlers.rooms.hierarchy,
        media=handlers.media,
        tokens=handlers.tokens,
        database=database,
    )
    registrars.append(queries.register_servlets)
    return FederationServices(
        core=core,
        authenticator=authenticator,
        servlet_registrars=registrars,
        on_start=on_start,
        on_stop=on_stop,
        # --- inbound (H6) ---
        inbound=inbound,
        # --- sender (H7) ---
        sender=sender,
        # --- membership (H8) ---
        # --- edus (H9) ---
        edus=edus,
        # --- e2ee (H10) ---
        e2ee=e2ee,
        # --- queries (H11) ---
        queries=queries,
    )


def _partial_state_resync(
    core: FederationCore,
    *,
    config: HomeServerConfig,
    reactor: IServerReactor,
    handlers: Built,
    inbound: InboundServices,
    sender: FederationSender | None,
) -> PartialStateResync | None:
    """The background fetch of full states after partial-state joins, started by
    each such join; its completions refresh what was derived from the partial state."""
    remote_membership = core.remote_membership
    if inbound.missing_events is None or not isinstance(remote_membership, RemoteMembershipClient):
        return None
    rooms = handlers.rooms
    resync = PartialStateResync(
        server_name=config.server_name,
        source=inbound.missing_events,
        completer=rooms.partial_state_completer,
        rooms=rooms.partial_state,
        reactor=reactor,
    )
    remote_membership.on_partial_join.append(resync.start)

    async def completed(room_id: str, _members: list[str]) -> None:
        inbound.graph.forget_cached_servers()
        room = await rooms.events.get_room(room_id)
        if sender is not None and room is not None:
            sender.forget_room_servers(room.room_nid)

    rooms.partial_state_completer.on_completed.append(completed)
    return resync


def _in_background(work: Coroutine[Any, Any, None], what: str) -> None:
    defer.ensureDeferred(work).addErrback(
        lambda failure: logger.error("%s failed: %s", what, failure.getErrorMessage())
    )


def _version_registrar(router: Router, resources: frozenset[str]) -> None:
    if resources & FEDERATION_RESOURCES:
        version_servlet.register(router)


def _server_well_known_registrar(server_name: str) -> ServletRegistrar:
    def register(router: Router, resources: frozenset[str]) -> None:
        if "client" in resources:  # where https://<server_name>/ leads
            server_well_known.register(router, server_name=server_name)

    return register
