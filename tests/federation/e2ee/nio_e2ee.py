"""matrix-nio clients (real Olm/Megolm) on two federating servers: an encrypted
conversation across them, then a new device of the remote user that the other
server's client learns of through ``device_lists`` and shares the room key with.

Usage: ``python -m tests.federation.e2ee.nio_e2ee <url_a> <url_b> <server_name_a>``;
prints one JSON object of what the clients observed (nio runs on asyncio, so it
stays out of the test process and its Twisted reactor).

spec: server-server-api.md#device-management, #end-to-end-encryption,
#send-to-device-messaging; client-server-api/modules/end_to_end_encryption.md
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
from urllib.parse import quote

from nio import AsyncClient, KeysQueryResponse, RoomCreateResponse, RoomPreset, SyncResponse

from tests.federation.interop.nio_federated import join_via, receive, register, sync_until
from tests.interop.nio_scenarios import encrypted_login, secret_message, send_text

SYNC_TIMEOUT_MS = 2000
ATTEMPTS = 30


async def conversation_and_new_device(url_a: str, url_b: str, server_name_a: str) -> dict[str, Any]:
    names = {"alice": f"e2alice{secrets.token_hex(3)}", "bob": f"e2bob{secrets.token_hex(3)}"}
    labels = ("alice to bob", "bob to alice", "alice to both devices")
    secret = {label: secret_message(label) for label in labels}
    out: dict[str, Any] = {"secrets": secret}
    await register(url_a, names["alice"])
    await register(url_b, names["bob"])
    with ExitStack() as stack:
        stores = [stack.enter_context(tempfile.TemporaryDirectory()) for _ in range(3)]
        alice = await encrypted_login(url_a, names["alice"], stores[0], "alice laptop")
        bob = await encrypted_login(url_b, names["bob"], stores[1], "bob laptop")
        bob_new: AsyncClient | None = None
        try:
            assert alice.user_id is not None and bob.user_id is not None
            # A public room bob joins without an invite: a join after a remote invite
            # currently gives the joiner's /sync no room state (so nio would not know
            # the room is encrypted), which is not what this test is about.
            created = await alice.room_create(
                preset=RoomPreset.public_chat,
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
            await asyncio.to_thread(join_via, bob, room_id, server_name_a)
            await sync_until(bob, lambda: room_id in bob.rooms, "the room after joining")

            def alice_sees_bob() -> bool:
                room = alice.rooms.get(room_id)
                return room is not None and bob.user_id in room.users

            await sync_until(alice, alice_sees_bob, "bob joined")
            out["encrypted"] = alice.rooms[room_id].encrypted
            out["bob_encrypted"] = bob.rooms[room_id].encrypted
            if not out["bob_encrypted"]:
                out["bob_state"] = await asyncio.to_thread(_room_state, bob, room_id)

            first = await send_text(alice, room_id, secret["alice to bob"]["body"])
            out["bob_got_alice"] = await receive(bob, room_id, first)
            reply = await send_text(bob, room_id, secret["bob to alice"]["body"])
            out["alice_got_bob"] = await receive(alice, room_id, reply)

            # Bob signs in on a new device: his server tells alice's (an
            # m.device_list_update), whose /sync tells her client.
            new = bob_new = await encrypted_login(url_b, names["bob"], stores[2], "bob phone")
            await sync_until(new, lambda: room_id in new.rooms, "the room on the new device")
            changed: set[str] = set()
            for _ in range(ATTEMPTS):
                synced = await alice.sync(timeout=SYNC_TIMEOUT_MS, full_state=False)
                assert isinstance(synced, SyncResponse), synced
                changed.update(synced.device_list.changed)
                if bob.user_id in changed:
                    break
            out["alice_saw_bob_change"] = bob.user_id in changed
            queried = await alice.keys_query()
            assert isinstance(queried, KeysQueryResponse), queried
            out["alice_knows_new_device"] = new.device_id in alice.device_store[bob.user_id]
            third = await send_text(alice, room_id, secret["alice to both devices"]["body"])
            out["new_device_got_alice"] = await receive(new, room_id, third)
            out["old_device_got_alice"] = await receive(bob, room_id, third)
        finally:
            await alice.close()
            await bob.close()
            if bob_new is not None:
                await bob_new.close()
    return out


def _room_state(client: AsyncClient, room_id: str) -> Any:
    """The room's state as the client's server serves it (for a failure report)."""
    request = urllib.request.Request(
        f"{client.homeserver}/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state",
        headers={"Authorization": f"Bearer {client.access_token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return [(e["type"], e["state_key"]) for e in json.loads(response.read())]


def main() -> None:
    print(json.dumps(asyncio.run(conversation_and_new_device(*sys.argv[1:]))))


if __name__ == "__main__":
    main()
