"""The list of endpoints open to guests (spec: modules/guest_access.md#client-behaviour)."""

from __future__ import annotations

import pytest

from homeserver.auth.guests import guest_may_use

ROOM = "/_matrix/client/v3/rooms/%21room%3Aexample.org"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_matrix/client/v3/sync"),
        ("HEAD", "/_matrix/client/r0/sync"),
        ("GET", f"{ROOM}/messages"),
        ("GET", f"{ROOM}/state/m.room.name/"),
        ("GET", f"{ROOM}/state/m.room.member/%40a%3Ab"),
        ("PUT", f"{ROOM}/send/m.room.message/txn1"),
        ("PUT", f"{ROOM}/state/m.room.topic/"),
        ("POST", f"{ROOM}/join"),
        ("GET", "/_matrix/client/v3/events"),
        ("PUT", "/_matrix/client/v3/profile/%40a%3Ab/displayname"),
        ("GET", "/_matrix/client/v1/media/download/example.org/abc"),
    ],
)
def test_listed_endpoints_are_open_to_guests(method: str, path: str) -> None:
    assert guest_may_use(method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/_matrix/client/v3/createRoom"),
        ("GET", f"{ROOM}/joined_members"),
        ("POST", f"{ROOM}/invite"),
        ("POST", "/_matrix/client/v3/join/%23alias%3Aexample.org"),
        ("PUT", "/_matrix/client/v3/profile/%40a%3Ab/avatar_url"),
        ("GET", "/_matrix/client/v3/profile/%40a%3Ab/displayname"),
        ("DELETE", "/_matrix/client/v3/devices/ABC"),
        ("PUT", f"{ROOM}/send/m.room.message/txn1/extra"),
        ("GET", "/_matrix/client/v3/initialSync"),
        ("GET", "/_matrix/client/v3/sync/extra"),
    ],
)
def test_other_endpoints_are_not(method: str, path: str) -> None:
    assert not guest_may_use(method, path)
