"""Filter endpoints, over HTTP."""

from __future__ import annotations

from typing import Any

from tests.support.http import Response
from tests.support.matrix import CLIENT, auth, call, register
from tests.support.server_process import ServerProcess

ALICE, BOB = "@alice:localhost", "@bob:localhost"

#: The example from the spec.
SPEC_FILTER: dict[str, Any] = {
    "room": {
        "state": {"types": ["m.room.*"], "not_rooms": ["!726s6s6q:example.com"]},
        "timeline": {
            "limit": 10,
            "types": ["m.room.message"],
            "not_rooms": ["!726s6s6q:example.com"],
            "not_senders": ["@spam:example.com"],
        },
        "ephemeral": {
            "types": ["m.receipt", "m.typing"],
            "not_rooms": ["!726s6s6q:example.com"],
            "not_senders": ["@spam:example.com"],
        },
    },
    "presence": {"types": ["m.presence"], "not_senders": ["@alice:example.com"]},
    "event_format": "client",
    "event_fields": ["type", "content", "sender"],
}


def errcode(response: Response) -> tuple[int, str]:
    return response.status, response.json()["errcode"]


def test_filters_are_uploaded_and_downloaded(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    created = call(open_server, "POST", f"/user/{ALICE}/filter", token=alice, body=SPEC_FILTER)
    assert created.status == 200
    filter_id = created.json()["filter_id"]
    assert isinstance(filter_id, str) and not filter_id.startswith("{")
    got = call(open_server, "GET", f"/user/{ALICE}/filter/{filter_id}", token=alice)
    assert (got.status, got.json()) == (200, SPEC_FILTER)
    r0 = open_server.request(
        "GET", f"/_matrix/client/r0/user/{ALICE}/filter/{filter_id}", headers=auth(alice)
    )
    assert r0.json() == SPEC_FILTER
    # The empty filter is valid; the same filter again keeps its ID.
    empty = call(open_server, "POST", f"/user/{ALICE}/filter", token=alice, body={})
    assert empty.status == 200 and empty.json()["filter_id"] != filter_id
    again = call(open_server, "POST", f"/user/{ALICE}/filter", token=alice, body=SPEC_FILTER)
    assert again.json() == {"filter_id": filter_id}
    # Other users' filters: 403 through their path, 404 through one's own.
    theirs = call(open_server, "GET", f"/user/{ALICE}/filter/{filter_id}", token=bob)
    assert errcode(theirs) == (403, "M_FORBIDDEN")
    own_path = call(open_server, "GET", f"/user/{BOB}/filter/{filter_id}", token=bob)
    assert errcode(own_path) == (404, "M_NOT_FOUND")
    upload = call(open_server, "POST", f"/user/{ALICE}/filter", token=bob, body={})
    assert errcode(upload) == (403, "M_FORBIDDEN")
    for unknown in ("999999", "abc", "-1", "1e3", "9" * 40):
        response = call(open_server, "GET", f"/user/{ALICE}/filter/{unknown}", token=alice)
        assert errcode(response) == (404, "M_NOT_FOUND"), unknown
    assert errcode(call(open_server, "POST", f"/user/{ALICE}/filter", body={})) == (
        401,
        "M_MISSING_TOKEN",
    )


def test_invalid_filters_are_refused(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    path = f"/user/{ALICE}/filter"
    for definition in (
        {"room": {"timeline": {"limit": -1}}},
        {"room": {"timeline": {"limit": "10"}}},
        {"room": {"state": {"types": "m.room.member"}}},
        {"room": {"state": {"not_senders": ["not-a-user"]}}},
        {"room": {"rooms": ["#alias:localhost"]}},
        {"room": {"include_leave": "yes"}},
        {"room": {"timeline": {"contains_url": 1}}},
        {"presence": {"senders": [1]}},
        {"event_fields": "type"},
        {"event_format": "xml"},
        {"room": None},
    ):
        response = call(open_server, "POST", path, token=alice, body=definition)
        assert errcode(response) == (400, "M_BAD_JSON"), definition
    headers = {**auth(alice), "Content-Type": "application/json"}
    for raw, expected in ((b"{", "M_NOT_JSON"), (b"", "M_NOT_JSON"), (b"[]", "M_BAD_JSON")):
        response = open_server.request("POST", CLIENT + path, body=raw, headers=headers)
        assert errcode(response) == (400, expected), raw
