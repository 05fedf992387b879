"""Assembling a homeserver from its config: explicit construction, no service locator.

Each component gets exactly the collaborators it needs, in dependency order:
config -> database -> stores -> handlers -> HTTP.  The same assembly serves the
all-in-one process and (later) each worker role.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import attrs
from signedjson.types import SigningKey
from twisted.internet import defer

from federation.assembly import FederationServices, build_federation, build_federation_core
from homeserver.accountdata.handler import AccountDataHandler
from homeserver.api.admin import media as admin_media
from homeserver.api.admin import register as admin_register
from homeserver.api.admin import registration_tokens as admin_registration_tokens
from homeserver.api.client import account, cross_signing, discovery, keys, room_keys, to_device
from homeserver.api.client import account_data as account_data_servlet
from homeserver.api.client import capabilities as capabilities_servlet
from homeserver.api.client import devices as devices_servlet
from homeserver.api.client import directory as directory_servlet
from homeserver.api.client import filters as filters_servlet
from homeserver.api.client import hierarchy as hierarchy_servlet
from homeserver.api.client import legacy as legacy_servlet
from homeserver.api.client import login as login_servlet
from homeserver.api.client import media as media_servlet
from homeserver.api.client import presence as presence_servlet
from homeserver.api.client import profile as profile_servlet
from homeserver.api.client import push_rules as push_rules_servlet
from homeserver.api.client import read_markers as read_markers_servlet
from homeserver.api.client import receipts as receipts_servlet
from homeserver.api.client import register as register_servlet
from homeserver.api.client import relations as relations_servlet
from homeserver.api.client import room_upgrades as room_upgrades_servlet
from homeserver.api.client import rooms as rooms_servlet
from homeserver.api.client import search as search_servlet
from homeserver.api.client import sync as sync_servlet
from homeserver.api.client import tags as tags_servlet
from homeserver.api.client import typing as typing_servlet
from homeserver.api.client import user_directory as userdir_servlet
from homeserver.api.client import whois as whois_servlet
from homeserver.api.client.stream import StreamEndpoint, StreamServices
from homeserver.auth.account import AccountHandler
from homeserver.auth.client_registration import ClientRegistrationHandler
from homeserver.auth.devices import DeviceHandler
from homeserver.auth.last_seen import LastSeenTracker
from homeserver.auth.login import LoginHandler
from homeserver.auth.password_auth import PasswordAuthenticator
from homeserver.auth.passwords import PasswordHasher
from homeserver.auth.refresh import RefreshHandler
from homeserver.auth.registration import RegistrationHandler
from homeserver.auth.registration_tokens import RegistrationTokenHandler
from homeserver.auth.shared_secret import SharedSecretRegistration
from homeserver.auth.tokens import AccessTokenHandler
from homeserver.auth.uia import PASSWORD, REGISTRATION_TOKEN, UserInteractiveAuth
from homeserver.auth.whois import WhoisHandler
from homeserver.clock import Clock
from homeserver.config.model import HomeServerConfig, ListenerConfig
from homeserver.crypto.keys import load_or_create_signing_key
from homeserver.directory.handler import DirectoryHandler
from homeserver.e2ee.assembly import E2eeServices, build_e2ee
from homeserver.filtering.handler import FilterHandler
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.limits import ensure_file_descriptors
from homeserver.http.listeners import ListenError, listen, listener_site
from homeserver.http.server import JsonResource, Router
from homeserver.http.tls import TlsFilesError, reloadable_listener_tls
from homeserver.media.assembly import MediaServices, build_media
from homeserver.notifications.assembly import NotificationServices, build_notifications
from homeserver.presence.activity import track_presence_activity
from homeserver.presence.handler import PresenceHandler
from homeserver.profile.handler import ProfileHandler
from homeserver.push.handler import PushRulesHandler
from homeserver.pushers.assembly import PusherServices, build_pushers
from homeserver.ratelimit import RateLimiter
from homeserver.reactor import IServerReactor
from homeserver.receipts.delivered import DeliveryRecorder
from homeserver.receipts.handler import ReceiptsHandler
from homeserver.rooms.assembly import RoomServices, build_room_core, build_rooms
from homeserver.rooms.carry_over import UpgradeCarryOver
from homeserver.rooms.guests import GuestEviction
from homeserver.rooms.upgrade import RoomUpgradeHandler
from homeserver.search.assembly import SearchServices, build_search
from homeserver.storage.account_data import AccountDataStore
from homeserver.storage.database import Database
from homeserver.storage.devices import DeviceStore
from homeserver.storage.directory import DirectoryStore
from homeserver.storage.filters import FilterStore
from homeserver.storage.login_tokens import LoginTokenStore
from homeserver.storage.migrations import prepare_database
from homeserver.storage.presence import PresenceStore
from homeserver.storage.profiles import ProfileStore
from homeserver.storage.receipts import ReceiptStore
from homeserver.storage.refresh_tokens import RefreshTokenStore
from homeserver.storage.registration_tokens import RegistrationTokenStore
from homeserver.storage.server_identity import ServerIdentityStore
from homeserver.storage.unread import UnreadStore
from homeserver.storage.users import UserStore
from homeserver.streams.notifier import Notifier
from homeserver.streams.token import StreamToken
from homeserver.sync.handler import SyncHandler
from homeserver.sync.legacy import LegacySyncHandler
from homeserver.sync.sections import PresenceSection, SyncSection
from homeserver.sync.sources import SyncSources
from homeserver.typing.handler import TypingHandler
from homeserver.unread.counter import UnreadCounter
from homeserver.userdir.assembly import UserDirectoryServices, build_user_directory
from homeserver.webclient import WebClientSite, register_pages

logger = logging.getLogger(__name__)


class StartupError(Exception):
    """The server cannot start; the message says why in one line."""


@attrs.define
class Stores:
    users: UserStore
    devices: DeviceStore
    profiles: ProfileStore
    registration_tokens: RegistrationTokenStore
    refresh_tokens: RefreshTokenStore
    login_tokens: LoginTokenStore
    account_data: AccountDataStore
    filters: FilterStore
    directory: DirectoryStore
    receipts: ReceiptStore
    unread: UnreadStore
    presence: PresenceStore


@attrs.define
class Handlers:
    registration: RegistrationHandler
    tokens: AccessTokenHandler
    shared_secret: SharedSecretRegistration
    rooms: RoomServices
    sync: SyncHandler
    #: ``/events``, ``/initialSync``, ``/rooms/{roomId}/initialSync``, ``/events/{eventId}``.
    legacy_sync: LegacySyncHandler
    whois: WhoisHandler
    last_seen: LastSeenTracker
    uia: UserInteractiveAuth
    passwords: PasswordAuthenticator
    login: LoginHandler
    refresh: RefreshHandler
    #: ``account.on_deactivate``: callbacks run when a user deactivates their account.
    account: AccountHandler
    devices: DeviceHandler
    #: ``profile.on_profile_change``: callbacks run when a display name or avatar changes.
    profile: ProfileHandler
    registration_tokens: RegistrationTokenHandler
    client_registration: ClientRegistrationHandler
    #: ``account_data.on_ignored_users_changed``: callbacks run with the user ID.
    account_data: AccountDataHandler
    push_rules: PushRulesHandler
    filters: FilterHandler
    directory: DirectoryHandler
    #: ``receipts.on_fully_read``: callbacks (user, room, event) for ``m.fully_read``.
    receipts: ReceiptsHandler
    typing: TypingHandler
    unread: UnreadCounter
    room_upgrades: RoomUpgradeHandler
    presence: PresenceHandler
    deliveries: DeliveryRecorder
    media: MediaServices
    e2ee: E2eeServices
    user_directory: UserDirectoryServices
    search: SearchServices
    pushers: PusherServices
    notifications: NotificationServices = attrs.field(init=False)


@attrs.define
class HomeServer:
    config: HomeServerConfig
    reactor: IServerReactor
    clock: Clock
    database: Database
    stores: Stores
    handlers: Handlers
    signing_key: SigningKey
    #: The server-server API (federation/assembly.py).
    federation: FederationServices
    ports: list[Any] = attrs.field(factory=list)
    _shutdown_trigger: Any = None
    #: Rate limits of expensive reads, one bucket set per process whatever the
    #: number of listeners; /sync and the legacy /events share theirs.
    _sync_limiter: RateLimiter = attrs.field(init=False)
    _threads_limiter: RateLimiter = attrs.field(init=False)
    _hierarchy_limiter: RateLimiter = attrs.field(init=False)
    _presence_limiter: RateLimiter = attrs.field(init=False)
    _media_upload_limiter: RateLimiter = attrs.field(init=False)
    _media_create_limiter: RateLimiter = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._media_upload_limiter = RateLimiter(self.clock, self.config.media.upload_limit)
        self._media_create_limiter = RateLimiter(self.clock, self.config.media.create_limit)
        limits = self.config.rate_limits
        self._sync_limiter = RateLimiter(self.clock, limits.sync)
        self._presence_limiter = RateLimiter(self.clock, limits.presence)
        self._threads_limiter = RateLimiter(self.clock, limits.threads)
        self._hierarchy_limiter = RateLimiter(self.clock, limits.hierarchy)

    def build_router(self, listener: ListenerConfig) -> Router:
        router = Router()
        # /health answers on every listener so load balancers can probe any port.
        discovery.register_health(router)
        if "client" in listener.resources:
            discovery.register(
                router,
                public_baseurl=self.config.public_baseurl,
                extra_well_known=self.config.extra_well_known_client_content,
            )
            register_pages(router, self.config, self.handlers.uia)  # /, UIA fallback
            account.register(router, authenticator=RequestAuthenticator(self.handlers.tokens))
            self._register_account_servlets(router)
            self._register_account_data_servlets(router)
            self._register_directory_servlets(router)
            self._register_room_servlets(router)
            self._register_receipt_servlets(router)
            admin_register.register(
                router,
                server_name=self.config.server_name,
                shared_secret=self.handlers.shared_secret,
            )
        if self.config.media.enabled and listener.resources & {"client", "media"}:
            self._register_media_servlets(router)
        self.federation.register_servlets(router, listener.resources)
        return router

    def _register_media_servlets(self, router: Router) -> None:
        """The content repository and its admin API."""
        media = self.handlers.media
        authenticator = RequestAuthenticator(self.handlers.tokens)
        media_servlet.register(
            router,
            media_servlet.MediaServlets(
                server_name=self.config.server_name,
                max_upload_size=self.config.max_upload_size,
                enable_authenticated_media=self.config.media.enable_authenticated_media,
                authenticator=authenticator,
                repository=media.repository,
                media=media.server,
                threads=media.threads,
                upload_limiter=self._media_upload_limiter,
                create_limiter=self._media_create_limiter,
                previews=media.previews,
            ),
        )
        admin_media.register(router, authenticator=authenticator, maintenance=media.maintenance)

    def _register_account_servlets(self, router: Router) -> None:
        """Login, registration, account, device, profile and capability endpoints."""
        handlers, config = self.handlers, self.config
        authenticator = RequestAuthenticator(handlers.tokens)
        well_known = {
            **config.extra_well_known_client_content,
            "m.homeserver": {"base_url": config.public_baseurl},
        }
        register_servlet.register(
            router,
            server_name=config.server_name,
            well_known=well_known,
            registration=handlers.client_registration,
            registration_tokens=handlers.registration_tokens,
            uia=handlers.uia,
            lookup_limiter=RateLimiter(self.clock, config.rate_limits.registration),
        )
        login_servlet.register(
            router,
            server_name=config.server_name,
            well_known=well_known,
            authenticator=authenticator,
            login=handlers.login,
            refresh=handlers.refresh,
            account=handlers.account,
            passwords=handlers.passwords,
            uia=handlers.uia,
        )
        account.register_management(
            router,
            authenticator=authenticator,
            account=handlers.account,
            passwords=handlers.passwords,
            uia=handlers.uia,
        )
        devices_servlet.register(
            router,
            authenticator=authenticator,
            devices=handlers.devices,
            passwords=handlers.passwords,
            uia=handlers.uia,
        )
        profile_servlet.register(router, authenticator=authenticator, profiles=handlers.profile)
        capabilities_servlet.register(
            router,
            authenticator=authenticator,
            password_enabled=config.password_login_enabled,
            default_room_version=config.default_room_version,
            extra={**handlers.pushers.capabilities(), **handlers.notifications.capabilities()},
        )
        admin_registration_tokens.register(
            router, authenticator=authenticator, tokens=handlers.registration_tokens
        )
        whois_servlet.register(router, authenticator=authenticator, whois=handlers.whois)

    def _register_account_data_servlets(self, router: Router) -> None:
        """Account data, room tags and filter endpoints."""
        authenticator = RequestAuthenticator(self.handlers.tokens)
        account_data = self.handlers.account_data
        account_data_servlet.register(
            router, authenticator=authenticator, account_data=account_data
        )
        tags_servlet.register(router, authenticator=authenticator, account_data=account_data)
        filters_servlet.register(router, authenticator=authenticator, filters=self.handlers.filters)
        push_rules_servlet.register(
            router, authenticator=authenticator, push_rules=self.handlers.push_rules
        )
        self.handlers.pushers.register(router, authenticator)
        self.handlers.notifications.register(router, authenticator)
        e2ee = self.handlers.e2ee
        room_keys.register(router, authenticator=authenticator, key_backup=e2ee.key_backup)
        to_device.register(router, authenticator=authenticator, to_device=e2ee.to_device)

    def _register_directory_servlets(self, router: Router) -> None:
        """Room aliases and the published room directory."""
        directory_servlet.register(
            router,
            authenticator=RequestAuthenticator(self.handlers.tokens),
            directory=self.handlers.directory,
        )
        userdir_servlet.register(router, self.handlers.tokens, self.handlers.user_directory.handler)

    def _register_room_servlets(self, router: Router) -> None:
        """Rooms, sync, read markers, relations and spaces."""
        rooms = self.handlers.rooms
        rooms_servlet.register(
            router,
            authenticator=RequestAuthenticator(self.handlers.tokens),
            creation=rooms.creation,
            membership=rooms.membership,
            messages=rooms.messages,
            reader=rooms.reader,
            resolve_alias=self.handlers.directory.resolve_alias,
        )
        sync_servlet.register(
            router,
            authenticator=RequestAuthenticator(self.handlers.tokens),
            sync=self.handlers.sync,
            filters=self.handlers.filters,
            limiter=self._sync_limiter,
            presence=self.handlers.presence,
            deliveries=self.handlers.deliveries,
        )
        read_markers_servlet.register(
            router,
            authenticator=RequestAuthenticator(self.handlers.tokens),
            receipts=self.handlers.receipts,
        )
        legacy_servlet.register(
            router,
            authenticator=RequestAuthenticator(self.handlers.tokens),
            legacy=self.handlers.legacy_sync,
            # The legacy event stream and snapshots cost what /sync costs.
            limiter=self._sync_limiter,
        )
        relations_servlet.register(
            router,
            authenticator=RequestAuthenticator(self.handlers.tokens),
            relations=rooms.relations,
            threads_limiter=self._threads_limiter,
        )
        hierarchy_servlet.register(
            router,
            authenticator=RequestAuthenticator(self.handlers.tokens),
            hierarchy=rooms.hierarchy,
            limiter=self._hierarchy_limiter,
        )
        room_upgrades_servlet.register(
            router,
            authenticator=RequestAuthenticator(self.handlers.tokens),
            upgrades=self.handlers.room_upgrades,
        )

    def _register_receipt_servlets(self, router: Router) -> None:
        """Receipts and typing notifications."""
        authenticator = RequestAuthenticator(self.handlers.tokens)
        receipts_servlet.register(
            router, authenticator=authenticator, receipts=self.handlers.receipts
        )
        typing_servlet.register(router, authenticator=authenticator, typing=self.handlers.typing)
        search_servlet.register(router, authenticator, self.handlers.search.handler)
        keys.register(router, authenticator=authenticator, keys=self.handlers.e2ee.device_keys)
        cross_signing.register(router, authenticator=authenticator, handlers=self.handlers)
        presence_servlet.register(
            router,
            authenticator=authenticator,
            presence=self.handlers.presence,
            limiter=self._presence_limiter,
        )

    def start_background_tasks(self) -> None:
        """Start periodic work; the last-seen and presence batches are also written at
        reactor shutdown."""
        self.handlers.last_seen.start()
        self.handlers.presence.start()
        self.handlers.media.maintenance.start()
        self.handlers.user_directory.start()
        self.handlers.search.start()
        self.handlers.pushers.start()
        self.federation.start()
        self._shutdown_trigger = self.reactor.addSystemEventTrigger(
            "before", "shutdown", lambda: defer.ensureDeferred(self._stop_periodic_work())
        )

    async def _stop_periodic_work(self) -> None:
        await self.federation.stop()
        await self.handlers.last_seen.stop()
        await self.handlers.presence.stop()
        await self.handlers.deliveries.drain()
        await self.handlers.media.drain()
        await self.handlers.media.maintenance.stop()
        await self.handlers.search.stop()
        await self.handlers.user_directory.stop()
        await self.handlers.pushers.stop()

    async def stop_background_tasks(self) -> None:
        if self._shutdown_trigger is not None:
            self.reactor.removeSystemEventTrigger(self._shutdown_trigger)
            self._shutdown_trigger = None
        await self._stop_periodic_work()

    def start_listening(self) -> None:
        ensure_file_descriptors(sum(listener.max_connections for listener in self.config.listeners))
        # The WebSocket stream (api/client/stream.py), on every client listener.  One
        # endpoint per process: at shutdown it closes every open stream with 1001.
        streams = StreamEndpoint(
            StreamServices(
                reactor=self.reactor,
                authenticator=RequestAuthenticator(self.handlers.tokens),
                tokens=self.handlers.tokens,
                sync=self.handlers.sync,
                filters=self.handlers.filters,
                typing=self.handlers.typing,
                receipts=self.handlers.receipts,
                presence=self.handlers.presence,
                deliveries=self.handlers.deliveries,
                sync_limiter=self._sync_limiter,
                presence_limiter=self._presence_limiter,
            )
        )
        self.reactor.addSystemEventTrigger("before", "shutdown", streams.close_all)
        uploads = media_servlet.UploadBodies(self.handlers.media, self.config.max_upload_size)
        try:
            tls = reloadable_listener_tls(self.config)
        except TlsFilesError as error:
            raise StartupError(f"TLS listener: {error}") from None
        if tls is not None:
            # As Synapse: SIGHUP re-reads the certificate (renewals); new connections get it.
            signal.signal(signal.SIGHUP, lambda *_: self.reactor.callFromThread(tls.reload))
        web_client = WebClientSite(self.config)
        for listener in self.config.listeners:
            router = self.build_router(listener)
            root: Any = JsonResource(router)
            if "client" in listener.resources:  # the stream, then the app at /
                root = web_client.wrap(streams.wrap(root), router.routes())
            site = listener_site(
                self.reactor, listener, root, self.config.max_request_body_size, uploads
            )
            try:
                self.ports.extend(
                    listen(self.reactor, listener, site, tls if listener.tls else None)
                )
            except ListenError as error:
                raise StartupError(str(error)) from None
        self.start_background_tasks()

    async def stop(self) -> None:
        for port in self.ports:
            await defer.maybeDeferred(port.stopListening)
        self.ports.clear()
        await self.stop_background_tasks()
        self.database.close()


async def _set_fully_read(
    account_data: AccountDataHandler, user_id: str, room_id: str, event_id: str
) -> None:
    """spec: client-server-api/_index.md#fully-read-markers (room account data)"""
    await account_data.set_room(user_id, room_id, "m.fully_read", {"event_id": event_id})


async def build_homeserver(
    config: HomeServerConfig,
    reactor: IServerReactor,
    *,
    create_signing_key: bool = False,
) -> HomeServer:
    """Connect to the database, migrate it and wire up every component."""
    signing_key = load_or_create_signing_key(config.signing_key_path, create=create_signing_key)
    if config.database.name == "sqlite3":
        # The embedded default keeps everything under one folder, created on first start.
        Path(config.database.args["database"]).parent.mkdir(parents=True, exist_ok=True)
    database = Database.connect(
        config.database.name,
        config.database.args,
        reactor=reactor,
        cp_min=config.database.cp_min,
        cp_max=config.database.cp_max,
    )
    try:
        await prepare_database(database)
        owner = await ServerIdentityStore(database).claim(config.server_name)
    except Exception:
        database.close()
        raise
    if owner != config.server_name:
        database.close()
        raise StartupError(
            f"the database belongs to server '{owner}', not '{config.server_name}': a "
            "server's name cannot change once it has data; start it with the config that "
            "created it, or give this server_name a new database"
        )
    clock = Clock(reactor)
    stores = Stores(
        users=UserStore(database),
        devices=DeviceStore(database),
        profiles=ProfileStore(database),
        registration_tokens=RegistrationTokenStore(database),
        refresh_tokens=RefreshTokenStore(database),
        login_tokens=LoginTokenStore(database),
        account_data=AccountDataStore(database),
        filters=FilterStore(database),
        directory=DirectoryStore(database),
        receipts=ReceiptStore(database),
        unread=UnreadStore(database),
        presence=PresenceStore(database),
    )
    hasher = PasswordHasher(cost=config.password_hash_cost, pepper=config.password_pepper)
    registration = RegistrationHandler(
        config.server_name, clock, stores.users, hasher, stores.profiles
    )
    last_seen = LastSeenTracker(clock, stores.devices, reactor)
    tokens = AccessTokenHandler(
        clock,
        stores.users,
        stores.devices,
        refreshable_lifetime_ms=config.refreshable_access_token_lifetime_ms,
        last_seen=last_seen,
    )
    limits = config.rate_limits
    passwords = PasswordAuthenticator(
        config.server_name,
        stores.users,
        hasher,
        RateLimiter(clock, limits.login_failed_attempts),
        password_login_enabled=config.password_login_enabled,
    )
    registration_tokens = RegistrationTokenHandler(clock, stores.registration_tokens)
    uia = UserInteractiveAuth(
        clock,
        stages={PASSWORD: passwords.uia_stage, REGISTRATION_TOKEN: registration_tokens.uia_stage},
        on_session_expired=[registration_tokens.session_expired],
    )
    profile = ProfileHandler(config.server_name, stores.users, stores.profiles)
    account = AccountHandler(stores.users, stores.devices, tokens, hasher, profile, last_seen)
    # One notifier for every stream; its positions are set once all streams are loaded.
    notifier = Notifier(reactor, StreamToken())
    account_data = AccountDataHandler(stores.account_data, notifier)
    await account_data.load()
    push_rules = PushRulesHandler(account_data)
    # The directory reads room state and the room handlers use the directory
    # (``/createRoom`` aliases, canonical-alias checks): pipeline and state first,
    # then the directory, then the room handlers with the directory in hand.
    room_core = build_room_core(
        config=config,
        database=database,
        clock=clock,
        signing_key=signing_key,
        notifier=notifier,
    )
    federation_core = build_federation_core(
        config=config,
        reactor=reactor,
        clock=clock,
        database=database,
        signing_key=signing_key,
        rooms=room_core,
    )
    directory = DirectoryHandler(
        server_name=config.server_name,
        clock=clock,
        directory=stores.directory,
        rooms=room_core.state,
        timeline=room_core.timeline,
    )
    rooms = build_rooms(
        room_core,
        config=config,
        database=database,
        clock=clock,
        notifier=notifier,
        profiles=profile,
        account=account,
        ignored_users=account_data.ignored_users,
        directory=directory,
        remote_membership=federation_core.remote_membership,
        remote_history=federation_core.remote_history,
    )
    # Directory summaries follow room state (``on_state_changed`` logs its own failures).
    rooms.pipeline.after_state_change.append(
        lambda event: directory.on_state_changed(event.room_id)
    )
    receipts = ReceiptsHandler(
        store=stores.receipts,
        events=rooms.events,
        clock=clock,
        notifier=notifier,
        position=await stores.receipts.get_max_position(),
        is_joined=rooms.timeline.is_joined,
        # The fully-read marker lives in room account data.
        on_fully_read=[
            lambda user_id, room_id, event_id: _set_fully_read(
                account_data, user_id, room_id, event_id
            )
        ],
    )
    typing = TypingHandler(reactor, notifier, rooms.timeline.is_joined)
    presence = PresenceHandler(
        reactor=reactor,
        clock=clock,
        config=config.presence,
        store=stores.presence,
        notifier=notifier,
    )
    await presence.load()
    track_presence_activity(config.server_name, presence, rooms, typing, receipts)
    deliveries = DeliveryRecorder(
        store=stores.receipts,
        clock=clock,
        notifier=notifier,
        config=config.delivery_receipts,
    )
    unread = UnreadCounter(stores.unread, rooms.events, rooms.state, push_rules)
    room_upgrades = RoomUpgradeHandler(
        server_name=config.server_name,
        pipeline=rooms.pipeline,
        state=rooms.state,
        events=rooms.events,
        profiles=profile,
        directory=directory,
    )
    # Tags, m.direct and push rules follow each local user into an upgraded room.
    carry_over = UpgradeCarryOver(
        server_name=config.server_name,
        state=rooms.state,
        events=rooms.events,
        account_data=account_data,
        push_rules=push_rules,
    )
    rooms.pipeline.after_state_change.append(carry_over.on_state_event)
    sync_sources = SyncSources(
        clock=clock,
        notifier=notifier,
        events=rooms.events,
        timeline=rooms.timeline,
        state=rooms.state,
        visibility=rooms.visibility,
        serializer=rooms.serializer,
        account_data=account_data,
        receipts=receipts,
        typing=typing,
        presence=presence,
    )
    e2ee = await build_e2ee(database, config, clock, account, notifier, rooms)
    sections: list[SyncSection] = [PresenceSection(presence), *e2ee.sync_sections()]
    sync = SyncHandler(sync_sources, unread=unread, sections=sections)
    # spec: modules/guest_access.md — guests leave rooms that stop admitting them.
    rooms.pipeline.after_state_change.append(
        GuestEviction(
            server_name=config.server_name,
            users=stores.users,
            state=rooms.state,
            membership=rooms.membership,
        ).on_state_change
    )
    devices = DeviceHandler(stores.devices, tokens, last_seen)
    media = build_media(config, reactor=reactor, clock=clock, database=database)
    # Every stream's position as of start-up, so the first tokens handed out are right.
    notifier.notify("events", await rooms.events.get_max_stream_ordering())
    notifier.notify("account_data", account_data.current_position())
    notifier.notify("receipts", receipts.current_position())
    notifier.notify("typing", typing.current_position())
    notifier.notify("presence", presence.current_position())
    handlers = Handlers(
        last_seen=last_seen,
        uia=uia,
        passwords=passwords,
        login=LoginHandler(
            clock,
            stores.users,
            tokens,
            passwords,
            stores.login_tokens,
            password_login_enabled=config.password_login_enabled,
            address_limiter=RateLimiter(clock, limits.login_address),
            account_limiter=RateLimiter(clock, limits.login_account),
        ),
        refresh=RefreshHandler(clock, stores.users, stores.refresh_tokens, tokens),
        account=account,
        devices=devices,
        profile=profile,
        registration_tokens=registration_tokens,
        client_registration=ClientRegistrationHandler(
            enabled=config.enable_registration,
            requires_token=config.registration_requires_token,
            registration=registration,
            tokens=tokens,
            registration_tokens=registration_tokens,
            limiter=RateLimiter(clock, limits.registration),
            allow_guests=config.allow_guest_access,
        ),
        registration=registration,
        tokens=tokens,
        rooms=rooms,
        sync=sync,
        legacy_sync=LegacySyncHandler(sync_sources, reader=rooms.reader, directory=directory),
        whois=WhoisHandler(config.server_name, devices),
        shared_secret=SharedSecretRegistration(
            config.registration_shared_secret,
            clock,
            registration,
            tokens,
            failed_attempts=RateLimiter(clock, config.rate_limits.login_failed_attempts),
        ),
        account_data=account_data,
        push_rules=push_rules,
        filters=FilterHandler(stores.filters),
        directory=directory,
        receipts=receipts,
        typing=typing,
        unread=unread,
        room_upgrades=room_upgrades,
        presence=presence,
        deliveries=deliveries,
        media=media,
        e2ee=e2ee,
        user_directory=build_user_directory(
            config, database, reactor, profile, account, rooms, registration
        ),
        search=build_search(config, database, reactor, rooms),
        pushers=await build_pushers(
            config, reactor, database, rooms, account, receipts, unread, push_rules, account_data
        ),
    )
    handlers.notifications = build_notifications(config, reactor, database, handlers, signing_key)
    federation = build_federation(
        federation_core,
        config=config,
        reactor=reactor,
        clock=clock,
        database=database,
        signing_key=signing_key,
        notifier=notifier,
        handlers=handlers,
    )
    return HomeServer(
        config=config,
        reactor=reactor,
        clock=clock,
        database=database,
        stores=stores,
        handlers=handlers,
        signing_key=signing_key,
        federation=federation,
    )
