"""Scenarios run by matrix-nio, a real third-party client, in its own process.

Usage: ``python -m tests.interop.nio_scenarios <scenario> <base_url>``; prints one
JSON object with what the client observed.  nio runs on asyncio, so it stays out of
the test process and its Twisted reactor.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from typing import Any

from nio import (
    AsyncClient,
    DevicesResponse,
    LoginResponse,
    LogoutResponse,
    RegisterResponse,
    WhoamiError,
    WhoamiResponse,
)

PASSWORD = "nio password 1"


async def register_login_logout_all(base_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as store:
        client = AsyncClient(base_url, "niouser", store_path=store)
        try:
            registered = await client.register("niouser", PASSWORD, device_name="nio register")
            out["register"] = type(registered).__name__
            assert isinstance(registered, RegisterResponse), registered
            out["registered_user_id"] = registered.user_id
            logged_in = await client.login(PASSWORD, device_name="nio login")
            assert isinstance(logged_in, LoginResponse), logged_in
            out["login_user_id"] = logged_in.user_id
            out["login_device_id"] = logged_in.device_id
            whoami = await client.whoami()
            assert isinstance(whoami, WhoamiResponse), whoami
            out["whoami"] = {"user_id": whoami.user_id, "device_id": whoami.device_id}
            logout = await client.logout(all_devices=True)
            out["logout_all"] = isinstance(logout, LogoutResponse)
            # nio forgets its token after logout; reuse it to see what the server says.
            client.access_token = logged_in.access_token
            after = await client.whoami()
            out["after_logout"] = (
                {"errcode": after.status_code} if isinstance(after, WhoamiError) else "still valid"
            )
        finally:
            await client.close()
    return out


async def two_devices(base_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as store:
        first = AsyncClient(base_url, "twodev", store_path=store)
        second = AsyncClient(base_url, "twodev", store_path=store)
        try:
            registered = await first.register("twodev", PASSWORD, device_name="nio one")
            assert isinstance(registered, RegisterResponse), registered
            # nio logs in again with the device the registration created.
            one = await first.login(PASSWORD, device_name="ignored: device exists")
            two = await second.login(PASSWORD, device_name="nio two")
            assert isinstance(one, LoginResponse) and isinstance(two, LoginResponse)
            devices = await second.devices()
            assert isinstance(devices, DevicesResponse), devices
            out["login_devices"] = sorted([one.device_id, two.device_id])
            out["devices"] = [
                {
                    "device_id": d.id,
                    "display_name": d.display_name,
                    "last_seen_ip": d.last_seen_ip,
                    "has_last_seen_date": d.last_seen_date is not None,
                }
                for d in devices.devices
            ]
        finally:
            await first.close()
            await second.close()
    return out


SCENARIOS = {"register_login_logout_all": register_login_logout_all, "two_devices": two_devices}


def main() -> None:
    scenario, base_url = sys.argv[1], sys.argv[2]
    result = asyncio.run(SCENARIOS[scenario](base_url))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
