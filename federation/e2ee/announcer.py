"""Telling other servers of local users' device changes: ``m.device_list_update``
and ``m.signing_key_update`` EDUs, durable, to every server sharing a room with the
user.

The homeserver records *that* a user's devices changed (``DeviceListTracker``,
which calls :meth:`DeviceListAnnouncer.user_changed`); the EDUs say *which device*
changed and how.  So each user's last announcement is kept
(storage/device_list_outbound.py: a digest per device and cross-signing key, as
other servers were told them): a change is compared with it, and each device that
is new, changed or gone gets one EDU, numbered in the user's own sequence
(``stream_id`` one more than the last, ``prev_id`` the last), the announcement
recorded in the same transaction.  Device display names are not shared with other
servers (as Synapse's default, ``allow_device_name_lookup_over_federation: false``):
a rename changes nothing they see and sends nothing.

The announcer consumes the ``device_lists`` stream from a position of its own in
``stream_consumers``, and records each announcement, its EDUs and that position in
one transaction: a crash, an outage or a failed read is retried from the stored
position, so no change goes unannounced.  Its poke/run/poll/wait loop is the one
stream readers share (``homeserver.streams.follower``).

spec: server-server-api.md#device-management, #end-to-end-encryption
(``m.signing_key_update``), definitions/event-schemas/m.device_list_update.yaml
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from federation.e2ee.checks import canonical
from federation.identifiers import server_of
from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.storage.device_list_outbound import Announced, DeviceListOutboundStore
from homeserver.streams.follower import StreamFollower

logger = logging.getLogger(__name__)

DEVICE_LIST_UPDATE = "m.device_list_update"
SIGNING_KEY_UPDATE = "m.signing_key_update"
#: Request field of each cross-signing usage other servers see.
SIGNING_FIELDS = {"master": "master_key", "self_signing": "self_signing_key"}


class LocalKeys(Protocol):
    """A local user's keys as other servers see them (``DeviceKeysHandler``)."""

    async def query_local(
        self, requester: str, device_keys: Mapping[str, Sequence[str]]
    ) -> dict[str, Any]: ...


class AnnouncementSender(Protocol):
    """The federation sender: which destinations it sends to, and the wake-up after
    an announcement stored its EDUs."""

    def allows(self, destination: str) -> bool: ...

    def durable_edus_stored(self, destinations: Collection[str]) -> None: ...


class ChangeStream(Protocol):
    """``DeviceListTracker``: the ``device_lists`` stream's visible position."""

    async def visible_position(self) -> int: ...


class ReplacedEvents(Protocol):
    """``EventStore.get_events``."""

    async def get_events(self, event_ids: Sequence[str]) -> Mapping[str, Event]: ...


class ConsumerPositions(Protocol):
    """``StreamConsumerStore``: where a named consumer stopped."""

    async def get_position(self, name: str) -> int | None: ...

    async def set_position(self, name: str, position: int) -> None: ...


#: The announcer's name in ``stream_consumers``.
CONSUMER_NAME = "federation_device_lists"
#: Changes read per batch.
BATCH_SIZE = 100
#: A missed poke only delays an announcement this long.
POLL_INTERVAL_S = 30.0
#: After a failure (a database outage), the batch is tried again after this long.
RETRY_DELAY_S = 10.0
#: Longest a change's request waits for its announcement.
WAIT_S = 10.0


#: The requester of queries made on behalf of other servers: nobody here, so no
#: user-signing signature (shown only to its signer) is included.
NOBODY = ""


async def public_keys(keys: LocalKeys, user_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(devices, signing)``: the user's device keys by device ID (with the
    signatures anyone may see, without display names) and their public
    cross-signing keys by usage."""
    answer = await keys.query_local(NOBODY, {user_id: []})
    devices = {
        device_id: {k: v for k, v in value.items() if k != "unsigned"}
        for device_id, value in answer["device_keys"].get(user_id, {}).items()
    }
    signing: dict[str, Any] = {}
    for usage, field in (("master", "master_keys"), ("self_signing", "self_signing_keys")):
        key = answer.get(field, {}).get(user_id)
        if key is not None:
            signing[usage] = key
    return devices, signing


class DeviceListAnnouncer:
    """A consumer of the ``device_lists`` stream with its own stored position: each
    change of a local user is announced (the diff against what was announced, its
    EDUs stored and the position moved, in one transaction), in stream order, so a
    crash or an outage only delays announcements: the work is redone from the
    stored position, and a redone diff finds nothing new to send."""

    def __init__(
        self,
        *,
        server_name: str,
        store: DeviceListOutboundStore,
        keys: LocalKeys,
        sender: AnnouncementSender,
        stream: ChangeStream,
        positions: ConsumerPositions,
        reactor: IReactorTime,
    ) -> None:
        self._server_name = server_name
        self._store = store
        self._keys = keys
        self._sender = sender
        self._stream = stream
        self._positions = positions
        self._reactor = reactor
        self._clock = Clock(reactor)
        #: Every change up to here is announced (None until read at start).
        self._position: int | None = None
        self._follower = StreamFollower(
            reactor=reactor,
            catch_up=self.catch_up,
            position=lambda: self._position,
            poll_interval_s=POLL_INTERVAL_S,
            retry_delay_s=RETRY_DELAY_S,
            failure_message="announcing device-list changes failed; retrying",
            # Requests waiting for their announcement return (it is done later).
            release_waiters_on_failure=True,
        )

    @property
    def position(self) -> int | None:
        return self._position

    def start(self) -> None:
        self._follower.start()

    async def stop(self) -> None:
        await self._follower.stop()

    async def user_changed(self, _user_id: str) -> None:
        """``DeviceListTracker.on_change``: a change is visible; read the stream, and
        wait (at most :data:`WAIT_S`) until it is announced, so the request that
        made the change returns with its EDUs queued, as clients expect (unless the
        announcer is failing: then nobody waits, it catches up later)."""
        target = await self._stream.visible_position()
        self.poke()
        if (self._position or 0) >= target:
            return
        await self._follower.wait_for(target, WAIT_S)

    def poke(self) -> None:
        self._follower.poke()

    async def catch_up(self) -> None:
        """Announce every visible change after the stored position."""
        if self._position is None:
            stored = await self._positions.get_position(CONSUMER_NAME)
            if stored is None:
                # First run: changes from before federation was on are not news.
                stored = await self._stream.visible_position()
                await self._positions.set_position(CONSUMER_NAME, stored)
            self._position = stored
        while not self._follower.stopped:
            up_to = await self._stream.visible_position()
            rows = await self._store.changes_after(self._position, up_to, BATCH_SIZE)
            full = len(rows) == BATCH_SIZE
            reached = rows[-1][0] if full else up_to
            # Users in order of their first change: once a user is announced, every
            # change before the next user's first is covered (the keys are read now,
            # after all of them), so the position can move to just before it.
            firsts: dict[str, int] = {}
            for stream_id, user_id in rows:
                firsts.setdefault(user_id, stream_id)
            order = list(firsts.items())
            for index, (user_id, _) in enumerate(order):
                covered = order[index + 1][1] - 1 if index + 1 < len(order) else reached
                if server_of(user_id) == self._server_name:
                    await self._announce(user_id, covered)
                    self._position = covered
                    self._follower.advanced()
            if reached > self._position:
                await self._positions.set_position(CONSUMER_NAME, reached)
                self._position = reached
            self._follower.advanced()
            if not full:
                return

    async def _announce(self, user_id: str, position: int) -> None:
        devices, signing = await public_keys(self._keys, user_id)
        destinations = await self._store.announce_with_edus(
            user_id,
            lambda before: _announcement(user_id, before, devices, signing),
            server_name=self._server_name,
            allows=self._sender.allows,
            consumer=CONSUMER_NAME,
            position=position,
            now_ms=self._clock.time_msec(),
        )
        if destinations:
            self._sender.durable_edus_stored(destinations)


class JoinAnnouncer:
    """A local user's join to a room with servers that share no other room with
    them: those servers are sent the user's devices (``m.device_list_update``, each
    as last announced, so no new ``stream_id`` is used and the servers already
    following the sequence see nothing), which puts the user in their users'
    ``device_lists.changed``; a server without the list fetches it whole.  Done in
    the background after the join is visible (a crash in between loses only this
    notice: those servers' clients still query keys of new room members).

    spec: server-server-api.md#device-management ("must send m.device_list_update
    EDUs to ... servers with which it shares a room for the first time")
    """

    def __init__(
        self,
        *,
        server_name: str,
        store: DeviceListOutboundStore,
        keys: LocalKeys,
        sender: AnnouncementSender,
        events: ReplacedEvents,
        clock: Clock,
    ) -> None:
        self._server_name = server_name
        self._store = store
        self._keys = keys
        self._sender = sender
        self._events = events
        self._clock = clock

    def on_new_event(self, event: Event, _position: int) -> None:
        """``pipeline.on_new_event``."""
        if event.type != "m.room.member" or event.membership != "join":
            return
        if server_of(event.state_key or "") != self._server_name:
            return
        defer.ensureDeferred(self.joined(event)).addErrback(
            lambda failure: logger.error(
                "could not send device lists after %s: %s",
                event.event_id,
                failure.getErrorMessage(),
            )
        )

    async def joined(self, event: Event) -> None:
        user_id = event.state_key or ""
        replaced = event.internal.replaces_state
        if replaced is not None:
            before = (await self._events.get_events([replaced])).get(replaced)
            if before is not None and before.membership == "join":
                return  # a profile change, not a join
        await self._announce_in(user_id, event.room_id)

    async def room_completed(self, room_id: str, local_members: Sequence[str]) -> None:
        """A room joined with partial state has its full member list: the servers it
        adds are new to our members there as a join's would be."""
        for user_id in local_members:
            await self._announce_in(user_id, room_id)

    async def _announce_in(self, user_id: str, room_id: str) -> None:
        new = await self._store.servers_new_to(user_id, room_id)
        new = {s for s in new if s != self._server_name and self._sender.allows(s)}
        if not new:
            return
        stream_id = await self._store.current_stream_id(user_id)
        if stream_id == 0:
            return  # nothing announced yet: the first change starts the sequence
        devices, _ = await public_keys(self._keys, user_id)
        edus: list[tuple[str, str, Mapping[str, Any]]] = []
        for device_id, keys in sorted(devices.items()):
            content = {
                "user_id": user_id,
                "device_id": device_id,
                "stream_id": stream_id,
                "prev_id": [stream_id - 1] if stream_id > 1 else [],
                "deleted": False,
                "keys": keys,
            }
            edus.extend((server, DEVICE_LIST_UPDATE, content) for server in sorted(new))
        if edus:
            await self._store.store_edus(edus, now_ms=self._clock.time_msec())
            self._sender.durable_edus_stored(new)


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode("utf-8")).hexdigest()


def _announcement(
    user_id: str,
    before: Announced,
    devices: Mapping[str, Any],
    signing: Mapping[str, Any],
) -> tuple[Announced, list[tuple[str, dict[str, Any]]]]:
    """The new announced state and the EDUs that tell it, in order."""
    edus: list[tuple[str, dict[str, Any]]] = []
    stream_id = before.stream_id
    digests = {device_id: _digest(value) for device_id, value in devices.items()}
    changed = sorted(d for d, digest in digests.items() if before.devices.get(d) != digest)
    deleted = sorted(set(before.devices) - set(digests))
    for device_id in [*changed, *deleted]:
        content: dict[str, Any] = {
            "user_id": user_id,
            "device_id": device_id,
            "stream_id": stream_id + 1,
            "prev_id": [stream_id] if stream_id > 0 else [],
            "deleted": device_id in deleted,
        }
        if device_id in digests:
            content["keys"] = devices[device_id]
        edus.append((DEVICE_LIST_UPDATE, content))
        stream_id += 1
    signing_digests = {usage: _digest(key) for usage, key in signing.items()}
    if signing_digests and signing_digests != before.signing:
        update: dict[str, Any] = {"user_id": user_id}
        for usage, key in signing.items():
            update[SIGNING_FIELDS[usage]] = key
        edus.append((SIGNING_KEY_UPDATE, update))
    return Announced(stream_id, digests, signing_digests), edus
