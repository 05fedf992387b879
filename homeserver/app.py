"""Assembling a homeserver from its config: explicit construction, no service locator.

Each component gets exactly the collaborators it needs, in dependency order:
config -> database -> stores -> handlers -> HTTP.  The same assembly serves the
all-in-one process and (later) each worker role.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Any

import attrs
from signedjson.types import SigningKey
from twisted.internet import defer
from twisted.internet.error import CannotListenError

from homeserver.api.admin import register as admin_register
from homeserver.api.client import account, discovery
from homeserver.auth.passwords import PasswordHasher
from homeserver.auth.registration import RegistrationHandler
from homeserver.auth.shared_secret import SharedSecretRegistration
from homeserver.auth.tokens import AccessTokenHandler
from homeserver.clock import Clock
from homeserver.config.model import HomeServerConfig, ListenerConfig
from homeserver.crypto.keys import load_or_create_signing_key
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.request import MatrixSite
from homeserver.http.server import JsonResource, Router
from homeserver.ratelimit import RateLimiter
from homeserver.storage.database import Database
from homeserver.storage.devices import DeviceStore
from homeserver.storage.migrations import prepare_database
from homeserver.storage.users import UserStore

logger = logging.getLogger(__name__)


class StartupError(Exception):
    """The server cannot start; the message says why in one line."""


@attrs.define
class Stores:
    users: UserStore
    devices: DeviceStore


@attrs.define
class Handlers:
    registration: RegistrationHandler
    tokens: AccessTokenHandler
    shared_secret: SharedSecretRegistration


@attrs.define
class HomeServer:
    config: HomeServerConfig
    reactor: Any
    clock: Clock
    database: Database
    stores: Stores
    handlers: Handlers
    signing_key: SigningKey | None
    ports: list[Any] = attrs.field(factory=list)

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
            account.register(router, authenticator=RequestAuthenticator(self.handlers.tokens))
            admin_register.register(
                router,
                server_name=self.config.server_name,
                shared_secret=self.handlers.shared_secret,
            )
        return router

    def start_listening(self) -> None:
        for listener in self.config.listeners:
            site = MatrixSite(
                JsonResource(self.build_router(listener)),
                max_body_size=self.config.max_request_body_size,
                reactor=self.reactor,
            )
            bound_any = False
            for address in listener.bind_addresses:
                try:
                    port = self.reactor.listenTCP(listener.port, site, interface=address)
                except CannotListenError as error:
                    # A host without IPv6 cannot bind "::"; that is fine if another works.
                    if ":" in address and getattr(error.socketError, "errno", None) in (
                        errno.EAFNOSUPPORT,
                        errno.EADDRNOTAVAIL,
                    ):
                        logger.warning("IPv6 address %s unavailable; skipping it", address)
                        continue
                    raise StartupError(
                        f"cannot listen on {address}:{listener.port}: {error.socketError}"
                    ) from None
                bound_any = True
                self.ports.append(port)
                host = port.getHost()
                logger.info(
                    "listening on %s:%d (%s)",
                    host.host,
                    host.port,
                    ", ".join(sorted(listener.resources)),
                )
            if not bound_any:
                raise StartupError(f"no usable bind address for port {listener.port}")

    async def stop(self) -> None:
        for port in self.ports:
            await defer.maybeDeferred(port.stopListening)
        self.ports.clear()
        self.database.close()


async def build_homeserver(
    config: HomeServerConfig,
    reactor: Any,
    *,
    create_signing_key: bool = False,
    load_signing_key: bool = True,
) -> HomeServer:
    """Connect to the database, migrate it and wire up every component."""
    signing_key = (
        load_or_create_signing_key(config.signing_key_path, create=create_signing_key)
        if load_signing_key
        else None
    )
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
    except Exception:
        database.close()
        raise
    clock = Clock(reactor)
    stores = Stores(users=UserStore(database), devices=DeviceStore(database))
    hasher = PasswordHasher(rounds=config.bcrypt_rounds, pepper=config.password_pepper)
    registration = RegistrationHandler(config.server_name, clock, stores.users, hasher)
    tokens = AccessTokenHandler(clock, stores.users, stores.devices)
    handlers = Handlers(
        registration=registration,
        tokens=tokens,
        shared_secret=SharedSecretRegistration(
            config.registration_shared_secret,
            clock,
            registration,
            tokens,
            failed_attempts=RateLimiter(clock, config.rate_limits.login_failed_attempts),
        ),
    )
    return HomeServer(
        config=config,
        reactor=reactor,
        clock=clock,
        database=database,
        stores=stores,
        handlers=handlers,
        signing_key=signing_key,
    )
