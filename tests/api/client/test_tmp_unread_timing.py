import time
from tests.api.client.test_unread_counts import two_users_in_a_room, send_many
from tests.api.client.test_sync import sync
from tests.support.matrix import call
from tests.api.client.test_rooms import send_text


def test_timing(open_server) -> None:
    alice, bob, room_id = two_users_in_a_room(open_server)
    send_many(open_server, alice, room_id, 1000, "m")
    for label in ("first", "second", "third"):
        t = time.perf_counter()
        body = sync(open_server, bob)
        print(label, round((time.perf_counter() - t) * 1000, 1), "ms", body["rooms"]["join"][room_id]["unread_notifications"])
    send_text(open_server, alice, room_id, "x", "x")
    t = time.perf_counter()
    body = sync(open_server, bob)
    print("after one new", round((time.perf_counter() - t) * 1000, 1), "ms", body["rooms"]["join"][room_id]["unread_notifications"])
