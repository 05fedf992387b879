"""Building the end-to-end encryption services: device keys, to-device messages,
device-list tracking, cross-signing and key backup.

spec: client-server-api/modules/end_to_end_encryption.md, modules/send_to_device.md
"""

from __future__ import annotations

import attrs

from homeserver.auth.account import AccountHandler
from homeserver.clock import Clock
from homeserver.config.model import HomeServerConfig
from homeserver.e2ee.cross_signing import CrossSigningHandler
from homeserver.e2ee.device_keys import DeviceKeysHandler
from homeserver.e2ee.device_lists import DeviceListTracker
from homeserver.e2ee.key_backup import KeyBackupHandler
from homeserver.e2ee.to_device import ToDeviceHandler
from homeserver.ratelimit import RateLimiter
from homeserver.rooms.assembly import RoomServices
from homeserver.storage.cross_signing import CrossSigningStore
from homeserver.storage.database import Database
from homeserver.storage.device_lists import DeviceListStore
from homeserver.storage.e2e_keys import E2eKeysStore
from homeserver.storage.key_backup import KeyBackupStore
from homeserver.storage.to_device import ToDeviceStore
from homeserver.streams.notifier import Notifier
from homeserver.sync.sections import SyncSection


@attrs.define
class E2eeServices:
    #: ``/keys/upload``, ``/keys/query``, ``/keys/claim``; ``.sync`` adds the
    #: device's key counts to every sync response.
    device_keys: DeviceKeysHandler
    #: ``/room_keys/...``.
    key_backup: KeyBackupHandler
    #: ``/keys/device_signing/upload``, ``/keys/signatures/upload``; adds the
    #: cross-signing keys and signatures to ``/keys/query``.
    cross_signing: CrossSigningHandler
    #: Who must re-query whose keys: ``user_devices_changed``, ``/keys/changes``;
    #: ``.sync`` is the ``device_lists`` section.
    device_lists: DeviceListTracker
    #: ``/sendToDevice``; ``.sync`` is the ``to_device`` section.
    to_device: ToDeviceHandler

    def sync_sections(self) -> list[SyncSection]:
        """The sync sections of end-to-end encryption, in response order."""
        return [self.device_keys.sync, self.device_lists.sync, self.to_device.sync]


async def build_e2ee(
    database: Database,
    config: HomeServerConfig,
    clock: Clock,
    account: AccountHandler,
    notifier: Notifier,
    rooms: RoomServices,
) -> E2eeServices:
    """The services, with their streams' start-up positions announced to ``notifier``."""
    server_name = config.server_name
    key_backup = KeyBackupHandler(KeyBackupStore(database))
    # A deactivated account's backups go with it (its device keys go with its devices).
    account.on_deactivate.append(key_backup.forget_user)
    device_lists = DeviceListTracker(
        DeviceListStore(database, rooms.events),
        timeline=rooms.timeline,
        events=rooms.events,
        notifier=notifier,
    )
    notifier.notify("device_lists", await device_lists.load())
    # Deleted or renamed devices, whichever handler did it (logout, deactivation...).
    account.on_devices_changed.append(device_lists.user_devices_changed)
    e2e_keys = E2eKeysStore(database)
    cross_signing = CrossSigningHandler(
        CrossSigningStore(database),
        e2e_keys,
        server_name=server_name,
        clock=clock,
        key_changes=device_lists,
    )
    # Cross-signing keys are the account's, not a device's: they go on deactivation.
    account.on_deactivate.append(cross_signing.forget_user)
    device_keys = DeviceKeysHandler(
        e2e_keys,
        server_name=server_name,
        clock=clock,
        device_lists=device_lists,
        cross_signing=cross_signing,
    )
    to_device = ToDeviceHandler(
        ToDeviceStore(database),
        server_name=server_name,
        notifier=notifier,
        clock=clock,
        limiter=RateLimiter(clock, config.rate_limits.to_device),
    )
    notifier.notify("to_device", await to_device.current_position())
    return E2eeServices(
        to_device=to_device,
        device_keys=device_keys,
        key_backup=key_backup,
        device_lists=device_lists,
        cross_signing=cross_signing,
    )
