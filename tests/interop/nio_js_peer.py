"""matrix-nio's side of the mixed js-sdk/nio end-to-end encryption scenario.

Usage: ``python -m tests.interop.nio_js_peer '<json>'`` with ``{"base_url", "user_id",
"device_id", "access_token", "peer", "deadline_s"}`` as the argument; prints one JSON
object with what nio observed.  Runs while the js-sdk scenario
``js_sdk_and_nio_encrypted`` (tests/interop/js/scenarios.mjs) runs in Node: the two
coordinate only through the room, as real clients do.  nio (its crypto is vodozemac)
waits for the peer's invite, joins, decrypts the peer's first message, then replies
encrypted.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from typing import Any

from nio import (
    AsyncClient,
    JoinResponse,
    KeysUploadResponse,
    MegolmEvent,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
)
from nio.exceptions import EncryptionError

REPLY = "hello js-sdk, from nio"


async def _sync_once(client: AsyncClient) -> SyncResponse:
    """One sync, then the key requests nio's sync loop would make after it."""
    response = await client.sync(timeout=5_000)
    if not isinstance(response, SyncResponse):
        raise RuntimeError(f"sync failed: {response}")
    await client.send_to_device_messages()
    if client.should_upload_keys:
        await client.keys_upload()
    if client.should_query_keys:
        await client.keys_query()
    if client.should_claim_keys:
        await client.keys_claim(client.get_users_for_key_claiming())
    return response


async def _converse(client: AsyncClient, peer: str, out: dict[str, Any]) -> None:
    uploaded = await client.keys_upload()
    if not isinstance(uploaded, KeysUploadResponse):
        raise RuntimeError(f"keys upload failed: {uploaded}")
    out["step"] = "waiting for the invite"
    room_id: str | None = None
    while room_id is None:
        response = await _sync_once(client)
        room_id = next(iter(response.rooms.invite), None)
    out["room_id"] = room_id
    joined = await client.join(room_id)
    if not isinstance(joined, JoinResponse):
        raise RuntimeError(f"join failed: {joined}")

    out["step"] = "waiting for the peer's message"
    # The room key may arrive after the event (another sync); retry those then.
    undecrypted: list[MegolmEvent] = []
    message: RoomMessageText | None = None
    while message is None:
        response = await _sync_once(client)
        timeline = response.rooms.join.get(room_id)
        events = list(timeline.timeline.events) if timeline is not None else []
        candidates: list[Any] = []
        for event in [*undecrypted, *events]:
            if isinstance(event, MegolmEvent):
                try:
                    candidates.append(client.decrypt_event(event))
                except EncryptionError:
                    if event not in undecrypted:
                        undecrypted.append(event)
                    continue
                if event in undecrypted:
                    undecrypted.remove(event)
            else:
                candidates.append(event)
        message = next(
            (e for e in candidates if isinstance(e, RoomMessageText) and e.sender == peer), None
        )
    out["received"] = {
        "event_id": message.event_id,
        "sender": message.sender,
        "body": message.body,
        "decrypted": message.decrypted,
    }
    out["room_encrypted"] = client.rooms[room_id].encrypted

    out["step"] = "replying encrypted"
    sent = await client.room_send(
        room_id,
        "m.room.message",
        {"msgtype": "m.text", "body": REPLY},
        ignore_unverified_devices=True,
    )
    if not isinstance(sent, RoomSendResponse):
        raise RuntimeError(f"send failed: {sent}")
    out["reply_event_id"] = sent.event_id
    out["step"] = "done"


async def run(config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": False}
    with tempfile.TemporaryDirectory() as store:
        client = AsyncClient(
            config["base_url"], config["user_id"], device_id=config["device_id"], store_path=store
        )
        try:
            client.restore_login(config["user_id"], config["device_id"], config["access_token"])
            if client.olm is None:
                raise RuntimeError("nio has no encryption support (matrix-nio[e2e])")
            await asyncio.wait_for(_converse(client, config["peer"], out), config["deadline_s"])
            out["ok"] = True
        except Exception as error:  # a timeout among them: reported to the test, not raised
            out["error"] = f"{type(error).__name__}: {error}"
        finally:
            await client.close()
    return out


def main() -> None:
    config = json.loads(sys.argv[1])
    print(json.dumps(asyncio.run(run(config))))


if __name__ == "__main__":
    main()
