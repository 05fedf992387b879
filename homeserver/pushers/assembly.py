"""Building the pushers: the ``/pushers`` API, the engine that queues and delivers
notifications, and the kinds it delivers with.

Kinds: ``http`` always, ``webpush`` unless ``webpush.enabled: false``.  Another kind is
added with ``services.kinds.register(kind)`` (an object with the
:class:`~homeserver.pushers.kinds.PusherKind` protocol: ``name``, ``max_pending``,
``check``, ``deliver``, ``badge_changed``).  Kinds are looked up when a pusher is set and at each
delivery, so a kind registered after this function returns (before the server
listens) serves from the first request on.

Hooks this wires: new events poke the engine (``pipeline.on_new_event``); read receipts
update badges (``receipts.on_receipt``); deleted devices take their pushers along
(``account.on_devices_changed``), deactivation every pusher of the account
(``account.on_deactivate``).  ``push.enabled: false`` keeps the API but starts no
engine: nothing is queued or sent (Synapse's meaning), and ``m.webpush`` is not
advertised.

spec: client-server-api/modules/push.md, push-gateway-api.md, MSC4174
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
from twisted.internet import defer

from homeserver import __version__
from homeserver.accountdata.handler import AccountDataHandler
from homeserver.api.client import pushers as pushers_servlet
from homeserver.auth.account import AccountHandler
from homeserver.clock import Clock
from homeserver.config.model import HomeServerConfig
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.outbound import OutboundHttpClient
from homeserver.http.server import Router
from homeserver.push.handler import PushRulesHandler
from homeserver.pushers.badge import UnreadBadge
from homeserver.pushers.details import DetailsReader
from homeserver.pushers.engine import EngineDeps, PusherEngine
from homeserver.pushers.handler import PushersHandler
from homeserver.pushers.http_kind import HttpPusherKind
from homeserver.pushers.registry import PusherKinds
from homeserver.pushers.vapid import VapidKey, load_vapid_key
from homeserver.pushers.webpush_kind import WebPushKind
from homeserver.ratelimit import RateLimiter
from homeserver.reactor import IServerReactor
from homeserver.receipts.handler import ReceiptsHandler
from homeserver.rooms.assembly import RoomServices
from homeserver.storage.database import Database
from homeserver.storage.pushers import PusherStore
from homeserver.storage.stream_consumers import StreamConsumerStore
from homeserver.unread.counter import UnreadCounter

logger = logging.getLogger(__name__)


@attrs.define
class PusherServices:
    #: ``GET /pushers``, ``POST /pushers/set``.
    handler: PushersHandler
    #: Where kinds are registered (``kinds.register``).
    kinds: PusherKinds
    #: Queues and delivers; None when ``push.enabled`` is false.
    engine: PusherEngine | None
    #: The key Web Push requests are signed with; None without the ``webpush`` kind.
    vapid: VapidKey | None
    #: The pushers' own outbound client (push gateways and Web Push services).
    outbound: OutboundHttpClient
    #: ``rc_pushers``: ``POST /pushers/set`` per user.
    limiter: RateLimiter
    _starting: defer.Deferred[None] | None = attrs.field(default=None, init=False)

    def capabilities(self) -> dict[str, Any]:
        """``m.webpush`` (MSC4174): the VAPID public key clients subscribe with; not
        offered when nothing would be pushed (``push.enabled: false``)."""
        if self.vapid is None or self.engine is None:
            return {}
        return {"m.webpush": {"enabled": True, "vapid": self.vapid.public_key}}

    def register(self, router: Router, authenticator: RequestAuthenticator) -> None:
        pushers_servlet.register(router, authenticator, self.handler, self.limiter)

    def start(self) -> None:
        """Start the engine (reading who has pushers, then the events stream)."""
        if self.engine is not None and self._starting is None:
            self._starting = defer.ensureDeferred(_start_engine(self.engine))

    async def stop(self) -> None:
        """Stop the engine (deliveries under way are cut short and stay queued) and
        close the pushers' connections."""
        if self.engine is not None and self._starting is not None:
            await self._starting
            self._starting = None
            await self.engine.stop()
        await self.outbound.close()


async def _start_engine(engine: PusherEngine) -> None:
    try:
        await engine.start()
    except Exception:
        logger.exception("the pusher engine failed to start")


async def build_pushers(
    config: HomeServerConfig,
    reactor: IServerReactor,
    database: Database,
    rooms: RoomServices,
    account: AccountHandler,
    receipts: ReceiptsHandler,
    unread: UnreadCounter,
    push_rules: PushRulesHandler,
    account_data: AccountDataHandler,
) -> PusherServices:
    push = config.push
    clock = Clock(reactor)
    store = PusherStore(database)
    kinds = PusherKinds()
    handler = PushersHandler(store, kinds, clock)
    account.on_devices_changed.append(handler.on_devices_changed)
    account.on_deactivate.append(handler.on_deactivate)
    outbound = OutboundHttpClient(
        reactor,
        ip_blacklist=push.ip_range_blacklist,
        ip_whitelist=push.ip_range_whitelist,
        user_agent=f"homeserver/{__version__} (push)",
    )
    details = DetailsReader(rooms.events, rooms.state)
    badge = UnreadBadge(unread, rooms.events, group_by_room=push.group_unread_count_by_room)
    kinds.register(
        HttpPusherKind(outbound, details, badge.unread, include_content=push.include_content),
        badge_updates=True,
    )
    vapid = None
    if push.webpush.enabled:
        contact = push.webpush.vapid_contact or f"mailto:postmaster@{config.server_name}"
        vapid = await load_vapid_key(
            store, clock, path=push.webpush.vapid_private_key_path, contact=contact
        )
        kinds.register(
            WebPushKind(
                outbound, details, badge.unread, vapid, clock, include_content=push.include_content
            )
        )
    engine = None
    if push.enabled:
        engine = PusherEngine(
            store=store,
            consumers=StreamConsumerStore(database),
            deps=EngineDeps(
                events=rooms.events,
                state=rooms.state,
                push_rules=push_rules,
                ignored_users=account_data.ignored_users,
                unread=badge.unread,
                remove_pusher=handler.remove,
            ),
            kinds=kinds,
            clock=clock,
            reactor=reactor,
            jitter_delay_ms=push.jitter_delay_ms,
            max_concurrent_deliveries=push.max_concurrent_deliveries,
        )
        handler.on_set.append(engine.pusher_set)
        handler.on_removed.append(engine.pushers_removed)
        poke = engine.poke
        rooms.pipeline.on_new_event.append(lambda _event, _position: poke())
        receipts.on_receipt.append(engine.receipt_moved)
    return PusherServices(
        handler=handler,
        kinds=kinds,
        engine=engine,
        vapid=vapid,
        outbound=outbound,
        limiter=RateLimiter(clock, push.set_limit),
    )
