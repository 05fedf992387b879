"""Device management: listing, renaming and deleting a user's devices (rules only).

spec: client-server-api/_index.md#device-management
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from homeserver import errors
from homeserver.auth.device_record import DeviceRecord
from homeserver.auth.last_seen import LastSeenTracker
from homeserver.auth.tokens import AccessTokenHandler
from homeserver.storage.devices import DeviceStore


class DeviceHandler:
    def __init__(
        self, devices: DeviceStore, tokens: AccessTokenHandler, last_seen: LastSeenTracker
    ) -> None:
        self._devices = devices
        self._tokens = tokens
        self._last_seen = last_seen

    def _current(self, device: DeviceRecord) -> DeviceRecord:
        # Merge in the last-seen value that is still waiting to be written.
        pending = self._last_seen.pending(device.user_id, device.device_id)
        if pending is None:
            return device
        return attrs.evolve(
            device,
            last_seen_ts=pending.ts,
            last_seen_ip=pending.ip,
            last_seen_user_agent=pending.user_agent,
        )

    async def list_devices(self, user_id: str) -> list[DeviceRecord]:
        return [self._current(d) for d in await self._devices.list_devices(user_id)]

    async def get_device(self, user_id: str, device_id: str) -> DeviceRecord:
        device = await self._devices.get_device(user_id, device_id)
        if device is None:
            raise errors.not_found("Unknown device")
        return self._current(device)

    async def rename_device(self, user_id: str, device_id: str, display_name: str) -> None:
        if not await self._devices.set_display_name(user_id, device_id, display_name):
            raise errors.not_found("Unknown device")

    async def delete_devices(self, user_id: str, device_ids: Sequence[str]) -> None:
        """Delete devices and every token they hold; unknown device IDs are ignored."""
        await self._devices.delete_devices(user_id, device_ids)
        self._tokens.invalidate_user(user_id)
