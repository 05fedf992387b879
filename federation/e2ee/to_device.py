"""Send-to-device messages between servers: ``m.direct_to_device`` EDUs.

Outbound (implements ``homeserver.e2ee.to_device.RemoteToDevice``): one EDU per
destination server per send — more when the messages for one server pass
:data:`MAX_EDU_BYTES`, each part with its own ``message_id`` — stored in the send's
own database transaction (with its transaction ID) and kept until a transaction
carrying it is acknowledged (the room keys of encrypted conversations travel this
way: a lost one is a message nobody can read).

Inbound: the messages for local users are queued in their devices' inboxes, once per
(sender, type, ``message_id``), so a transaction the origin sends again queues
nothing twice.

spec: server-server-api.md#send-to-device-messaging,
definitions/event-schemas/m.direct_to_device.yaml, client-server-api/modules/send_to_device.md
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Collection, Mapping
from typing import Any, Protocol

from federation.e2ee import checks
from federation.identifiers import is_user_of, server_of
from homeserver.e2ee.to_device import Messages
from homeserver.storage.to_device import RemoteEdu

logger = logging.getLogger(__name__)

DIRECT_TO_DEVICE = "m.direct_to_device"
#: Users one EDU may address; more is not a real send.
MAX_USERS = 10_000
#: Longest event type accepted.
MAX_TYPE_LENGTH = 255
#: Messages of one outbound EDU, encoded, at most (a single larger message goes
#: alone): a transaction is limited to 100 EDUs and servers cap request bodies, so
#: one send to many devices of a server is split (Synapse splits at this size too).
MAX_EDU_BYTES = 64 * 1024


class DurableEdu(Protocol):
    """The federation sender: which destinations it sends to, and the wake-up after
    EDUs were stored in a send's transaction."""

    def allows(self, destination: str) -> bool: ...

    def durable_edus_stored(self, destinations: Collection[str]) -> None: ...


class LocalInbox(Protocol):
    """``ToDeviceHandler.receive_remote``."""

    async def receive_remote(
        self, sender: str, event_type: str, message_id: str, messages: Messages
    ) -> None: ...


class FederatedToDevice:
    def __init__(self, *, server_name: str, edus: DurableEdu, inbox: LocalInbox) -> None:
        self._server_name = server_name
        self._edus = edus
        self._inbox = inbox

    def edus_for(self, sender: str, event_type: str, messages: Messages) -> list[RemoteEdu]:
        """The EDUs carrying ``messages`` (every user remote) to their servers (those
        the sender may reach), split at :data:`MAX_EDU_BYTES`."""
        by_server: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
        for user_id, by_device in messages.items():
            server = server_of(user_id)
            if server == self._server_name or not self._edus.allows(server):
                continue
            for device_id, message in by_device.items():
                by_server.setdefault(server, []).append((user_id, device_id, message))
        edus: list[RemoteEdu] = []
        for server, entries in sorted(by_server.items()):
            for part in _split(entries):
                content = {
                    "sender": sender,
                    "type": event_type,
                    # 32 characters, the most the spec allows.
                    "message_id": secrets.token_hex(16),
                    "messages": part,
                }
                edus.append((server, DIRECT_TO_DEVICE, content))
        return edus

    def edus_stored(self, destinations: Collection[str]) -> None:
        self._edus.durable_edus_stored(destinations)

    async def on_direct_to_device(self, origin: str, content: Mapping[str, Any]) -> None:
        """``m.direct_to_device`` from ``origin`` (an EDU handler)."""
        sender = content.get("sender")
        event_type = content.get("type")
        message_id = content.get("message_id")
        messages = content.get("messages")
        if (
            not is_user_of(sender, origin)
            or not isinstance(event_type, str)
            or not 0 < len(event_type) <= MAX_TYPE_LENGTH
            or checks.device_id(message_id) is None
            or not isinstance(messages, dict)
            or len(messages) > MAX_USERS
        ):
            logger.info("dropped a malformed m.direct_to_device from %s", origin)
            return
        assert isinstance(sender, str) and isinstance(message_id, str)
        local: dict[str, dict[str, dict[str, Any]]] = {}
        for user_id, by_device in messages.items():
            if not is_user_of(user_id, self._server_name) or not isinstance(by_device, dict):
                continue
            kept = {
                device_id: message
                for device_id, message in by_device.items()
                if checks.device_id(device_id) is not None and isinstance(message, dict)
            }
            if kept:
                local[user_id] = kept
        if local:
            await self._inbox.receive_remote(sender, event_type, message_id, local)


def _split(
    entries: list[tuple[str, str, dict[str, Any]]],
) -> list[dict[str, dict[str, dict[str, Any]]]]:
    """``messages`` objects of at most :data:`MAX_EDU_BYTES` encoded each (a larger
    single message alone), in order."""
    parts: list[dict[str, dict[str, dict[str, Any]]]] = []
    current: dict[str, dict[str, dict[str, Any]]] = {}
    size = 0
    for user_id, device_id, message in entries:
        # The entry's share of the encoded object, keys and punctuation included.
        entry_size = len(json.dumps([user_id, device_id, message], ensure_ascii=False)) + 8
        if current and size + entry_size > MAX_EDU_BYTES:
            parts.append(current)
            current, size = {}, 0
        current.setdefault(user_id, {})[device_id] = message
        size += entry_size
    if current:
        parts.append(current)
    return parts
