"""A redaction names an event of its own room.

spec: client-server-api/_index.md#put_matrixclientv3roomsroomidredacteventidtxnid (no
error is named for another room's event; Synapse answers 400 "Cannot redact event
from a different room").
"""

from __future__ import annotations

from tests.api.client.test_rooms import create_room, send_text
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def test_redacting_an_event_of_another_room_is_refused(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_a = create_room(open_server, alice)
    room_b = create_room(open_server, alice)
    event_b = send_text(open_server, alice, room_b, "in room b", "t1").json()["event_id"]
    refused = call(open_server, "PUT", f"/rooms/{room_a}/redact/{event_b}/r1", token=alice, body={})
    assert (refused.status, refused.json()["errcode"]) == (400, "M_UNKNOWN")
    # The event is untouched and can still be redacted through its own room.
    original = call(open_server, "GET", f"/rooms/{room_b}/event/{event_b}", token=alice).json()
    assert original["content"]["body"] == "in room b"
    done = call(open_server, "PUT", f"/rooms/{room_b}/redact/{event_b}/r2", token=alice, body={})
    assert done.status == 200, done.body
    redacted = call(open_server, "GET", f"/rooms/{room_b}/event/{event_b}", token=alice).json()
    assert redacted["content"] == {}
