"""Building the room components in dependency order (app.py calls this once).

Two steps, because the alias directory sits between them: :func:`build_room_core`
makes the event pipeline and room state that the directory reads, then
:func:`build_rooms` makes the room handlers, which take the directory in their
constructors.  ``rooms`` never imports ``directory``: the handlers name what they
need of it as protocols (:class:`AliasDirectory`, ``creation.RoomDirectory``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import attrs

from homeserver.auth.account import AccountHandler
from homeserver.clock import Clock
from homeserver.config.model import HomeServerConfig
from homeserver.errors import MatrixError
from homeserver.events.event import Event
from homeserver.events.signing import SigningKey
from homeserver.profile.handler import ProfileHandler
from homeserver.ratelimit import RateLimiter
from homeserver.rooms.creation import RoomCreationHandler, RoomDirectory
from homeserver.rooms.hierarchy import SpaceHierarchyHandler
from homeserver.rooms.membership import MembershipHandler, RemoteMembership
from homeserver.rooms.messages import AliasResolver, MessageHandler
from homeserver.rooms.partial_state import PartialStateCompleter
from homeserver.rooms.pipeline import EventPipeline
from homeserver.rooms.reading import IgnoredUsers, RemoteHistory, RoomReader
from homeserver.rooms.relations import RelationsHandler
from homeserver.rooms.serialize import EventSerializer
from homeserver.rooms.state import RoomStateReader
from homeserver.rooms.visibility import HistoryVisibilityFilter
from homeserver.storage.database import Database
from homeserver.storage.erased_users import ErasedUserStore
from homeserver.storage.events import EventStore
from homeserver.storage.partial_state import PartialStateStore
from homeserver.storage.state import StateStore
from homeserver.storage.timeline import TimelineStore
from homeserver.streams.notifier import Notifier

logger = logging.getLogger(__name__)


class AliasDirectory(RoomDirectory, Protocol):
    """The alias directory as the room handlers use it (``DirectoryHandler``)."""

    #: Called with ``(deleter, room_id, alias)`` after a local alias is deleted.
    on_alias_deleted: list[Callable[[str, str, str], Awaitable[None]]]


@attrs.define
class RoomCore:
    """The event pipeline and room state: what the room handlers and the alias
    directory are built on."""

    events: EventStore
    state_store: StateStore
    timeline: TimelineStore
    pipeline: EventPipeline
    state: RoomStateReader
    #: Rooms joined with partial state, and completing them (``rooms.partial_state``).
    partial_state: PartialStateStore
    partial_state_completer: PartialStateCompleter


@attrs.define
class RoomServices:
    events: EventStore
    state_store: StateStore
    timeline: TimelineStore
    pipeline: EventPipeline
    state: RoomStateReader
    visibility: HistoryVisibilityFilter
    serializer: EventSerializer
    membership: MembershipHandler
    messages: MessageHandler
    creation: RoomCreationHandler
    reader: RoomReader
    relations: RelationsHandler
    hierarchy: SpaceHierarchyHandler
    partial_state: PartialStateStore
    partial_state_completer: PartialStateCompleter


def build_room_core(
    *,
    config: HomeServerConfig,
    database: Database,
    clock: Clock,
    signing_key: SigningKey,
    notifier: Notifier,
) -> RoomCore:
    state_store = StateStore(database)
    events = EventStore(database, state_store)
    timeline = TimelineStore(database, events)
    partial_state = PartialStateStore(database, state=state_store, events=events)
    pipeline = EventPipeline(
        server_name=config.server_name,
        signing_key=signing_key,
        clock=clock,
        events=events,
        state=state_store,
        partial_state=partial_state,
    )
    pipeline.on_new_event.append(lambda event, position: _notify(notifier, event, position))
    state = RoomStateReader(events, state_store, timeline)
    completer = PartialStateCompleter(
        path=pipeline.path, events=events, state=state_store, store=partial_state
    )
    return RoomCore(
        events=events,
        state_store=state_store,
        timeline=timeline,
        pipeline=pipeline,
        state=state,
        partial_state=partial_state,
        partial_state_completer=completer,
    )


def build_rooms(
    core: RoomCore,
    *,
    config: HomeServerConfig,
    database: Database,
    clock: Clock,
    notifier: Notifier,
    profiles: ProfileHandler,
    account: AccountHandler,
    ignored_users: IgnoredUsers,
    directory: AliasDirectory,
    remote_membership: RemoteMembership | None = None,
    remote_history: RemoteHistory | None = None,
) -> RoomServices:
    events, timeline, pipeline, state = core.events, core.timeline, core.pipeline, core.state
    erased = ErasedUserStore(database)
    visibility = HistoryVisibilityFilter(events, state, erased)
    serializer = EventSerializer(clock, events, timeline)
    limits = config.rate_limits
    membership = MembershipHandler(
        server_name=config.server_name,
        pipeline=pipeline,
        state=state,
        timeline=timeline,
        profiles=profiles,
        joins_limiter=RateLimiter(clock, limits.joins_local),
        invites_per_room=RateLimiter(clock, limits.invites_per_room),
        invites_per_user=RateLimiter(clock, limits.invites_per_user),
        invites_per_issuer=RateLimiter(clock, limits.invites_per_issuer),
        remote=remote_membership,
    )
    profiles.on_profile_change.append(membership.update_profile_in_rooms)
    account.on_deactivate.append(lambda user_id, erase: _record_erasure(erased, user_id, erase))
    account.on_deactivate.append(lambda user_id, erase: membership.leave_all_rooms(user_id))
    messages = MessageHandler(
        pipeline=pipeline,
        state=state,
        events=events,
        membership=membership,
        message_limiter=RateLimiter(clock, limits.message),
        resolve_local_alias=_local_alias_resolver(directory),
    )
    # The directory is built before the messages handler (it reads room state), so
    # messages hears of deleted aliases through the directory's callback list.
    directory.on_alias_deleted.append(messages.drop_alias_from_canonical)
    creation = RoomCreationHandler(
        server_name=config.server_name,
        default_room_version=config.default_room_version,
        pipeline=pipeline,
        membership=membership,
        profiles=profiles,
        directory=directory,
        encryption_by_default=config.encryption_enabled_by_default_for_room_type,
    )
    reader = RoomReader(
        events=events,
        timeline=timeline,
        state=state,
        visibility=visibility,
        serializer=serializer,
        ignored_users=ignored_users,
        remote_history=remote_history,
        full_state=core.partial_state_completer,
    )
    return RoomServices(
        events=events,
        state_store=core.state_store,
        timeline=timeline,
        pipeline=pipeline,
        state=state,
        visibility=visibility,
        serializer=serializer,
        membership=membership,
        messages=messages,
        creation=creation,
        reader=reader,
        relations=RelationsHandler(
            events=events,
            timeline=timeline,
            visibility=visibility,
            serializer=serializer,
            reader=reader,
        ),
        hierarchy=SpaceHierarchyHandler(state=state, timeline=timeline),
        partial_state=core.partial_state,
        partial_state_completer=core.partial_state_completer,
    )


async def _record_erasure(erased: ErasedUserStore, user_id: str, erase: bool) -> None:
    # Recorded before the account leaves its rooms, so that from the leave on, users
    # joining later are served the erased user's events redacted.
    if erase:
        await erased.mark_erased(user_id)


def _notify(notifier: Notifier, event: Event, position: int) -> None:
    # A membership change concerns its target even before they are in the room
    # (an invite must wake the invitee's /sync).
    users = [event.state_key] if event.type == "m.room.member" and event.state_key else []
    notifier.notify("events", position, rooms=[event.room_id], users=users)


def _local_alias_resolver(directory: RoomDirectory) -> AliasResolver:
    """Canonical-alias checks: an alias's room ID, or None for an unknown alias."""

    async def resolve_local_alias(alias: str) -> str | None:
        try:
            room_id, _servers = await directory.resolve_alias(alias)
        except MatrixError:
            return None
        return room_id

    return resolve_local_alias
