"""Building ``GET /notifications``, email addresses (``/account/3pid``) and the
``email`` pusher kind.

Built last, from the other services (:class:`Built`): the ``email`` kind is
registered with the pushers (when ``email.enable_notifs`` is on), which the address
and unsubscribe code also use, before the server listens.

spec: client-server-api/modules/push.md, client-server-api/_index.md ("Adding
Account Administrative Contact Information")
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
from signedjson.types import SigningKey

from homeserver.accountdata.handler import AccountDataHandler
from homeserver.api.client import notifications as notifications_servlet
from homeserver.api.client import threepids as threepids_servlet
from homeserver.auth.account import AccountHandler
from homeserver.auth.password_auth import PasswordAuthenticator
from homeserver.auth.uia import UserInteractiveAuth
from homeserver.clock import Clock
from homeserver.config.model import HomeServerConfig
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.server import Router
from homeserver.notifications.finder import NotificationFinder
from homeserver.notifications.listing import NotificationsHandler
from homeserver.push.handler import PushRulesHandler
from homeserver.pushers.assembly import PusherServices
from homeserver.pushers.details import DetailsReader
from homeserver.pushers.email.digest import DigestBuilder
from homeserver.pushers.email.kind import EMAIL_APP_ID, EmailPusherKind
from homeserver.pushers.email.mailer import Mailer
from homeserver.pushers.email.unsubscribe import UnsubscribeLinks, Unsubscriber
from homeserver.pushers.handler import PusherSettings, PushersHandler
from homeserver.ratelimit import RateLimiter
from homeserver.reactor import IServerReactor
from homeserver.rooms.assembly import RoomServices
from homeserver.storage.database import Database
from homeserver.storage.notifications import NotificationStore
from homeserver.storage.threepids import ThreepidStore
from homeserver.storage.unread import UnreadStore
from homeserver.threepids.handler import EMAIL, ThreepidHandler, canonical_address


class Built(Protocol):
    """The services this builds on (``app.Handlers``)."""

    @property
    def rooms(self) -> RoomServices: ...
    @property
    def account(self) -> AccountHandler: ...
    @property
    def push_rules(self) -> PushRulesHandler: ...
    @property
    def account_data(self) -> AccountDataHandler: ...
    @property
    def uia(self) -> UserInteractiveAuth: ...
    @property
    def passwords(self) -> PasswordAuthenticator: ...
    @property
    def pushers(self) -> PusherServices: ...


@attrs.define
class NotificationServices:
    notifications: NotificationsHandler
    threepids: ThreepidHandler
    unsubscriber: Unsubscriber
    uia: UserInteractiveAuth
    passwords: PasswordAuthenticator
    #: None unless email is configured with ``enable_notifs``.
    email_kind: EmailPusherKind | None

    def capabilities(self) -> dict[str, Any]:
        """``m.3pid_changes``: addresses can be added when the server sends email."""
        return {"m.3pid_changes": {"enabled": self.threepids.enabled}}

    def attach(self, pushers: PusherServices) -> None:
        if self.email_kind is not None:
            pushers.kinds.register(self.email_kind)
        self.threepids.pushers = _EmailPushers(pushers.handler)
        self.unsubscriber.pushers = pushers.handler

    def register(self, router: Router, authenticator: RequestAuthenticator) -> None:
        notifications_servlet.register(
            router, authenticator=authenticator, notifications=self.notifications
        )
        threepids_servlet.register(
            router,
            authenticator=authenticator,
            threepids=self.threepids,
            uia=self.uia,
            passwords=self.passwords,
            unsubscriber=self.unsubscriber,
        )


def build_notifications(
    config: HomeServerConfig,
    reactor: IServerReactor,
    database: Database,
    built: Built,
    signing_key: SigningKey,
) -> NotificationServices:
    clock = Clock(reactor)
    rooms, account_data = built.rooms, built.account_data
    email = config.email
    finder = NotificationFinder(
        store=NotificationStore(database),
        unread=UnreadStore(database),
        events=rooms.events,
        timeline=rooms.timeline,
        state=rooms.state,
        visibility=rooms.visibility,
        push_rules=built.push_rules,
        account_data=account_data,
    )
    mailer = Mailer(reactor, email) if email.enabled else None
    threepids = ThreepidHandler(
        store=ThreepidStore(database),
        clock=clock,
        config=email,
        mailer=mailer,
        public_baseurl=config.public_baseurl,
        server_name=config.server_name,
        limiter=RateLimiter(clock, email.validation_limit),
    )
    built.account.on_deactivate.append(lambda user_id, _erase: threepids.on_deactivate(user_id))
    links = UnsubscribeLinks(config.public_baseurl, signing_key.encode())
    kind = None
    if mailer is not None and email.enable_notifs:
        kind = EmailPusherKind(
            config=email,
            clock=clock,
            mailer=mailer,
            threepids=threepids,
            finder=finder,
            events=rooms.events,
            timeline=rooms.timeline,
            digests=DigestBuilder(
                config=email,
                state=rooms.state,
                timeline=rooms.timeline,
                details=DetailsReader(rooms.events, rooms.state),
            ),
            unsubscribe=links,
        )
    services = NotificationServices(
        notifications=NotificationsHandler(finder, rooms.serializer, account_data),
        threepids=threepids,
        unsubscriber=Unsubscriber(links),
        uia=built.uia,
        passwords=built.passwords,
        email_kind=kind,
    )
    services.attach(built.pushers)
    return services


class _EmailPushers:
    """The pushers as the address code needs them."""

    def __init__(self, pushers: PushersHandler) -> None:
        self._pushers = pushers

    async def add_email_pusher(self, user_id: str, address: str) -> None:
        # No device: the pusher stays until the address or the account goes.
        await self._pushers.set_pusher(
            user_id,
            None,
            PusherSettings(
                kind=EMAIL,
                app_id=EMAIL_APP_ID,
                pushkey=address,
                app_display_name="Email notifications",
                device_display_name=address,
                profile_tag=None,
                lang="en",
                data={},
                append=True,
            ),
        )

    async def remove_email_pushers(self, user_id: str, address: str) -> None:
        for pusher in await self._pushers.get_pushers(user_id):
            if pusher.get("kind") == EMAIL and canonical_address(pusher["pushkey"]) == address:
                await self._pushers.delete_pusher(user_id, pusher["app_id"], pusher["pushkey"])
