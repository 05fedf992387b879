"""Building the user directory: its store, the search handler, and the
``user_directory`` events-stream consumer, wired to the registration, profile,
account and event hooks that keep it current."""

from __future__ import annotations

import logging

import attrs
from twisted.internet import defer

from homeserver.auth.account import AccountHandler
from homeserver.auth.registration import RegistrationHandler
from homeserver.clock import Clock
from homeserver.config.model import HomeServerConfig
from homeserver.profile.handler import ProfileHandler
from homeserver.reactor import IServerReactor
from homeserver.rooms.assembly import RoomServices
from homeserver.storage.database import Database
from homeserver.storage.stream_consumers import StreamConsumerStore
from homeserver.storage.user_directory import UserDirectoryStore
from homeserver.streams.consumer import EventStreamConsumer
from homeserver.userdir.events import DirectoryEventHandler
from homeserver.userdir.handler import UserDirectoryHandler

logger = logging.getLogger(__name__)


@attrs.define
class UserDirectoryServices:
    #: ``POST /user_directory/search``.
    handler: UserDirectoryHandler
    #: Public rooms and remote users, from the events stream.
    consumer: EventStreamConsumer
    _indexing: defer.Deferred[None] | None = None

    def start(self) -> None:
        """Start reading the events stream and index the accounts not indexed yet
        (every account, the first time).  The server's ``start_background_tasks``."""
        self.consumer.start()
        self._indexing = defer.ensureDeferred(self.handler.index_new_users())
        self._indexing.addErrback(
            lambda failure: logger.error("indexing users failed: %s", failure.getTraceback())
        )

    async def stop(self) -> None:
        """The server's ``_stop_periodic_work`` (at shutdown)."""
        self.handler.stop()
        await self.consumer.stop()
        if self._indexing is not None:
            await self._indexing


def build_user_directory(
    config: HomeServerConfig,
    database: Database,
    reactor: IServerReactor,
    profile: ProfileHandler,
    account: AccountHandler,
    rooms: RoomServices,
    registration: RegistrationHandler,
) -> UserDirectoryServices:
    store = UserDirectoryStore(database)
    handler = UserDirectoryHandler(
        server_name=config.server_name,
        config=config.user_directory,
        store=store,
        clock=Clock(reactor),
    )
    registration.on_registered.append(handler.on_registered)
    profile.on_profile_change.append(handler.on_profile_change)
    account.on_deactivate.append(handler.on_deactivate)
    events = DirectoryEventHandler(server_name=config.server_name, store=store, state=rooms.state)
    consumer = EventStreamConsumer(
        name="user_directory",
        store=StreamConsumerStore(database),
        events=rooms.events,
        reactor=reactor,
        handle=events.handle,
        # An existing server's rooms: which are public is read off their history.
        start_from_beginning=True,
        # Handling a batch again writes the same rows.
        write_behind=True,
    )
    rooms.pipeline.on_new_event.append(lambda event, position: consumer.poke())
    return UserDirectoryServices(handler=handler, consumer=consumer)
