"""HTTP pushers against a push gateway process on loopback, on both engines: the spec's
payload in both formats, the badge count, retries through a gateway outage and a
server restart, a rejected pushkey, the counts-only update after a read receipt,
invites, custom tweaks, ignored senders, and no push of what came before a join.

spec: push-gateway-api.md, client-server-api/modules/push.md
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from tests.api.client.test_pushers import pushers
from tests.api.client.test_rooms import create_room, send_text
from tests.support.matrix import call, register, running_server
from tests.support.push_gateway import NOTIFY_PATH, PushGateway
from tests.support.server_process import ServerProcess

APP_ID = "org.example.app.android"


def add_pusher(
    server: ServerProcess, token: str, gateway: PushGateway, pushkey: str, **data: Any
) -> None:
    body = {
        "kind": "http",
        "app_id": APP_ID,
        "pushkey": pushkey,
        "app_display_name": "Example",
        "device_display_name": "Phone",
        "lang": "en",
        "data": {"url": gateway.notify_url, **data},
    }
    response = call(server, "POST", "/pushers/set", token=token, body=body)
    assert response.status == 200, response.body


def alice_and_bob(server: ServerProcess) -> tuple[str, str, str]:
    """(alice's token, bob's token, room): alice's named room with bob in it."""
    alice = register(server, "alice")["access_token"]
    bob = register(server, "bob")["access_token"]
    room_id = create_room(server, alice, preset="public_chat", name="Lunch")
    assert call(server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    return alice, bob, room_id


def notifications_for(received: list[dict[str, Any]], pushkey: str) -> list[dict[str, Any]]:
    return [
        r["json"]["notification"]
        for r in received
        if r["path"] == NOTIFY_PATH
        and r["json"]["notification"]["devices"][0]["pushkey"] == pushkey
    ]


def about_event(received: list[dict[str, Any]], pushkey: str) -> list[dict[str, Any]]:
    return [n for n in notifications_for(received, pushkey) if "event_id" in n]


def wait_for_log(server: ServerProcess, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in server.log():
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in the server log")


def test_the_gateway_gets_the_spec_payload_in_both_formats(
    server: ServerProcess, gateway: PushGateway
) -> None:
    alice, bob, room_id = alice_and_bob(server)
    add_pusher(server, bob, gateway, "full-key", custom="kept")
    add_pusher(server, bob, gateway, "id-only-key", format="event_id_only")
    event_id = send_text(server, alice, room_id, "Where shall we eat?", "t1").json()["event_id"]

    received = gateway.wait_for(
        lambda r: bool(about_event(r, "full-key")) and bool(about_event(r, "id-only-key"))
    )
    [full] = about_event(received, "full-key")
    assert full["event_id"] == event_id
    assert full["room_id"] == room_id
    assert full["type"] == "m.room.message"
    assert full["sender"] == "@alice:localhost"
    assert full["sender_display_name"] == "alice"
    assert full["room_name"] == "Lunch"
    assert full["prio"] == "high"
    assert full["content"] == {"msgtype": "m.text", "body": "Where shall we eat?"}
    assert full["counts"] == {"unread": 1}
    [device] = full["devices"]
    assert device["app_id"] == APP_ID
    assert device["data"] == {"custom": "kept"}  # everything but url
    assert device["tweaks"] == {"sound": "default"}
    assert isinstance(device["pushkey_ts"], int)
    assert abs(device["pushkey_ts"] - time.time()) < 600  # seconds, not milliseconds

    [short] = about_event(received, "id-only-key")
    assert set(short) == {"event_id", "room_id", "counts", "prio", "devices"}
    assert short["event_id"] == event_id
    assert short["devices"][0]["data"] == {"format": "event_id_only"}


def test_unread_counts_rooms_and_senders_own_messages_do_not_notify(
    server: ServerProcess, gateway: PushGateway
) -> None:
    alice, bob, room_id = alice_and_bob(server)
    other_room = create_room(server, alice, preset="public_chat")
    assert call(server, "POST", f"/join/{other_room}", token=bob, body={}).status == 200
    add_pusher(server, bob, gateway, "bob-key")
    add_pusher(server, alice, gateway, "alice-key")
    send_text(server, alice, room_id, "one", "t1")
    send_text(server, alice, room_id, "two", "t2")
    send_text(server, alice, other_room, "three", "t3")

    received = gateway.wait_for(lambda r: len(about_event(r, "bob-key")) == 3)
    # group_unread_count_by_room (default): rooms with unread notifications.
    assert [n["counts"]["unread"] for n in about_event(received, "bob-key")][-1] == 2
    # alice sent them all: nothing for her.
    assert about_event(received, "alice-key") == []


def test_a_notification_is_retried_after_a_gateway_outage(
    server: ServerProcess, gateway: PushGateway
) -> None:
    alice, bob, room_id = alice_and_bob(server)
    add_pusher(server, bob, gateway, "bob-key")
    gateway.stop()
    event_id = send_text(server, alice, room_id, "are you there?", "t1").json()["event_id"]
    wait_for_log(server, "delivery failed 1 time(s)")
    gateway.start()
    received = gateway.wait_for(lambda r: bool(about_event(r, "bob-key")))
    assert [n["event_id"] for n in about_event(received, "bob-key")] == [event_id]


def test_a_queued_notification_survives_a_server_restart(
    server: ServerProcess, gateway: PushGateway
) -> None:
    alice, bob, room_id = alice_and_bob(server)
    add_pusher(server, bob, gateway, "bob-key")
    gateway.stop()
    event_id = send_text(server, alice, room_id, "still there?", "t1").json()["event_id"]
    wait_for_log(server, "delivery failed 1 time(s)")
    server.kill()
    server.start()
    gateway.start()
    received = gateway.wait_for(lambda r: bool(about_event(r, "bob-key")))
    assert [n["event_id"] for n in about_event(received, "bob-key")] == [event_id]


def test_a_pushkey_the_gateway_rejects_loses_its_pusher(
    server: ServerProcess, gateway: PushGateway
) -> None:
    alice, bob, room_id = alice_and_bob(server)
    add_pusher(server, bob, gateway, "dead-key")
    add_pusher(server, bob, gateway, "live-key")
    gateway.reject("dead-key")
    send_text(server, alice, room_id, "hello", "t1")
    gateway.wait_for(lambda r: bool(about_event(r, "dead-key")))
    deadline = time.monotonic() + 30
    while [p["pushkey"] for p in pushers(server, bob)] != ["live-key"]:
        assert time.monotonic() < deadline, pushers(server, bob)
        time.sleep(0.1)
    send_text(server, alice, room_id, "again", "t2")
    received = gateway.wait_for(lambda r: len(about_event(r, "live-key")) == 2)
    assert len(about_event(received, "dead-key")) == 1


def test_reading_sends_a_counts_only_update(server: ServerProcess, gateway: PushGateway) -> None:
    alice, bob, room_id = alice_and_bob(server)
    add_pusher(server, bob, gateway, "bob-key")
    event_id = send_text(server, alice, room_id, "read me", "t1").json()["event_id"]
    gateway.wait_for(lambda r: bool(about_event(r, "bob-key")))
    response = call(
        server, "POST", f"/rooms/{room_id}/receipt/m.read/{event_id}", token=bob, body={}
    )
    assert response.status == 200, response.body
    received = gateway.wait_for(
        lambda r: any("event_id" not in n for n in notifications_for(r, "bob-key"))
    )
    [update] = [n for n in notifications_for(received, "bob-key") if "event_id" not in n]
    assert update["counts"] == {"unread": 0}


def test_a_gateway_on_a_blacklisted_address_is_never_reached(
    tmp_path: Path, database_config: dict[str, Any], gateway: PushGateway
) -> None:
    # No ip_range_whitelist: 127.0.0.1 is in the default blacklist.
    with running_server(tmp_path, database_config) as server:
        alice, bob, room_id = alice_and_bob(server)
        add_pusher(server, bob, gateway, "bob-key")
        send_text(server, alice, room_id, "hello", "t1")
        wait_for_log(server, "delivery failed 1 time(s)")
        assert "blocked addresses" in server.log()
    assert gateway.received() == []


def test_an_invite_is_pushed_to_the_invitee_with_high_priority(
    server: ServerProcess, gateway: PushGateway
) -> None:
    alice = register(server, "alice")["access_token"]
    bob = register(server, "bob")["access_token"]
    add_pusher(server, bob, gateway, "bob-key")
    room_id = create_room(server, alice, preset="private_chat", name="Secret")
    response = call(
        server, "POST", f"/rooms/{room_id}/invite", token=alice, body={"user_id": "@bob:localhost"}
    )
    assert response.status == 200, response.body

    received = gateway.wait_for(lambda r: bool(about_event(r, "bob-key")))
    [invite] = about_event(received, "bob-key")
    assert invite["type"] == "m.room.member"
    assert invite["room_id"] == room_id
    assert invite["content"]["membership"] == "invite"
    assert invite["user_is_target"] is True
    assert invite["prio"] == "high"


def test_a_custom_tweak_of_a_push_rule_reaches_the_gateway(
    server: ServerProcess, gateway: PushGateway
) -> None:
    alice, bob, room_id = alice_and_bob(server)
    add_pusher(server, bob, gateway, "bob-key")
    actions = ["notify", {"set_tweak": "org.example.led", "value": "blue"}, {"set_tweak": "sound"}]
    response = call(
        server,
        "PUT",
        "/pushrules/global/content/lunch",
        token=bob,
        body={"pattern": "lunch", "actions": actions},
    )
    assert response.status == 200, response.body
    send_text(server, alice, room_id, "lunch?", "t1")
    received = gateway.wait_for(lambda r: bool(about_event(r, "bob-key")))
    [notification] = about_event(received, "bob-key")
    assert notification["devices"][0]["tweaks"] == {"org.example.led": "blue", "sound": None}


def test_a_sender_the_user_ignores_is_not_pushed(
    server: ServerProcess, gateway: PushGateway
) -> None:
    alice, bob, room_id = alice_and_bob(server)
    carol = register(server, "carol")["access_token"]
    assert call(server, "POST", f"/join/{room_id}", token=carol, body={}).status == 200
    response = call(
        server,
        "PUT",
        "/user/@bob:localhost/account_data/m.ignored_user_list",
        token=bob,
        body={"ignored_users": {"@alice:localhost": {}}},
    )
    assert response.status == 200, response.body
    add_pusher(server, bob, gateway, "bob-key")
    send_text(server, alice, room_id, "ignored", "t1")
    from_carol = send_text(server, carol, room_id, "heard", "t2").json()["event_id"]
    # Events are queued in stream order: once carol's arrives, alice's was passed over.
    received = gateway.wait_for(lambda r: bool(about_event(r, "bob-key")))
    assert [n["event_id"] for n in about_event(received, "bob-key")] == [from_carol]


def _set_push_enabled(server: ServerProcess, enabled: bool) -> None:
    config = yaml.safe_load(server.config_path.read_text())
    config["push"] = {"enabled": enabled}
    server.config_path.write_text(yaml.safe_dump(config))


def test_a_late_batch_does_not_push_what_was_sent_before_the_recipient_joined(
    server: ServerProcess, gateway: PushGateway
) -> None:
    alice, bob, room_id = alice_and_bob(server)
    add_pusher(server, bob, gateway, "bob-key")
    # Nothing is read from the stream while push is disabled: the batch comes later.
    server.stop()
    _set_push_enabled(server, False)
    server.start()
    before = send_text(server, alice, room_id, "before carol", "t1").json()["event_id"]
    carol = register(server, "carol")["access_token"]
    assert call(server, "POST", f"/join/{room_id}", token=carol, body={}).status == 200
    add_pusher(server, carol, gateway, "carol-key")
    after = send_text(server, alice, room_id, "after carol", "t2").json()["event_id"]
    server.stop()
    _set_push_enabled(server, True)
    server.start()

    received = gateway.wait_for(
        lambda r: len(about_event(r, "bob-key")) == 2 and bool(about_event(r, "carol-key"))
    )
    assert [n["event_id"] for n in about_event(received, "bob-key")] == [before, after]
    assert [n["event_id"] for n in about_event(received, "carol-key")] == [after]
