"""Building message search: the indexer (a reader of the events stream) and the
``/search`` handler.  One indexer per deployment; it could run in a process of its
own, as it keeps its position in the database."""

from __future__ import annotations

import attrs
from twisted.internet.interfaces import IReactorTime

from homeserver.clock import Clock
from homeserver.config.model import HomeServerConfig
from homeserver.ratelimit import RateLimiter
from homeserver.rooms.assembly import RoomServices
from homeserver.search.context import SearchContext
from homeserver.search.handler import SearchHandler
from homeserver.search.indexer import SearchIndexer
from homeserver.storage.database import Database
from homeserver.storage.search import SearchStore
from homeserver.storage.stream_consumers import StreamConsumerStore


@attrs.define
class SearchServices:
    indexer: SearchIndexer
    handler: SearchHandler
    #: ``enable_search``: when off, nothing is indexed and ``/search`` refuses.
    enabled: bool

    def start(self) -> None:
        if self.enabled:
            self.indexer.consumer.start()

    async def stop(self) -> None:
        await self.indexer.consumer.stop()


def build_search(
    config: HomeServerConfig, database: Database, reactor: IReactorTime, rooms: RoomServices
) -> SearchServices:
    """``enable_search`` and ``rc_search`` (``/search`` requests per user) from ``config``."""
    enabled = config.enable_search
    store = SearchStore(database)
    indexer = SearchIndexer(
        store=store,
        events=rooms.events,
        timeline=rooms.timeline,
        state=rooms.state,
        consumers=StreamConsumerStore(database),
        reactor=reactor,
    )
    rooms.pipeline.on_new_event.append(indexer.on_new_event)
    handler = SearchHandler(
        enabled=enabled,
        store=store,
        progress=indexer.consumer,
        events=rooms.events,
        timeline=rooms.timeline,
        visibility=rooms.visibility,
        serializer=rooms.serializer,
        reader=rooms.reader,
        context=SearchContext(
            timeline=rooms.timeline,
            state=rooms.state,
            visibility=rooms.visibility,
            serializer=rooms.serializer,
        ),
        limiter=RateLimiter(Clock(reactor), config.rate_limits.search),
    )
    return SearchServices(indexer=indexer, handler=handler, enabled=enabled)
