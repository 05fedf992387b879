"""Room tag endpoints, over HTTP."""

from __future__ import annotations

from urllib.parse import quote

from tests.support.http import Response
from tests.support.matrix import CLIENT, auth, call, register
from tests.support.server_process import ServerProcess

ALICE = "@alice:localhost"
ROOM = "!room:localhost"
TAGS = f"/user/{ALICE}/rooms/{ROOM}/tags"


def errcode(response: Response) -> tuple[int, str]:
    return response.status, response.json()["errcode"]


def test_tags_are_added_listed_and_removed(open_server: ServerProcess) -> None:
    token = register(open_server, "alice")["access_token"]
    assert call(open_server, "GET", TAGS, token=token).json() == {"tags": {}}
    put = call(open_server, "PUT", f"{TAGS}/m.favourite", token=token, body={"order": 0.25})
    assert (put.status, put.json()) == (200, {})
    assert call(open_server, "PUT", f"{TAGS}/u.work", token=token, body={}).status == 200
    spaced = quote("u.my tag ☃")
    assert (
        call(open_server, "PUT", f"{TAGS}/{spaced}", token=token, body={"order": 1}).status == 200
    )
    expected = {"m.favourite": {"order": 0.25}, "u.work": {}, "u.my tag ☃": {"order": 1}}
    assert call(open_server, "GET", TAGS, token=token).json() == {"tags": expected}
    # Clients see the tags as the room's m.tag account data.
    m_tag = call(open_server, "GET", f"/user/{ALICE}/rooms/{ROOM}/account_data/m.tag", token=token)
    assert m_tag.json() == {"tags": expected}
    deleted = call(open_server, "DELETE", f"{TAGS}/u.work", token=token)
    assert (deleted.status, deleted.json()) == (200, {})
    assert call(open_server, "DELETE", f"{TAGS}/u.never-set", token=token).status == 200
    del expected["u.work"]
    assert call(open_server, "GET", TAGS, token=token).json() == {"tags": expected}
    # Tags are per room.
    other = f"/user/{ALICE}/rooms/!other:localhost/tags"
    assert call(open_server, "GET", other, token=token).json() == {"tags": {}}


def test_bad_tag_requests_are_refused(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    assert call(open_server, "PUT", f"{TAGS}/u.mine", token=alice, body={}).status == 200
    assert errcode(call(open_server, "GET", TAGS, token=bob)) == (403, "M_FORBIDDEN")
    for method, body in (("PUT", {}), ("DELETE", None)):
        response = call(open_server, method, f"{TAGS}/u.mine", token=bob, body=body)
        assert errcode(response) == (403, "M_FORBIDDEN"), method
    assert errcode(call(open_server, "GET", TAGS)) == (401, "M_MISSING_TOKEN")
    bad_room = f"/user/{ALICE}/rooms/not-a-room/tags"
    assert errcode(call(open_server, "GET", bad_room, token=alice)) == (400, "M_INVALID_PARAM")
    put = call(open_server, "PUT", f"{bad_room}/u.x", token=alice, body={})
    assert errcode(put) == (400, "M_INVALID_PARAM")
    for order in ("first", True, None):
        put = call(open_server, "PUT", f"{TAGS}/u.x", token=alice, body={"order": order})
        assert errcode(put) == (400, "M_BAD_JSON"), order
    headers = {**auth(alice), "Content-Type": "application/json"}
    for raw, expected in ((b"", "M_NOT_JSON"), (b"{oops", "M_NOT_JSON"), (b"[]", "M_BAD_JSON")):
        response = open_server.request("PUT", CLIENT + f"{TAGS}/u.x", body=raw, headers=headers)
        assert errcode(response) == (400, expected), raw
    too_long = call(open_server, "PUT", f"{TAGS}/{'t' * 256}", token=alice, body={})
    assert errcode(too_long) == (400, "M_INVALID_PARAM")
    # Nothing above changed Alice's tags.
    assert call(open_server, "GET", TAGS, token=alice).json() == {"tags": {"u.mine": {}}}
