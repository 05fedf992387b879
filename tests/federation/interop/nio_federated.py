"""matrix-nio clients (real Olm/Megolm) on two federating servers, in their own process.

Usage: ``python -m tests.federation.interop.nio_federated <scenario> <url_a> <url_b>
<server_name_a>``; prints one JSON object of what the clients observed.  nio runs on
asyncio, so it stays out of the test process and its Twisted reactor.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import tempfile
import urllib.request
from contextlib import ExitStack
from typing import Any
from urllib.parse import quote, urlencode

from nio import (
    AsyncClient,
    MegolmEvent,
    RegisterResponse,
    RoomCreateResponse,
    RoomInviteResponse,
    SyncResponse,
)

from tests.interop.nio_scenarios import PASSWORD, encrypted_login, secret_message, send_text

SYNC_TIMEOUT_MS = 2000
#: Syncs of up to SYNC_TIMEOUT_MS each: a minute for anything to cross servers.
ATTEMPTS = 30


async def register(base_url: str, name: str) -> None:
    # Registered without a store, so each store's Olm account is made at login.
    registrar = AsyncClient(base_url, name)
    try:
        registered = await registrar.register(name, PASSWORD)
    finally:
        await registrar.close()
    assert isinstance(registered, RegisterResponse), registered


def join_via(client: AsyncClient, room_id: str, server_name: str) -> None:
    """POST /join with ``server_name`` (nio's join has no way to name servers)."""
    query = urlencode({"server_name": server_name})
    request = urllib.request.Request(
        f"{client.homeserver}/_matrix/client/v3/join/{quote(room_id, safe='')}?{query}",
        data=b"{}",
        method="POST",
        headers={
            "Authorization": f"Bearer {client.access_token}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200, response.read()


async def sync_until(client: AsyncClient, done: Any, what: str) -> None:
    for _ in range(ATTEMPTS):
        synced = await client.sync(timeout=SYNC_TIMEOUT_MS, full_state=False)
        assert isinstance(synced, SyncResponse), synced
        if done():
            return
    raise AssertionError(f"{client.user_id}: never saw {what}")


async def receive(client: AsyncClient, room_id: str, event_id: str) -> dict[str, Any]:
    """What ``client`` made of one room event: decrypted text, or an undecryptable
    ``MegolmEvent``.  The room key travels separately (a to-device message) and may
    arrive after the event: like a real client, retry decrypting as syncs come in."""
    found: Any = None
    for _ in range(ATTEMPTS):
        synced = await client.sync(timeout=SYNC_TIMEOUT_MS, full_state=False)
        assert isinstance(synced, SyncResponse), synced
        room = synced.rooms.join.get(room_id)
        for event in room.timeline.events if room is not None else []:
            if event.event_id == event_id:
                found = event
        if isinstance(found, MegolmEvent):
            retried = client.decrypt_event(found)
            if not isinstance(retried, MegolmEvent) and hasattr(retried, "body"):
                found = retried
        if found is not None and not isinstance(found, MegolmEvent):
            break
    if found is None:
        return {"type": "never arrived"}
    return {
        "type": type(found).__name__,
        "body": getattr(found, "body", None),
        "sender": found.sender,
        # Set by nio only on events that came in as m.room.encrypted.
        "decrypted": bool(getattr(found, "decrypted", False)),
    }


async def encrypted_conversation(url_a: str, url_b: str, server_name_a: str) -> dict[str, Any]:
    """Alice (server A) creates an encrypted room and invites Bob (server B), who
    joins; each sends a message the other's client must decrypt.

    spec: client-server-api/modules/end_to_end_encryption.md,
    server-server-api.md#end-to-end-encryption, server-server-api.md#send-to-device-messaging
    """
    names = {"alice": f"fedalice{secrets.token_hex(3)}", "bob": f"fedbob{secrets.token_hex(3)}"}
    secret = {label: secret_message(label) for label in ("alice to bob", "bob to alice")}
    out: dict[str, Any] = {"secrets": secret}
    await register(url_a, names["alice"])
    await register(url_b, names["bob"])
    with ExitStack() as stack:
        stores = [stack.enter_context(tempfile.TemporaryDirectory()) for _ in range(2)]
        alice = await encrypted_login(url_a, names["alice"], stores[0], "alice laptop")
        bob = await encrypted_login(url_b, names["bob"], stores[1], "bob laptop")
        try:
            assert alice.user_id is not None and bob.user_id is not None
            # Invited after creation: createRoom's own invite list has a test of its
            # own (test_conversation.py); this scenario is about encryption.
            created = await alice.room_create(
                initial_state=[
                    {
                        "type": "m.room.encryption",
                        "state_key": "",
                        "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                    }
                ],
            )
            assert isinstance(created, RoomCreateResponse), created
            room_id = created.room_id
            invited = await alice.room_invite(room_id, bob.user_id)
            assert isinstance(invited, RoomInviteResponse), invited
            await sync_until(bob, lambda: room_id in bob.invited_rooms, "the invite")
            await asyncio.to_thread(join_via, bob, room_id, server_name_a)
            await sync_until(bob, lambda: room_id in bob.rooms, "the room after joining")

            def alice_sees_bob() -> bool:
                room = alice.rooms.get(room_id)
                return room is not None and bob.user_id in room.users

            # (No joined_members call here: it would let nio's room_send skip the
            # device-key query of the room's members.)
            await sync_until(alice, alice_sees_bob, "bob joined")
            out["encrypted"] = {"alice": alice.rooms[room_id].encrypted}

            first = await send_text(alice, room_id, secret["alice to bob"]["body"])
            out["bob_got_alice"] = await receive(bob, room_id, first)
            out["encrypted"]["bob"] = bob.rooms[room_id].encrypted
            reply = await send_text(bob, room_id, secret["bob to alice"]["body"])
            out["alice_got_bob"] = await receive(alice, room_id, reply)
        finally:
            await alice.close()
            await bob.close()
    return out


SCENARIOS = {"encrypted_conversation": encrypted_conversation}


def main() -> None:
    scenario, *args = sys.argv[1:]
    print(json.dumps(asyncio.run(SCENARIOS[scenario](*args))))


if __name__ == "__main__":
    main()
