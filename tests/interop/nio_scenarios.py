"""Scenarios run by matrix-nio, a real third-party client, in its own process.

Usage: ``python -m tests.interop.nio_scenarios <scenario> <base_url>``; prints one
JSON object with what the client observed.  nio runs on asyncio, so it stays out of
the test process and its Twisted reactor.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    DevicesResponse,
    JoinResponse,
    KeysClaimResponse,
    KeysQueryResponse,
    KeysUploadResponse,
    LoginResponse,
    LogoutResponse,
    RegisterResponse,
    RoomCreateResponse,
    RoomPreset,
    RoomSendResponse,
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


#: Long-poll of a sync that waits for something already sent.
CATCH_UP_TIMEOUT_MS = 2000


def secret_message(label: str) -> dict[str, str]:
    """A message body no other test writes: a random token, and characters that JSON
    escapes (quotes, non-ASCII), so the database search can look for every form."""
    token = secrets.token_hex(16)
    return {"label": label, "token": token, "body": f'{label} "{token}" ünïcødé ✓'}


async def encrypted_login(base_url: str, name: str, store: str, device_name: str) -> AsyncClient:
    """A nio client with its crypto on and its own store, logged in, keys uploaded."""
    config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True)
    client = AsyncClient(base_url, name, store_path=store, config=config)
    logged_in = await client.login(PASSWORD, device_name=device_name)
    assert isinstance(logged_in, LoginResponse), logged_in
    assert client.olm is not None, "nio has no encryption support (matrix-nio[e2e])"
    if client.should_upload_keys:
        uploaded = await client.keys_upload()
        assert isinstance(uploaded, KeysUploadResponse), uploaded
    return client


async def sync_until(
    client: AsyncClient, done: Callable[[], bool], attempts: int = 10
) -> list[SyncResponse]:
    """Sync (long-polling briefly) until ``done()`` holds; fails loudly if it never does."""
    responses: list[SyncResponse] = []
    for _ in range(attempts):
        synced = await client.sync(timeout=CATCH_UP_TIMEOUT_MS, full_state=False)
        assert isinstance(synced, SyncResponse), synced
        responses.append(synced)
        if done():
            return responses
    raise AssertionError(f"{client.user_id}/{client.device_id}: condition never held")


async def receive(client: AsyncClient, room_id: str, event_id: str) -> dict[str, Any]:
    """What ``client`` made of one room event: decrypted text, or an undecryptable
    ``MegolmEvent``."""
    seen: dict[str, Any] = {}

    def arrived() -> bool:
        for synced in responses:
            room = synced.rooms.join.get(room_id)
            for event in room.timeline.events if room is not None else []:
                if event.event_id == event_id:
                    seen["type"] = type(event).__name__
                    seen["body"] = getattr(event, "body", None)
                    seen["sender"] = event.sender
                    # Set by nio only on events that came in as m.room.encrypted.
                    seen["decrypted"] = bool(getattr(event, "decrypted", False))
                    return True
        return False

    responses: list[SyncResponse] = []
    for _ in range(10):
        synced = await client.sync(timeout=CATCH_UP_TIMEOUT_MS, full_state=False)
        assert isinstance(synced, SyncResponse), synced
        responses.append(synced)
        if arrived():
            return seen
    return {"type": "never arrived"}


async def send_text(client: AsyncClient, room_id: str, body: str) -> str:
    # nio shares room keys only with verified devices unless told to ignore the
    # others; verifying devices is out of this scenario's scope.
    sent = await client.room_send(
        room_id,
        "m.room.message",
        {"msgtype": "m.text", "body": body},
        ignore_unverified_devices=True,
    )
    assert isinstance(sent, RoomSendResponse), sent
    event_id: str = sent.event_id
    return event_id


async def e2ee_exchange(base_url: str) -> dict[str, Any]:
    """Two nio clients (real Olm/Megolm, vodozemac) talk in a direct-message room the
    server encrypted by default; then bob signs in on a new device, alice's client
    learns of it from ``device_lists`` and shares the room key with it too.

    spec: client-server-api/modules/end_to_end_encryption.md#tracking-the-device-list-for-a-user
    """
    secret = {
        label: secret_message(label)
        for label in ("alice to bob", "bob to alice", "alice to both devices")
    }
    control = secret_message("plaintext control")
    out: dict[str, Any] = {"secrets": list(secret.values()), "control": control}
    with ExitStack() as stack:
        stores = [stack.enter_context(tempfile.TemporaryDirectory()) for _ in range(3)]
        for name in ("e2alice", "e2bob"):
            # Registered without a store, so each store's Olm account is made at login.
            registrar = AsyncClient(base_url, name)
            registered = await registrar.register(name, PASSWORD)
            await registrar.close()
            assert isinstance(registered, RegisterResponse), registered
        alice = await encrypted_login(base_url, "e2alice", stores[0], "alice laptop")
        bob = await encrypted_login(base_url, "e2bob", stores[1], "bob laptop")
        bob_new: AsyncClient | None = None
        try:
            assert alice.user_id is not None and bob.user_id is not None
            # No preset, no m.room.encryption: the server's default encrypts a DM.
            created = await alice.room_create(is_direct=True, invite=[bob.user_id])
            assert isinstance(created, RoomCreateResponse), created
            room_id = created.room_id
            public = await alice.room_create(preset=RoomPreset.public_chat)
            assert isinstance(public, RoomCreateResponse), public
            await sync_until(bob, lambda: room_id in bob.invited_rooms)
            assert isinstance(await bob.join(room_id), JoinResponse)
            await sync_until(bob, lambda: room_id in bob.rooms)
            await sync_until(
                alice,
                lambda: public.room_id in alice.rooms and bob.user_id in alice.rooms[room_id].users,
            )
            out["encrypted"] = {
                "dm": alice.rooms[room_id].encrypted,
                "public": alice.rooms[public.room_id].encrypted,
            }

            first = await send_text(alice, room_id, secret["alice to bob"]["body"])
            out["bob_got_alice"] = await receive(bob, room_id, first)
            reply = await send_text(bob, room_id, secret["bob to alice"]["body"])
            out["alice_got_bob"] = await receive(alice, room_id, reply)

            new = bob_new = await encrypted_login(base_url, "e2bob", stores[2], "bob phone")
            await sync_until(new, lambda: room_id in new.rooms)
            # Alice's next syncs say bob's devices changed; nio then wants his keys.
            changed: set[str] = set()
            for _ in range(10):
                synced = await alice.sync(timeout=CATCH_UP_TIMEOUT_MS, full_state=False)
                assert isinstance(synced, SyncResponse), synced
                changed.update(synced.device_list.changed)
                if bob.user_id in changed:
                    break
            out["alice_device_lists_changed"] = sorted(changed)
            out["alice_wants_bobs_keys"] = bob.user_id in alice.users_for_key_query
            queried = await alice.keys_query()
            assert isinstance(queried, KeysQueryResponse), queried
            out["alice_knows_new_device"] = new.device_id in alice.device_store[bob.user_id]
            third = await send_text(alice, room_id, secret["alice to both devices"]["body"])
            out["new_device_got_alice"] = await receive(new, room_id, third)
            out["old_device_got_alice"] = await receive(bob, room_id, third)

            await send_text(alice, public.room_id, control["body"])
        finally:
            await alice.close()
            await bob.close()
            if bob_new is not None:
                await bob_new.close()
    return out


SCENARIOS = {
    "register_login_logout_all": register_login_logout_all,
    "two_devices": two_devices,
    "e2e_keys": e2e_keys,
    "e2ee_exchange": e2ee_exchange,
}


def main() -> None:
    scenario, base_url = sys.argv[1], sys.argv[2]
    result = asyncio.run(SCENARIOS[scenario](base_url))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
