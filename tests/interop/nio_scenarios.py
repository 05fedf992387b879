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
    KeysClaimResponse,
    KeysQueryResponse,
    KeysUploadResponse,
    LoginResponse,
    LogoutResponse,
    RegisterResponse,
    SyncResponse,
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


async def e2e_keys(base_url: str) -> dict[str, Any]:
    """nio's real Olm account (vodozemac) uploads its keys; a second nio client
    queries and claims them, verifying every signature as it does with any server,
    and starts an Olm session with the claimed key."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as store_a, tempfile.TemporaryDirectory() as store_b:
        alice = AsyncClient(base_url, "nioalice", store_path=store_a)
        bob = AsyncClient(base_url, "niobob", store_path=store_b)
        try:
            for client, name in ((alice, "nioalice"), (bob, "niobob")):
                # Registered by a client without a store, so the one with the store
                # loads its Olm account at login, as after a fresh sign-in.
                registrar = AsyncClient(base_url, name)
                registered = await registrar.register(name, PASSWORD)
                await registrar.close()
                assert isinstance(registered, RegisterResponse), registered
                logged_in = await client.login(PASSWORD, device_name=f"{name} e2e")
                assert isinstance(logged_in, LoginResponse), logged_in
            # matrix-nio[e2e] (vodozemac) must be installed for nio to have an Olm account.
            assert alice.olm is not None and bob.olm is not None, "nio has no encryption support"
            out["should_upload"] = alice.should_upload_keys
            uploaded = await alice.keys_upload()
            assert isinstance(uploaded, KeysUploadResponse), uploaded
            out["uploaded_counts"] = uploaded.signed_curve25519_count
            synced = await alice.sync(timeout=0)
            assert isinstance(synced, SyncResponse), synced
            out["sync_count"] = synced.device_key_count.signed_curve25519
            out["should_upload_after"] = alice.should_upload_keys
            assert alice.user_id is not None and alice.device_id is not None
            bob.olm.add_changed_users({alice.user_id})
            queried = await bob.keys_query()
            assert isinstance(queried, KeysQueryResponse), queried
            device = bob.device_store[alice.user_id][alice.device_id]
            out["queried_ed25519_matches"] = (
                device.ed25519 == alice.olm.account.identity_keys["ed25519"]
            )
            out["queried_curve25519_matches"] = (
                device.curve25519 == alice.olm.account.identity_keys["curve25519"]
            )
            out["display_name"] = device.display_name
            claimed = await bob.keys_claim({alice.user_id: [alice.device_id]})
            assert isinstance(claimed, KeysClaimResponse), claimed
            out["claimed"] = len(claimed.one_time_keys[alice.user_id][alice.device_id])
            # nio verified the one-time key's signature before creating the session.
            out["olm_session"] = bob.olm.session_store.get(device.curve25519) is not None
            resynced = await alice.sync(timeout=0, since=synced.next_batch)
            assert isinstance(resynced, SyncResponse), resynced
            out["count_after_claim"] = resynced.device_key_count.signed_curve25519
        finally:
            await alice.close()
            await bob.close()
    return out


SCENARIOS = {
    "register_login_logout_all": register_login_logout_all,
    "two_devices": two_devices,
    "e2e_keys": e2e_keys,
}


def main() -> None:
    scenario, base_url = sys.argv[1], sys.argv[2]
    result = asyncio.run(SCENARIOS[scenario](base_url))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
