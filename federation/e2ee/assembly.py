"""Building end-to-end encryption across servers (``federation/assembly.py`` calls
:func:`build_e2ee_federation`): serving our users' keys, announcing their device
changes, caching remote users' device lists, querying and claiming remote keys, and
to-device messages both ways.

The homeserver's e2ee handlers exist before federation (app.py builds federation
last), so they are handed their federation collaborators here
(``use_remote_keys``, ``use_remote``, ``on_change``) rather than in their
constructors.

spec: server-server-api.md#device-management, #end-to-end-encryption,
#send-to-device-messaging
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import attrs
from twisted.internet.interfaces import IReactorTime

from federation.e2ee.announcer import (
    DEVICE_LIST_UPDATE,
    SIGNING_KEY_UPDATE,
    DeviceListAnnouncer,
    JoinAnnouncer,
)
from federation.e2ee.remote_keys import FederatedKeys, KeyClient
from federation.e2ee.remote_lists import DeviceFetcher, EventReader, RemoteDeviceLists
from federation.e2ee.serving import UserKeysServing
from federation.e2ee.to_device import DIRECT_TO_DEVICE, FederatedToDevice
from federation.inbound.edus import EduRegistry
from federation.sender.sender import FederationSender
from federation.servlets import user_keys as user_keys_servlet
from federation.transport.server import FederationRequestAuthenticator
from homeserver.clock import Clock
from homeserver.e2ee.assembly import E2eeServices
from homeserver.events.event import Event
from homeserver.http.server import Router
from homeserver.storage.database import Database
from homeserver.storage.device_list_outbound import DeviceListOutboundStore
from homeserver.storage.remote_device_lists import RemoteDeviceListStore
from homeserver.storage.stream_consumers import StreamConsumerStore

#: The listener resource that serves these endpoints.
FEDERATION_RESOURCE = "federation"


class _Client(KeyClient, DeviceFetcher, Protocol):
    """The outbound client's ``get_json`` and ``post_json``."""


@attrs.frozen
class E2eeFederation:
    serving: UserKeysServing
    authenticator: FederationRequestAuthenticator
    #: None when this server does not federate (nothing is sent or fetched).
    announcer: DeviceListAnnouncer | None
    remote_lists: RemoteDeviceLists | None
    joins: JoinAnnouncer | None = None

    def start(self) -> None:
        """Start announcing local device changes (once the sender runs)."""
        if self.announcer is not None:
            self.announcer.start()

    async def stop(self) -> None:
        if self.announcer is not None:
            await self.announcer.stop()

    def register_servlets(self, router: Router, resources: frozenset[str]) -> None:
        if FEDERATION_RESOURCE in resources:
            user_keys_servlet.register(
                router, authenticator=self.authenticator, serving=self.serving
            )


def build_e2ee_federation(
    *,
    server_name: str,
    clock: Clock,
    reactor: IReactorTime,
    database: Database,
    client: _Client,
    sender: FederationSender | None,
    edus: EduRegistry,
    e2ee: E2eeServices,
    events: EventReader,
    on_new_event: list[Callable[[Event, int], None]],
    authenticator: FederationRequestAuthenticator,
) -> E2eeFederation:
    """``on_new_event``: the event pipeline's hook (``pipeline.on_new_event``)."""
    outbound = DeviceListOutboundStore(database)
    serving = UserKeysServing(server_name=server_name, keys=e2ee.device_keys, stream_ids=outbound)
    if sender is None:
        return E2eeFederation(serving, authenticator, None, None)
    announcer = DeviceListAnnouncer(
        server_name=server_name,
        store=outbound,
        keys=e2ee.device_keys,
        sender=sender,
        stream=e2ee.device_lists,
        positions=StreamConsumerStore(database),
        reactor=reactor,
    )
    e2ee.device_lists.on_change.append(announcer.user_changed)
    joins = JoinAnnouncer(
        server_name=server_name,
        store=outbound,
        keys=e2ee.device_keys,
        sender=sender,
        events=events,
        clock=clock,
    )
    on_new_event.append(joins.on_new_event)
    lists = RemoteDeviceLists(
        server_name=server_name,
        store=RemoteDeviceListStore(database),
        client=client,
        tracker=e2ee.device_lists,
        events=events,
        clock=clock,
    )
    on_new_event.append(lists.on_new_event)
    edus.register(DEVICE_LIST_UPDATE, lists.on_device_list_update, durable=True)
    edus.register(SIGNING_KEY_UPDATE, lists.on_signing_key_update, durable=True)
    remote_keys = FederatedKeys(client=client, lists=lists)
    e2ee.device_keys.use_remote_keys(remote_keys)
    e2ee.cross_signing.use_remote_master_keys(remote_keys)
    to_device = FederatedToDevice(server_name=server_name, edus=sender, inbox=e2ee.to_device)
    edus.register(DIRECT_TO_DEVICE, to_device.on_direct_to_device, durable=True)
    e2ee.to_device.use_remote(to_device)
    return E2eeFederation(serving, authenticator, announcer, lists, joins)
