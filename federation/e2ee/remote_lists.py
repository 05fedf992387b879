"""Remote users' device lists: the cache (storage/remote_device_lists.py) kept
current by their servers' ``m.device_list_update`` and ``m.signing_key_update``
EDUs, and fetched whole (``GET /user/devices/{userId}``) when first needed or when
an update shows that one was missed.

- An update whose ``prev_id`` names only updates we applied (or the snapshot's
  ``stream_id``) is applied; one naming an update we never saw marks the list stale
  and a fetch starts in the background (one at a time per user).
- Every update of a user who shares a room with a local user — applied or not —
  puts them in those local users' ``device_lists.changed`` (the tracker), so their
  clients query the keys again.
- The cache is trusted only while the remote user shares a room with a local user:
  otherwise their server no longer sends us updates, so a list found unshared is
  forgotten and fetched again if it is ever needed.  A join can end a time of not
  sharing one (updates then went elsewhere): a remote user's join marks their list
  stale, and a local user's join the lists of the room's members, so each is fetched
  again before it is next used.

spec: server-server-api.md#device-management, #end-to-end-encryption,
client-server-api/modules/end_to_end_encryption.md#tracking-the-device-list-for-a-user
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from twisted.internet import defer

from federation.e2ee import checks
from federation.e2ee.checks import canonical
from federation.identifiers import is_user_of, server_of
from federation.joins import is_new_join
from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.storage.remote_device_lists import (
    CachedDeviceList,
    DeviceUpdate,
    RemoteDevice,
    RemoteDeviceListStore,
    UpdateOutcome,
)

logger = logging.getLogger(__name__)

USER_DEVICES_PATH = "/_matrix/federation/v1/user/devices/"
#: Largest ``/user/devices`` answer read (a thousand devices with their keys fit).
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
#: How long a background fetch (after a missed update) waits for the server.
RESYNC_TIMEOUT_S = 30.0
#: Background fetches (after missed updates) under way per server at most.
MAX_BACKGROUND_PER_SERVER = 5
#: Requests one fetch makes while updates keep making its answers out of date.
MAX_FETCHES = 3


class DeviceFetcher(Protocol):
    """The outbound federation client (``FederationHttpClient.get_json``)."""

    async def get_json(
        self,
        destination: str,
        path: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a Twisted coroutine)
        max_size: int = ...,
    ) -> Any: ...


class ChangeTracker(Protocol):
    """``DeviceListTracker``: local users sharing a room with ``user_id`` must query
    their keys again."""

    async def user_devices_changed(self, user_id: str) -> None: ...


class EventReader(Protocol):
    """``EventStore.get_events``."""

    async def get_events(self, event_ids: Sequence[str]) -> Mapping[str, Event]: ...


class BadDeviceList(Exception):
    """A server's ``/user/devices`` answer is not a device list of the user asked."""


class RemoteDeviceLists:
    def __init__(
        self,
        *,
        server_name: str,
        store: RemoteDeviceListStore,
        client: DeviceFetcher,
        tracker: ChangeTracker,
        events: EventReader,
        clock: Clock,
    ) -> None:
        self._server_name = server_name
        self._events = events
        self._store = store
        self._client = client
        self._tracker = tracker
        self._clock = clock
        #: Fetches under way per user, with the callers waiting for them (who
        #: share the one request).
        self._fetching: dict[str, list[defer.Deferred[CachedDeviceList]]] = {}
        #: Background fetches under way per server.
        self._background: dict[str, int] = {}

    # --- EDUs --------------------------------------------------------------------------

    async def on_device_list_update(self, origin: str, content: Mapping[str, Any]) -> None:
        """``m.device_list_update`` from ``origin`` (an EDU handler)."""
        update = _parse_update(origin, content)
        if update is None:
            logger.info("dropped a malformed m.device_list_update from %s", origin)
            return
        if not await self._store.shared_with_local_users([update.user_id], self._server_name):
            # Nobody here tracks the user: nothing to keep current.
            return
        outcome = await self._store.apply_update(update, now_ms=self._clock.time_msec())
        if outcome in (UpdateOutcome.DUPLICATE, UpdateOutcome.REFUSED):
            if outcome == UpdateOutcome.REFUSED:
                logger.info("%s has too many devices: an update was not kept", update.user_id)
            return
        if outcome == UpdateOutcome.STALE:
            self._fetch_in_background(update.user_id)
        await self._tracker.user_devices_changed(update.user_id)

    async def on_signing_key_update(self, origin: str, content: Mapping[str, Any]) -> None:
        """``m.signing_key_update`` from ``origin`` (an EDU handler)."""
        user_id = content.get("user_id")
        if not isinstance(user_id, str) or not is_user_of(user_id, origin):
            logger.info("dropped a malformed m.signing_key_update from %s", origin)
            return
        keys = checks.signing_keys_of(
            content, user_id, {"master_key": "master", "self_signing_key": "self_signing"}
        )
        if not keys:
            return
        if not await self._store.shared_with_local_users([user_id], self._server_name):
            return
        await self._store.set_signing_keys(
            user_id, {usage: canonical(key) for usage, key in keys.items()}
        )
        await self._tracker.user_devices_changed(user_id)

    # --- joins ---------------------------------------------------------------------------

    def on_new_event(self, event: Event, _position: int) -> None:
        """``pipeline.on_new_event``: joins may end a time of not sharing a room."""
        if event.type != "m.room.member" or event.membership != "join":
            return
        defer.ensureDeferred(self._joined(event)).addErrback(
            lambda failure: logger.error(
                "could not mark device lists stale after %s: %s",
                event.event_id,
                failure.getErrorMessage(),
            )
        )

    async def _joined(self, event: Event) -> None:
        user_id = event.state_key or ""
        if not await is_new_join(event, self._events):
            return  # a profile change, not a join
        if server_of(user_id) != self._server_name:
            await self._store.mark_stale_users([user_id])
        else:
            await self._store.mark_room_members_stale(event.room_id)

    async def members_added(self, _room_id: str, user_ids: list[str]) -> None:
        """A partial-state room's completion added these members without events:
        the lists we hold of the remote ones may have missed updates meanwhile."""
        remote = [u for u in user_ids if server_of(u) != self._server_name]
        if remote:
            await self._store.mark_stale_users(remote)

    # --- lookups -----------------------------------------------------------------------

    async def trusted_lists(self, user_ids: Collection[str]) -> dict[str, CachedDeviceList | None]:
        """For each of ``user_ids`` sharing a room with a local user, its cached list
        if current, else None (to be fetched); users sharing none are left out (and
        their caches forgotten)."""
        shared = await self._store.shared_with_local_users(user_ids, self._server_name)
        cached = await self._store.get_lists(user_ids)
        unshared = [user_id for user_id in cached if user_id not in shared]
        await self._store.forget(unshared)
        found: dict[str, CachedDeviceList | None] = {}
        for user_id in shared:
            entry = cached.get(user_id)
            found[user_id] = entry if entry is not None and not entry.stale else None
        return found

    async def fetch(self, user_id: str, timeout_s: float) -> CachedDeviceList:
        """The user's whole list from their server, stored; concurrent callers share
        one request.  Raises what the client raises, or :class:`BadDeviceList`."""
        waiting = self._fetching.get(user_id)
        if waiting is not None:
            mine: defer.Deferred[CachedDeviceList] = defer.Deferred()
            waiting.append(mine)
            return await mine
        self._fetching[user_id] = []
        try:
            result = await self._fetch(user_id, timeout_s)
        except Exception as error:
            for waiter in self._fetching.pop(user_id, []):
                waiter.errback(error)
            raise
        for waiter in self._fetching.pop(user_id, []):
            waiter.callback(result)
        return result

    def _fetch_in_background(self, user_id: str) -> None:
        """Fetch the (stale) list now, unless :data:`MAX_BACKGROUND_PER_SERVER`
        fetches from its server are under way: then it stays stale and is fetched
        when next used (a server sending gap after gap gets no more of our requests
        than that)."""
        server = server_of(user_id)
        if user_id in self._fetching:
            return  # a fetch under way reads the generation again if it went stale
        running = self._background.get(server, 0)
        if running >= MAX_BACKGROUND_PER_SERVER:
            logger.info("not fetching %s's device list now: too many from %s", user_id, server)
            return
        self._background[server] = running + 1

        def failed(failure: Any) -> None:
            logger.info(
                "could not fetch the device list of %s: %s", user_id, failure.getErrorMessage()
            )

        def done(result: object) -> object:
            left = self._background.get(server, 1) - 1
            if left > 0:
                self._background[server] = left
            else:
                self._background.pop(server, None)
            return result

        defer.ensureDeferred(self.fetch(user_id, RESYNC_TIMEOUT_S)).addErrback(failed).addBoth(done)

    async def _fetch(self, user_id: str, timeout_s: float) -> CachedDeviceList:
        """Fetch until a snapshot is current: an update that went stale while a
        request was in flight may be newer than its answer, so the store keeps the
        list stale and it is fetched once more (at most :data:`MAX_FETCHES` times;
        past that it stays stale, fetched again when next used)."""
        server = server_of(user_id)
        for _ in range(MAX_FETCHES):
            generation = await self._store.get_generation(user_id)
            answer = await self._client.get_json(
                server,
                USER_DEVICES_PATH + quote(user_id, safe=""),
                timeout=timeout_s,
                max_size=MAX_RESPONSE_BYTES,
            )
            stream_id, devices, signing = _parse_user_devices(user_id, answer)
            current = await self._store.replace_list(
                user_id,
                stream_id,
                devices,
                signing,
                now_ms=self._clock.time_msec(),
                generation=generation,
            )
            if current:
                break
        return CachedDeviceList(user_id, stream_id, not current, list(devices), dict(signing))


def _parse_update(origin: str, content: Mapping[str, Any]) -> DeviceUpdate | None:
    user_id = content.get("user_id")
    if not isinstance(user_id, str) or not is_user_of(user_id, origin):
        return None
    device_id = checks.device_id(content.get("device_id"))
    stream_id = checks.stream_id(content.get("stream_id"))
    if device_id is None or stream_id is None:
        return None
    raw_prev = content.get("prev_id", [])
    if raw_prev is None:
        raw_prev = []
    if not isinstance(raw_prev, list) or len(raw_prev) > 100:
        return None
    prev_ids = tuple(checks.stream_id(p) for p in raw_prev)
    if any(p is None for p in prev_ids):
        return None
    deleted = content.get("deleted", False) is True
    key_json: str | None = None
    if not deleted and content.get("keys") is not None:
        keys = checks.device_keys(content.get("keys"), user_id, device_id)
        if keys is None:
            return None
        key_json = canonical(keys)
    return DeviceUpdate(
        user_id=user_id,
        device_id=device_id,
        stream_id=stream_id,
        prev_ids=tuple(p for p in prev_ids if p is not None),
        deleted=deleted,
        key_json=key_json,
        display_name=checks.display_name(content.get("device_display_name")),
    )


def _parse_user_devices(
    user_id: str, answer: object
) -> tuple[int, Sequence[RemoteDevice], dict[str, str]]:
    """``(stream_id, devices, signing keys)`` of a ``/user/devices`` answer; devices
    that are not valid are left out."""
    if not isinstance(answer, dict) or answer.get("user_id") != user_id:
        raise BadDeviceList(f"the answer is not {user_id}'s device list")
    stream_id = checks.stream_id(answer.get("stream_id"))
    listed = answer.get("devices")
    if stream_id is None or not isinstance(listed, list):
        raise BadDeviceList("'stream_id' or 'devices' is missing or invalid")
    devices: dict[str, RemoteDevice] = {}
    for entry in listed[: checks.MAX_DEVICES_PER_USER]:
        if not isinstance(entry, dict):
            continue
        device_id = checks.device_id(entry.get("device_id"))
        if device_id is None:
            continue
        keys = checks.device_keys(entry.get("keys"), user_id, device_id)
        if keys is None:
            continue
        devices[device_id] = RemoteDevice(
            device_id, canonical(keys), checks.display_name(entry.get("device_display_name"))
        )
    signing = checks.signing_keys_of(
        answer, user_id, {"master_key": "master", "self_signing_key": "self_signing"}
    )
    return (
        stream_id,
        list(devices.values()),
        {usage: canonical(key) for usage, key in signing.items()},
    )
