"""Send-to-device messages against the real server over HTTP (both engines): delivery
in ``/sync``, idempotent sends, deletion only once acknowledged, restarts and kills,
paging of a long queue.

spec: client-server-api/modules/send_to_device.md, data/api/client-server/to_device.yaml
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs

from tests.support.http import Response
from tests.support.matrix import call, login, password_auth, register, running_server
from tests.support.server_process import ServerProcess

TYPE = "m.room_key_request"


@attrs.define
class Device:
    server: ServerProcess
    user_id: str
    device_id: str
    token: str

    def send(
        self, messages: dict[str, Any], txn_id: str, event_type: str = TYPE, version: str = "v3"
    ) -> Response:
        path = f"/sendToDevice/{quote(event_type)}/{quote(txn_id)}"
        if version == "v3":
            return call(self.server, "PUT", path, self.token, {"messages": messages})
        return self.server.request(
            "PUT",
            f"/_matrix/client/{version}{path}",
            json_body={"messages": messages},
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def sync(self, since: str | None = None, timeout_ms: int = 0) -> dict[str, Any]:
        path = f"/sync?timeout={timeout_ms}" + (f"&since={quote(since)}" if since else "")
        response = call(self.server, "GET", path, self.token)
        assert response.status == 200, response.body
        body: dict[str, Any] = response.json()
        return body


def new_user(server: ServerProcess, name: str, device_id: str = "ONE") -> Device:
    account = register(server, name, device_id=device_id)
    return Device(server, account["user_id"], account["device_id"], account["access_token"])


def another_device(device: Device, name: str, device_id: str) -> Device:
    account = login(device.server, name, device_id=device_id)
    return Device(device.server, device.user_id, account["device_id"], account["access_token"])


def sent(response: Response) -> None:
    assert (response.status, response.json()) == (200, {}), response.body


def to_device(body: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = body["to_device"]["events"]
    return events


def numbers(body: dict[str, Any]) -> list[int]:
    return [event["content"]["n"] for event in to_device(body)]


def test_a_message_reaches_the_named_device_only_and_star_reaches_every_device(
    open_server: ServerProcess,
) -> None:
    alice = new_user(open_server, "alice")
    bob = new_user(open_server, "bob", "PHONE")
    bob_laptop = another_device(bob, "bob", "LAPTOP")
    sent(alice.send({bob.user_id: {"PHONE": {"secret": "for the phone"}}}, "t1"))
    expected = {"sender": alice.user_id, "type": TYPE, "content": {"secret": "for the phone"}}
    assert to_device(bob.sync()) == [expected]
    assert to_device(bob_laptop.sync()) == []
    assert to_device(alice.sync()) == []

    sent(alice.send({bob.user_id: {"*": {"n": 1}}}, "t2", "m.dummy"))
    phone = to_device(bob.sync())
    laptop = to_device(bob_laptop.sync())
    assert (
        phone[-1] == laptop[-1] == {"sender": alice.user_id, "type": "m.dummy", "content": {"n": 1}}
    )
    # A device named both itself and through "*" gets its own message, once.
    sent(alice.send({bob.user_id: {"*": {"n": 2}, "LAPTOP": {"n": 3}}}, "t3"))
    assert to_device(bob_laptop.sync())[-1]["content"] == {"n": 3}
    assert to_device(bob.sync())[-1]["content"] == {"n": 2}


def test_unknown_and_remote_recipients_are_ignored(open_server: ServerProcess) -> None:
    alice = new_user(open_server, "alice")
    bob = new_user(open_server, "bob")
    messages = {
        "@nobody:localhost": {"*": {"n": 0}},
        "@carol:elsewhere.example": {"DEVICE": {"n": 0}},
        bob.user_id: {"NOSUCHDEVICE": {"n": 0}, bob.device_id: {"n": 1}},
    }
    sent(alice.send(messages, "mixed"))
    assert numbers(bob.sync()) == [1]


def test_bad_bodies_are_refused(open_server: ServerProcess) -> None:
    alice = new_user(open_server, "alice")
    path = "/sendToDevice/m.dummy/bad"
    for body, errcode in [
        ({}, "M_MISSING_PARAM"),
        ({"messages": []}, "M_BAD_JSON"),
        ({"messages": {alice.user_id: "text"}}, "M_BAD_JSON"),
        ({"messages": {alice.user_id: {"ONE": [1]}}}, "M_BAD_JSON"),
        ({"messages": {"not-a-user": {"ONE": {}}}}, "M_INVALID_PARAM"),
        ([], "M_BAD_JSON"),
    ]:
        response = call(open_server, "PUT", path, alice.token, body)
        assert (response.status, response.json()["errcode"]) == (400, errcode), body
    raw = open_server.request(
        "PUT",
        f"/_matrix/client/v3{path}",
        body=b"{not json",
        headers={"Authorization": f"Bearer {alice.token}"},
    )
    assert (raw.status, raw.json()["errcode"]) == (400, "M_NOT_JSON")
    unauthenticated = call(open_server, "PUT", path, None, {"messages": {}})
    assert unauthenticated.status == 401
    assert to_device(alice.sync()) == []


def test_a_repeated_transaction_id_queues_once_even_concurrently(
    open_server: ServerProcess,
) -> None:
    alice = new_user(open_server, "alice")
    alice_tablet = another_device(alice, "alice", "TABLET")
    bob = new_user(open_server, "bob")
    messages = {bob.user_id: {bob.device_id: {"n": 1}}}
    sent(alice.send(messages, "same"))
    sent(alice.send(messages, "same"))
    # The r0 path is the same endpoint.
    sent(alice.send(messages, "same", version="r0"))
    with ThreadPoolExecutor(8) as pool:
        for response in pool.map(lambda _: alice.send(messages, "burst"), range(8)):
            sent(response)
    # Another device, or another event type (another path), is another transaction.
    sent(alice_tablet.send({bob.user_id: {bob.device_id: {"n": 2}}}, "same"))
    sent(alice.send({bob.user_id: {bob.device_id: {"n": 3}}}, "same", "m.other"))
    assert numbers(bob.sync()) == [1, 1, 2, 3]


def test_messages_stay_until_a_sync_acknowledges_them(open_server: ServerProcess) -> None:
    alice = new_user(open_server, "alice")
    bob = new_user(open_server, "bob")
    start = bob.sync()["next_batch"]
    sent(alice.send({bob.user_id: {bob.device_id: {"n": 1}}}, "a1"))
    first = bob.sync(start)
    assert numbers(first) == [1]
    # The response was lost: the same token gets the message again (and an initial
    # sync gets it too), since nothing acknowledged it.
    assert numbers(bob.sync(start)) == [1]
    assert numbers(bob.sync()) == [1]
    sent(alice.send({bob.user_id: {bob.device_id: {"n": 2}}}, "a2"))
    # Syncing with first's next_batch acknowledges message 1: only 2 comes.
    second = bob.sync(first["next_batch"])
    assert numbers(second) == [2]
    assert numbers(bob.sync(start)) == [2]
    after = bob.sync(second["next_batch"])
    assert numbers(after) == []
    # Acknowledged messages are gone, whatever token is used afterwards.
    assert numbers(bob.sync(start)) == [] and numbers(bob.sync()) == []


def test_messages_survive_a_restart_and_a_kill_and_are_not_redelivered_once_acknowledged(
    open_server: ServerProcess,
) -> None:
    alice = new_user(open_server, "alice")
    bob = new_user(open_server, "bob")
    start = bob.sync()["next_batch"]
    sent(alice.send({bob.user_id: {bob.device_id: {"n": 1}}}, "r1"))
    open_server.stop()
    open_server.start()
    delivered = bob.sync(start)
    assert numbers(delivered) == [1]
    # Killed right after the send was acknowledged: the message is on disk.
    sent(alice.send({bob.user_id: {bob.device_id: {"n": 2}}}, "r2"))
    open_server.kill()
    open_server.start()
    # The retry of the same transaction after the restart queues nothing.
    sent(alice.send({bob.user_id: {bob.device_id: {"n": 2}}}, "r2"))
    acknowledged = bob.sync(delivered["next_batch"])
    assert numbers(acknowledged) == [2]
    assert numbers(bob.sync(acknowledged["next_batch"])) == []
    open_server.kill()
    open_server.start()
    # Neither an old token nor an initial sync brings acknowledged messages back.
    assert numbers(bob.sync(start)) == []
    assert numbers(bob.sync()) == []
    sent(alice.send({bob.user_id: {bob.device_id: {"n": 3}}}, "r3"))
    assert numbers(bob.sync(acknowledged["next_batch"])) == [3]


def test_a_long_queue_comes_100_at_a_time_without_loss_or_duplicates(
    open_server: ServerProcess,
) -> None:
    alice = new_user(open_server, "alice")
    bob = new_user(open_server, "bob")
    start = bob.sync()["next_batch"]
    total = 230
    with ThreadPoolExecutor(4) as pool:
        for response in pool.map(
            lambda n: alice.send({bob.user_id: {bob.device_id: {"n": n}}}, f"q{n}"), range(total)
        ):
            sent(response)
    pages: list[list[int]] = []
    tokens = [start]
    while not pages or len(pages[-1]) == 100:
        # A page of a longer queue answers a waiting sync at once.
        body = bob.sync(tokens[-1], timeout_ms=5_000)
        pages.append(numbers(body))
        tokens.append(body["next_batch"])
    assert [len(page) for page in pages] == [100, 100, 30]
    assert sorted(n for page in pages for n in page) == list(range(total))
    # The last page is not acknowledged yet: its token's predecessor gets it again.
    assert numbers(bob.sync(tokens[-2])) == pages[-1]
    assert numbers(bob.sync(tokens[-1])) == []


def test_a_waiting_sync_wakes_for_a_message(open_server: ServerProcess) -> None:
    alice = new_user(open_server, "alice")
    bob = new_user(open_server, "bob")
    since = bob.sync()["next_batch"]
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(bob.sync, since, 8_000)
        sent(alice.send({bob.user_id: {bob.device_id: {"n": 1}}}, "w1"))
        # Without the wake-up the sync would come back empty after its timeout.
        assert numbers(waiting.result()) == [1]


def test_deleting_a_device_drops_its_messages(open_server: ServerProcess) -> None:
    alice = new_user(open_server, "alice")
    bob = new_user(open_server, "bob")
    old = another_device(bob, "bob", "OLD")
    sent(alice.send({bob.user_id: {"OLD": {"n": 1}, bob.device_id: {"n": 2}}}, "d1"))
    first = call(open_server, "DELETE", "/devices/OLD", bob.token)
    session = first.json()["session"]
    done = call(
        open_server,
        "DELETE",
        "/devices/OLD",
        bob.token,
        {"auth": password_auth("bob", session=session)},
    )
    assert done.status == 200, done.body
    # Logging in again as "OLD" makes a new device: the old one's messages are gone.
    reborn = another_device(bob, "bob", "OLD")
    assert reborn.device_id == old.device_id
    assert numbers(reborn.sync()) == []
    assert numbers(bob.sync()) == [2]


def test_senders_past_rc_to_device_are_told_to_wait_and_nothing_is_queued(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_server(
        tmp_path, database_config, rc_to_device={"per_second": 0.001, "burst_count": 2}
    ) as server:
        alice = new_user(server, "td_limited_alice")
        bob = new_user(server, "td_limited_bob")
        for n in (1, 2):
            sent(alice.send({bob.user_id: {bob.device_id: {"n": n}}}, f"t{n}"))
        refused = alice.send({bob.user_id: {bob.device_id: {"n": 3}}}, "t3")
        assert refused.status == 429, refused.body
        assert refused.json()["errcode"] == "M_LIMIT_EXCEEDED"
        assert refused.json()["retry_after_ms"] > 0
        # The limit is per sender: bob may still send.
        sent(bob.send({alice.user_id: {alice.device_id: {"n": 1}}}, "t1"))
        assert numbers(bob.sync()) == [1, 2]


def test_a_number_too_large_for_json_is_refused(open_server: ServerProcess) -> None:
    """``1e400`` would be stored as infinity and echoed as ``Infinity``, which is not
    JSON: the recipient's every sync would be unreadable."""
    alice = new_user(open_server, "td_inf_alice")
    bob = new_user(open_server, "td_inf_bob")
    response = open_server.request(
        "PUT",
        "/_matrix/client/v3/sendToDevice/m.test/t1",
        body=b'{"messages": {"%s": {"%s": {"x": 1e400}}}}'
        % (bob.user_id.encode(), bob.device_id.encode()),
        headers={"Authorization": f"Bearer {alice.token}", "Content-Type": "application/json"},
    )
    assert response.status == 400, response.body
    assert response.json()["errcode"] == "M_NOT_JSON"
    assert to_device(bob.sync()) == []
