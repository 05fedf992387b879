"""Building the end-to-end encryption services: device keys and key backup.

spec: client-server-api/modules/end_to_end_encryption.md
"""

from __future__ import annotations

import attrs

from homeserver.auth.account import AccountHandler
from homeserver.clock import Clock
from homeserver.e2ee.device_keys import DeviceKeysHandler
from homeserver.e2ee.key_backup import KeyBackupHandler
from homeserver.storage.database import Database
from homeserver.storage.e2e_keys import E2eKeysStore
from homeserver.storage.key_backup import KeyBackupStore


@attrs.define
class E2eeServices:
    #: ``/keys/upload``, ``/keys/query``, ``/keys/claim``; ``.sync`` adds the
    #: device's key counts to every sync response.
    device_keys: DeviceKeysHandler
    #: ``/room_keys/...``.
    key_backup: KeyBackupHandler


def build_e2ee(
    database: Database, *, server_name: str, clock: Clock, account: AccountHandler
) -> E2eeServices:
    key_backup = KeyBackupHandler(KeyBackupStore(database))
    # A deactivated account's backups go with it (its device keys go with its devices).
    account.on_deactivate.append(key_backup.forget_user)
    return E2eeServices(
        device_keys=DeviceKeysHandler(E2eKeysStore(database), server_name=server_name, clock=clock),
        key_backup=key_backup,
    )
