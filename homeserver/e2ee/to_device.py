"""Send-to-device messages: ``PUT /sendToDevice/{eventType}/{txnId}``, their delivery
in ``/sync`` (and the WebSocket stream), and their deletion once acknowledged.

A message waits in the database for its device (storage/to_device.py) and is handed
out in order of arrival, at most :data:`MAX_MESSAGES_PER_SYNC` per response.  It is
deleted only once the device acknowledges the response that carried it: a ``/sync``
whose ``since`` is past it (the spec's rule), or the WebSocket stream's ``ack`` frame.
Until then every response computed from an older token carries it again, so a
response lost on the way (or a server restart) loses nothing, and one the client has
acknowledged is never repeated.  A send is idempotent per sender device, event type
and transaction ID, in the database: a retry after a timeout, concurrent with the
first attempt or after a restart, queues nothing more.  Transaction IDs are kept for
:data:`TRANSACTION_RETENTION_MS` after their send.

Messages to users of other servers go to federation (:class:`RemoteToDevice`
builds ``m.direct_to_device`` EDUs, one or more per server), stored in the send's
own transaction: a send that failed or crashed before it committed queued nothing
(the client retries), and one that committed queued everything.  Federation hands messages from other servers back
to :meth:`ToDeviceHandler.receive_remote`; without federation they are dropped (and
logged).  Unknown local users and devices are ignored, as the spec allows.

spec: client-server-api/modules/send_to_device.md (``Server behaviour``, ``Extensions
to /sync``), #put_matrixclientv3sendtodeviceeventtypetxnid
(data/api/client-server/to_device.yaml), _index.md#transaction-identifiers
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any, Protocol

import attrs

from homeserver import errors
from homeserver.auth.tokens import Requester
from homeserver.clock import Clock
from homeserver.identifiers import is_valid_user_id
from homeserver.ratelimit import RateLimiter
from homeserver.storage.to_device import RemoteEdu, SendKey, StoredMessage, ToDeviceStore
from homeserver.streams.notifier import Notifier
from homeserver.streams.token import StreamToken
from homeserver.sync.sections import SectionRequest

logger = logging.getLogger(__name__)

#: Messages per response; more wait for the next sync (the spec recommends 100).
MAX_MESSAGES_PER_SYNC = 100

#: How long a send's transaction ID is remembered: far longer than any client retries
#: a request (spec: _index.md#transaction-identifiers leaves the period to servers).
TRANSACTION_RETENTION_MS = 24 * 60 * 60 * 1000
#: Every this many sends of this process, the expired transaction IDs are pruned.
_PRUNE_EVERY = 1000


#: ``{user ID: {device ID or "*": content}}``
Messages = Mapping[str, Mapping[str, dict[str, Any]]]


class RemoteToDevice(Protocol):
    """Sends messages to users of other servers (federation/e2ee/to_device.py)."""

    def edus_for(self, sender: str, event_type: str, messages: Messages) -> list[RemoteEdu]:
        """The durable EDUs carrying ``messages`` (every user remote) to their
        servers, to store with the send."""

    def edus_stored(self, destinations: Collection[str]) -> None:
        """EDUs for ``destinations`` were stored: send them."""


@attrs.frozen
class PendingMessages:
    messages: list[StoredMessage]
    #: More messages wait after the last one (they come in the next response).
    more: bool


class ToDeviceHandler:
    def __init__(
        self,
        store: ToDeviceStore,
        *,
        server_name: str,
        notifier: Notifier,
        clock: Clock,
        limiter: RateLimiter,
    ) -> None:
        """``limiter``: ``rc_to_device``, one token per request and sender."""
        self._store = store
        self._limiter = limiter
        self._server_name = server_name
        self._notifier = notifier
        self._clock = clock
        #: Sends until the next pruning (the first send after start-up prunes).
        self._sends_until_prune = 1
        #: The ``to_device`` section of ``/sync``.
        self.sync = ToDeviceSection(self)
        #: Carries messages to other servers; None: this server does not federate.
        self._remote: RemoteToDevice | None = None

    def use_remote(self, remote: RemoteToDevice) -> None:
        """Send messages for users of other servers through ``remote`` (federation is
        built after the homeserver's handlers: federation/assembly.py calls this)."""
        self._remote = remote

    async def current_position(self) -> int:
        """The stream's position at start-up (announced to the notifier)."""
        return await self._store.current_position()

    async def send(self, requester: Requester, event_type: str, txn_id: str, messages: Any) -> None:
        """Queue ``messages`` (``{user ID: {device ID or "*": content}}``) from the
        requester, once per transaction ID, and wake the recipients' syncs.

        400 ``M_BAD_JSON`` for a body of the wrong shape, ``M_INVALID_PARAM`` for an
        invalid user ID; 429 ``M_LIMIT_EXCEEDED`` past ``rc_to_device``.  Messages to
        users of other servers are stored as federation EDUs with the send's record
        (a retry sends nothing again); without federation they are dropped with a
        log line.
        """
        self._limiter.ratelimit(requester.user_id)
        local, remote = self._check_messages(messages)
        sender = SendKey(
            requester.user_id,
            requester.device_id or "",
            0 if requester.device_id is not None else requester.access_token_id,
        )
        now_ms = self._clock.time_msec()
        edus: list[RemoteEdu] = []
        if remote and self._remote is not None:
            edus = self._remote.edus_for(requester.user_id, event_type, remote)
        enqueued = await self._store.enqueue(
            sender, event_type, txn_id, local, now_ms=now_ms, remote=edus
        )
        if enqueued is None:
            return  # a retry: the first attempt queued (and announces) the messages
        if edus and self._remote is not None:
            self._remote.edus_stored({destination for destination, _, _ in edus})
        await self._announce(enqueued.position, {user_id for user_id, _ in enqueued.recipients})
        self._sends_until_prune -= 1
        if self._sends_until_prune <= 0:
            # One indexed DELETE per thousand sends keeps the table to a day's sends
            # without a timer of its own.
            self._sends_until_prune = _PRUNE_EVERY
            await self._store.prune_transactions(now_ms - TRANSACTION_RETENTION_MS)

    async def receive_remote(
        self, sender: str, event_type: str, message_id: str, messages: Messages
    ) -> None:
        """Queue messages another server sent (``m.direct_to_device``, already
        checked: ``sender`` is of that server, the users ours), once per sender,
        type and ``message_id``: a transaction the origin retries queues nothing
        again."""
        local = {user: by_device for user, by_device in messages.items() if self._is_local(user)}
        # A remote sender has no device or token here: its transaction key is
        # (sender, "", 0), which no local send can take (its sender is local).
        key = SendKey(sender, "", 0)
        now_ms = self._clock.time_msec()
        enqueued = await self._store.enqueue(key, event_type, message_id, local, now_ms=now_ms)
        if enqueued is not None:
            await self._announce(enqueued.position, {user_id for user_id, _ in enqueued.recipients})

    def _is_local(self, user_id: str) -> bool:
        return user_id.partition(":")[2] == self._server_name

    async def _announce(self, position: int, users: set[str]) -> None:
        await self._store.wait_until_visible(position)
        self._notifier.notify("to_device", position, users=users)

    def _check_messages(
        self, messages: Any
    ) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, dict[str, Any]]]]:
        """``(local, remote)``: the messages to local users and to users of other
        servers, with every message checked."""
        if not isinstance(messages, dict):
            raise errors.bad_json("'messages' must be an object")
        local: dict[str, dict[str, dict[str, Any]]] = {}
        remote: dict[str, dict[str, dict[str, Any]]] = {}
        for user_id, by_device in messages.items():
            if not is_valid_user_id(user_id):
                raise errors.invalid_param(f"{user_id!r} is not a valid user ID")
            if not isinstance(by_device, dict):
                raise errors.bad_json(f"'messages.{user_id}' must be an object")
            for device_id, content in by_device.items():
                if not isinstance(content, dict):
                    raise errors.bad_json(
                        f"'messages.{user_id}.{device_id}' must be an object (the content)"
                    )
            if self._is_local(user_id):
                local[user_id] = by_device
            elif by_device:
                remote[user_id] = by_device
        if remote and self._remote is None:
            logger.info(
                "dropping to-device messages for %d remote user(s): this server does not federate",
                len(remote),
            )
        return local, remote

    async def pending(
        self, user_id: str, device_id: str, after: int, up_to: int
    ) -> PendingMessages:
        """The device's messages in ``(after, up_to]``, oldest first, one response's
        worth."""
        if after >= up_to:
            return PendingMessages([], False)
        if await self._store.has_messages_after(user_id, device_id, after) is False:
            return PendingMessages([], False)
        found = await self._store.get_messages(
            user_id, device_id, after, up_to, MAX_MESSAGES_PER_SYNC + 1
        )
        return PendingMessages(found[:MAX_MESSAGES_PER_SYNC], len(found) > MAX_MESSAGES_PER_SYNC)

    async def acknowledge(self, user_id: str, device_id: str, position: int) -> None:
        """The device has every message up to ``position`` (a visible position of
        the stream): they are deleted."""
        if position > 0:
            await self._store.delete_messages_up_to(user_id, device_id, position)


class ToDeviceSection:
    """``to_device``: the requesting device's waiting messages, ``{"events": [{sender,
    type, content}]}`` in order of arrival.  A page of a longer queue limits the
    response's ``next_batch`` to its last message, so the next sync carries on from
    there.  The sync filter has nothing for to-device messages (spec: Filter), so
    none applies.

    spec: client-server-api/modules/send_to_device.md#extensions-to-sync
    """

    key = "to_device"

    def __init__(self, handler: ToDeviceHandler) -> None:
        self._handler = handler

    async def build(self, request: SectionRequest) -> dict[str, Any]:
        if request.device_id is None:
            return {"events": []}
        after = request.since.to_device if request.since is not None else 0
        pending = await self._handler.pending(
            request.user_id, request.device_id, after, request.now.to_device
        )
        if pending.more:
            request.limit_token("to_device", pending.messages[-1].stream_id)
        return {"events": [_event(message) for message in pending.messages]}

    def has_news(self, body: dict[str, Any]) -> bool:
        return bool(body["events"])

    async def acknowledge(self, user_id: str, device_id: str, token: StreamToken) -> None:
        await self._handler.acknowledge(user_id, device_id, token.to_device)


def _event(message: StoredMessage) -> dict[str, Any]:
    return {"sender": message.sender, "type": message.message_type, "content": message.content}
