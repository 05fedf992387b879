"""Nothing the server acknowledged is lost when it is killed (SIGKILL) mid-traffic,
and what clients hold (sync tokens, transaction IDs) stays valid after the restart."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

from tests.api.client.test_rooms import create_room, send_text
from tests.api.client.test_sync import sync, timeline_texts
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def _all_message_ids(server: ServerProcess, token: str, room_id: str) -> set[str]:
    found: set[str] = set()
    params = "dir=b&limit=100"
    while True:
        page = call(server, "GET", f"/rooms/{quote(room_id)}/messages?{params}", token=token)
        assert page.status == 200, page.body
        body = page.json()
        found |= {e["event_id"] for e in body["chunk"] if e["type"] == "m.room.message"}
        if not body["chunk"] or "end" not in body:
            return found
        params = f"dir=b&limit=100&from={body['end']}"


def test_acknowledged_events_survive_a_kill_during_concurrent_sends(
    open_server: ServerProcess,
) -> None:
    tokens = [register(open_server, f"user{i}")["access_token"] for i in range(4)]
    room_id = create_room(open_server, tokens[0], preset="public_chat")
    for token in tokens[1:]:
        assert call(open_server, "POST", f"/join/{room_id}", token=token, body={}).status == 200
    before = sync(open_server, tokens[0])["next_batch"]
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def keep_sending(index: int) -> None:
        number = 0
        while not stop.is_set():
            try:
                response = send_text(
                    open_server, tokens[index], room_id, f"{index}-{number}", f"t{index}-{number}"
                )
            except OSError:
                return  # the server is gone: this send was never acknowledged
            if response.status == 200:
                with lock:
                    acknowledged.append(response.json()["event_id"])
            number += 1

    with ThreadPoolExecutor(len(tokens)) as pool:
        for index in range(len(tokens)):
            pool.submit(keep_sending, index)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                if len(acknowledged) >= 60:
                    break
            time.sleep(0.01)
        else:
            stop.set()
            raise AssertionError(f"only {len(acknowledged)} sends acknowledged in 60 s")
        open_server.kill()  # mid-traffic: sends are in flight
        stop.set()
    open_server.start()
    stored = _all_message_ids(open_server, tokens[0], room_id)
    assert set(acknowledged) <= stored, f"lost {len(set(acknowledged) - stored)} events"
    # A token from before the crash still works and sees everything after it.
    after = sync(open_server, tokens[0], f"?since={before}&timeout=0")
    seen = {
        e["event_id"]
        for e in after["rooms"]["join"][room_id]["timeline"]["events"]
        if e["type"] == "m.room.message"
    }
    newest = _all_message_ids(open_server, tokens[0], room_id)
    assert seen <= newest and seen


def test_transaction_ids_and_positions_survive_a_kill(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    first = send_text(open_server, alice, room_id, "before the crash", "txn-1").json()["event_id"]
    token = sync(open_server, alice)["next_batch"]
    call(
        open_server,
        "PUT",
        "/user/@alice:localhost/account_data/im.example.theme",
        token=alice,
        body={"theme": "dark"},
    )
    open_server.kill()
    open_server.start()
    # The retry of an acknowledged send is the same event, not a second one.
    retried = send_text(open_server, alice, room_id, "before the crash", "txn-1")
    assert retried.json()["event_id"] == first
    # New events get positions after every token handed out before the crash.
    send_text(open_server, alice, room_id, "after the crash", "txn-2")
    later = sync(open_server, alice, f"?since={token}")
    assert timeline_texts(later, room_id) == ["after the crash"]
    assert {"type": "im.example.theme", "content": {"theme": "dark"}} in later["account_data"][
        "events"
    ]
