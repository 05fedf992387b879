"""Device management: list, show, rename and delete devices.

spec: client-server-api/_index.md#device-management
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.auth.device_record import DeviceRecord
from homeserver.auth.devices import DeviceHandler
from homeserver.auth.password_auth import PasswordAuthenticator
from homeserver.auth.uia import UserInteractiveAuth
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import parse_json_object, parse_optional_json_object
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths

#: Where the last user agent is shown (MSC3852's unstable name; the spec has no field yet).
USER_AGENT_KEY = "org.matrix.msc3852.last_seen_user_agent"


def device_json(device: DeviceRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "device_id": device.device_id,
        "display_name": device.display_name,
        "last_seen_ip": device.last_seen_ip,
        "last_seen_ts": device.last_seen_ts,
    }
    if device.last_seen_user_agent is not None:
        body[USER_AGENT_KEY] = device.last_seen_user_agent
    return body


def register(
    router: Router,
    *,
    authenticator: RequestAuthenticator,
    devices: DeviceHandler,
    passwords: PasswordAuthenticator,
    uia: UserInteractiveAuth,
) -> None:
    async def list_devices(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        found = await devices.list_devices(requester.user_id)
        return 200, {"devices": [device_json(d) for d in found]}

    async def get_device(request: MatrixRequest, device_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        return 200, device_json(await devices.get_device(requester.user_id, device_id))

    async def put_device(request: MatrixRequest, device_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        display_name = body.get("display_name")
        if display_name is None:
            # Nothing to change, but the device must exist.
            await devices.get_device(requester.user_id, device_id)
            return 200, {}
        if not isinstance(display_name, str):
            raise errors.bad_json("'display_name' must be a string")
        await devices.rename_device(requester.user_id, device_id, display_name)
        return 200, {}

    async def delete_device(request: MatrixRequest, device_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_optional_json_object(request)
        await devices.get_device(requester.user_id, device_id)  # 404 before asking for auth
        await uia.authenticate(
            body,
            operation=f"delete_device {device_id}",
            flows=await passwords.uia_flows(requester.user_id),
            requester_user_id=requester.user_id,
            client_ip=request.client_ip(),
        )
        await devices.delete_devices(requester.user_id, [device_id])
        return 200, {}

    async def delete_devices(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        _device_ids(body, required=False)
        result = await uia.authenticate(
            body,
            operation="delete_devices",
            flows=await passwords.uia_flows(requester.user_id),
            requester_user_id=requester.user_id,
            client_ip=request.client_ip(),
        )
        await devices.delete_devices(requester.user_id, _device_ids(result.params, required=True))
        return 200, {}

    for path in client_paths("/devices"):
        router.register("GET", path, list_devices)
    for path in client_paths("/devices/{device_id}"):
        router.register("GET", path, get_device)
        router.register("PUT", path, put_device)
        router.register("DELETE", path, delete_device)
    for path in client_paths("/delete_devices"):
        router.register("POST", path, delete_devices)


def _device_ids(body: dict[str, Any], *, required: bool) -> list[str]:
    if "devices" not in body:
        if required:
            raise errors.missing_param("devices")
        return []
    value = body["devices"]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise errors.bad_json("'devices' must be a list of device IDs")
    return list(value)
