"""``GET /admin/whois/{userId}``: a user's devices and where they were last seen.

Each device is one session; its connection is the device's latest request (address,
user agent, time) — the one record the last-seen tracker keeps per device, with
updates not yet flushed merged in (``DeviceHandler``), so the answer is current.

spec: client-server-api/_index.md#get_matrixclientv3adminwhoisuserid
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.auth.devices import DeviceHandler
from homeserver.auth.tokens import Requester
from homeserver.identifiers import UserID


class WhoisHandler:
    def __init__(self, server_name: str, devices: DeviceHandler) -> None:
        self._server_name = server_name
        self._devices = devices

    async def whois(self, requester: Requester, user_id: str) -> dict[str, Any]:
        """Server admins may look anyone up, other users only themselves (the spec lets
        servers restrict it so).  Permission is checked before anything about the
        target, so the answer reveals nothing to others."""
        if not requester.is_admin and requester.user_id != user_id:
            raise errors.forbidden("You are not a server admin")
        try:
            target = UserID.parse(user_id)
        except ValueError:
            raise errors.invalid_param("Invalid user ID") from None
        if target.domain != self._server_name:
            # As Synapse: other servers' users' sessions are not known here.
            raise errors.invalid_param("Can only whois a local user")
        devices: dict[str, Any] = {}
        for device in await self._devices.list_devices(user_id):
            connections = []
            if device.last_seen_ts is not None:
                connection: dict[str, Any] = {"last_seen": device.last_seen_ts}
                if device.last_seen_ip is not None:
                    connection["ip"] = device.last_seen_ip
                if device.last_seen_user_agent is not None:
                    connection["user_agent"] = device.last_seen_user_agent
                connections.append(connection)
            devices[device.device_id] = {"sessions": [{"connections": connections}]}
        # As Synapse, an unknown local user is an empty answer rather than an error.
        return {"user_id": user_id, "devices": devices}
