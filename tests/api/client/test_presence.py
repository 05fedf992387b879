"""Presence over HTTP against the real server (both engines), with matrix-nio as the
client wherever a real client's behaviour matters: ``GET``/``PUT
/presence/{userId}/status``, ``m.presence`` in ``/sync``, who may see it, the
online → unavailable → offline transitions on short timeouts, ``set_presence`` on
``/sync``, presence turned off, bad input, rate limiting and a restart.

spec: client-server-api/modules/presence.md, data/api/client-server/presence.yaml,
client-server-api/_index.md#get_matrixclientv3sync (``set_presence``);
design: docs/live-status.md
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from nio import PresenceGetResponse, PresenceSetResponse

from tests.support.http import Response
from tests.support.matrix import call, register, running_server
from tests.support.nio_client import logged_in, poll, run, synced
from tests.support.server_process import ServerProcess

#: PUT /presence as often as the tests like.
RELAXED_PRESENCE = {"rc_presence": {"per_user": {"per_second": 100, "burst_count": 100}}}
#: Idle after 2 s without activity, offline 1 s after the last sync.
SHORT_TIMEOUTS = {
    "presence": {"idle_timeout": "2s", "sync_online_timeout": "1s", "last_active_granularity": "1s"}
}


@pytest.fixture
def server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    """Default timeouts (nobody times out during a test), relaxed rc_presence."""
    with running_server(tmp_path, database_config, **RELAXED_PRESENCE) as process:
        yield process


@pytest.fixture
def fast_server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    """Timeouts of a second or two, relaxed rc_presence."""
    with running_server(tmp_path, database_config, **RELAXED_PRESENCE, **SHORT_TIMEOUTS) as process:
        yield process


# -- helpers ---------------------------------------------------------------------------


def status_path(user_id: str) -> str:
    return f"/presence/{quote(user_id)}/status"


def put_presence(server: ServerProcess, account: dict[str, Any], body: Any) -> Response:
    return call(server, "PUT", status_path(account["user_id"]), account["access_token"], body)


def set_presence(
    server: ServerProcess, account: dict[str, Any], presence: str, status_msg: str | None = None
) -> None:
    body: dict[str, Any] = {"presence": presence}
    if status_msg is not None:
        body["status_msg"] = status_msg
    response = put_presence(server, account, body)
    assert (response.status, response.json()) == (200, {}), response.body


def get_presence(server: ServerProcess, observer: dict[str, Any], user_id: str) -> Response:
    return call(server, "GET", status_path(user_id), observer["access_token"])


def presence_of(server: ServerProcess, observer: dict[str, Any], user_id: str) -> dict[str, Any]:
    response = get_presence(server, observer, user_id)
    assert response.status == 200, response.body
    content: dict[str, Any] = response.json()
    return content


def sync(server: ServerProcess, account: dict[str, Any], **query: Any) -> dict[str, Any]:
    path = "/sync" + (f"?{urlencode(query)}" if query else "")
    response = call(server, "GET", path, account["access_token"])
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json()
    return body


def presence_in(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """sender -> content of the ``m.presence`` events of a /sync response."""
    events = body.get("presence", {}).get("events", [])
    assert all(event["type"] == "m.presence" for event in events), events
    return {event["sender"]: event["content"] for event in events}


def room_with(server: ServerProcess, owner: dict[str, Any], *members: dict[str, Any]) -> str:
    response = call(server, "POST", "/createRoom", owner["access_token"], {"preset": "public_chat"})
    assert response.status == 200, response.body
    room_id: str = response.json()["room_id"]
    for member in members:
        join(server, member, room_id)
    return room_id


def join(server: ServerProcess, account: dict[str, Any], room_id: str) -> None:
    response = call(server, "POST", f"/join/{quote(room_id)}", account["access_token"], {})
    assert response.status == 200, response.body


def error_of(response: Response) -> tuple[int, str]:
    return response.status, response.json().get("errcode")


# -- GET and PUT -----------------------------------------------------------------------


def test_put_then_get_round_trips_the_state_and_status_message(server: ServerProcess) -> None:
    alice, bob = register(server, "alice"), register(server, "bob")
    room_with(server, alice, bob)
    set_presence(server, alice, "online", "in the office")
    mine = presence_of(server, alice, alice["user_id"])
    assert mine["presence"] == "online"
    assert mine["status_msg"] == "in the office"
    assert mine["currently_active"] is True
    assert 0 <= mine["last_active_ago"] < 5_000
    # Bob shares a room: he sees the same, with last_active_ago up to date.
    time.sleep(0.3)
    theirs = presence_of(server, bob, alice["user_id"])
    assert {k: theirs[k] for k in ("presence", "status_msg", "currently_active")} == {
        "presence": "online",
        "status_msg": "in the office",
        "currently_active": True,
    }
    assert theirs["last_active_ago"] >= mine["last_active_ago"] + 250
    # Unavailable without a message: the message is cleared, and it is not activity.
    set_presence(server, alice, "unavailable")
    idle = presence_of(server, bob, alice["user_id"])
    assert idle["presence"] == "unavailable"
    assert idle.get("status_msg") is None
    assert idle.get("currently_active") is False
    assert idle["last_active_ago"] >= theirs["last_active_ago"]

    async def through_nio() -> None:
        async with logged_in(server, alice) as nio_alice, logged_in(server, bob) as nio_bob:
            assert isinstance(await nio_bob.set_presence("online", "via nio"), PresenceSetResponse)
            got = await nio_alice.get_presence(bob["user_id"])
            assert isinstance(got, PresenceGetResponse), got
            assert (got.user_id, got.presence, got.status_msg, got.currently_active) == (
                bob["user_id"],
                "online",
                "via nio",
                True,
            )
            assert got.last_active_ago is not None and got.last_active_ago < 5_000

    run(through_nio())


def test_only_users_sharing_a_room_see_each_others_presence(server: ServerProcess) -> None:
    alice, bob, carol = (register(server, name) for name in ("alice", "bob", "carol"))
    room_with(server, alice, bob)
    room_with(server, carol)  # a room of her own, shared with nobody
    set_presence(server, bob, "online", "hi")
    refused = get_presence(server, carol, bob["user_id"])
    assert error_of(refused) == (403, "M_FORBIDDEN")
    assert presence_of(server, alice, bob["user_id"])["status_msg"] == "hi"
    # Carol's initial sync lists herself only (her own sync brought her online).
    first = sync(server, carol)
    assert set(presence_in(first)) == {carol["user_id"]}
    alice_first = sync(server, alice)
    assert bob["user_id"] in presence_in(alice_first)
    # Bob changes, then Carol does: Carol's next sync covers both changes and shows
    # only her own.
    set_presence(server, bob, "unavailable", "lunch")
    set_presence(server, carol, "online", "busy")
    later = presence_in(sync(server, carol, since=first["next_batch"]))
    assert set(later) == {carol["user_id"]}
    assert later[carol["user_id"]]["status_msg"] == "busy"
    alice_later = presence_in(sync(server, alice, since=alice_first["next_batch"]))
    assert alice_later[bob["user_id"]]["status_msg"] == "lunch"
    # Seeing presence follows sharing a room: once Carol joins, she may.
    join(server, carol, room_with(server, bob))
    assert presence_of(server, carol, bob["user_id"])["status_msg"] == "lunch"


def test_activity_brings_an_unavailable_user_back_online(server: ServerProcess) -> None:
    """spec: "Any activity that bumps the last active time ... will cause the server to
    automatically set their presence to online"."""
    alice, bob = register(server, "alice"), register(server, "bob")
    room_id = room_with(server, alice, bob)
    set_presence(server, bob, "unavailable", "away")
    assert presence_of(server, alice, bob["user_id"])["presence"] == "unavailable"
    response = call(
        server,
        "PUT",
        f"/rooms/{quote(room_id)}/send/m.room.message/1",
        bob["access_token"],
        {"msgtype": "m.text", "body": "back"},
    )
    assert response.status == 200, response.body
    back = presence_of(server, alice, bob["user_id"])
    assert (back["presence"], back["currently_active"], back["status_msg"]) == (
        "online",
        True,
        "away",
    )
    assert back["last_active_ago"] < 5_000
    set_presence(server, bob, "unavailable", "away")
    typing = call(
        server,
        "PUT",
        f"/rooms/{quote(room_id)}/typing/{quote(bob['user_id'])}",
        bob["access_token"],
        {"typing": True, "timeout": 5_000},
    )
    assert typing.status == 200, typing.body
    assert presence_of(server, alice, bob["user_id"])["presence"] == "online"


# -- transitions over time -------------------------------------------------------------


def test_online_then_idle_then_offline_is_seen_by_another_member(
    fast_server: ServerProcess,
) -> None:
    alice, bob = register(fast_server, "alice"), register(fast_server, "bob")
    room_with(fast_server, alice, bob)

    async def scenario() -> None:
        async with (
            logged_in(fast_server, alice) as nio_alice,
            logged_in(fast_server, bob) as nio_bob,
        ):
            await synced(nio_alice)
            seen: list[tuple[float, str, bool | None, int | None]] = []
            stop = asyncio.Event()
            bob_times: dict[str, float] = {}

            async def bob_keeps_syncing() -> None:
                bob_times["first"] = time.monotonic()
                while not stop.is_set():
                    bob_times["last"] = time.monotonic()
                    await synced(nio_bob, timeout=300)

            async def alice_watches(until: str) -> None:
                while not any(state == until for _, state, _, _ in seen):
                    response = await synced(nio_alice, timeout=500)
                    for event in response.presence_events:
                        if event.user_id == bob["user_id"]:
                            seen.append(
                                (
                                    time.monotonic(),
                                    event.presence,
                                    event.currently_active,
                                    event.last_active_ago,
                                )
                            )

            bob_task = asyncio.create_task(bob_keeps_syncing())
            await asyncio.wait_for(alice_watches("unavailable"), 15)
            stop.set()
            await bob_task
            await asyncio.wait_for(alice_watches("offline"), 15)

            states = [state for _, state, _, _ in seen]
            assert states[0] == "online" and seen[0][2] is True, seen
            assert states.index("unavailable") < states.index("offline"), seen
            assert "online" not in states[states.index("unavailable") :], seen
            # Not early: idle 2 s after Bob's first sync made him online (and active),
            # offline 1 s after his last sync.
            unavailable_at = seen[states.index("unavailable")][0]
            offline_at = seen[states.index("offline")][0]
            assert unavailable_at - bob_times["first"] >= 1.9, seen
            assert offline_at - bob_times["last"] >= 0.9, seen
            # ... and not late either (generous bounds for a loaded machine).
            assert unavailable_at - bob_times["first"] < 8, seen
            assert offline_at - bob_times["last"] < 8, seen
            # "Last seen" keeps counting from Bob's last activity.
            last_active_ago = seen[states.index("offline")][3]
            assert last_active_ago is not None and last_active_ago >= 2_900, seen

    run(scenario())
    offline = presence_of(fast_server, alice, bob["user_id"])
    assert offline["presence"] == "offline"
    assert "currently_active" not in offline


def test_set_presence_offline_on_sync_does_not_bring_a_user_online(
    fast_server: ServerProcess,
) -> None:
    alice, bob = register(fast_server, "alice"), register(fast_server, "bob")
    room_with(fast_server, alice, bob)
    before = sync(fast_server, alice)

    async def scenario() -> None:
        async with logged_in(fast_server, bob) as nio_bob:
            for _ in range(3):
                await synced(nio_bob, timeout=200, set_presence="offline")
            assert presence_of(fast_server, alice, bob["user_id"]) == {"presence": "offline"}
            assert bob["user_id"] not in presence_in(
                sync(fast_server, alice, since=before["next_batch"])
            )
            # Unavailable is honoured...
            await synced(nio_bob, set_presence="unavailable")
            assert presence_of(fast_server, alice, bob["user_id"])["presence"] == "unavailable"
            # ... and an online sync brings an offline user online; syncing on with
            # set_presence=offline does not keep him connected: he goes offline.
            await synced(nio_bob, set_presence="online")
            set_presence(fast_server, bob, "offline")
            await synced(nio_bob, set_presence="online")
            assert presence_of(fast_server, alice, bob["user_id"])["presence"] == "online"
            started = time.monotonic()

            async def offline_while_syncing() -> bool:
                await synced(nio_bob, timeout=100, set_presence="offline")
                state: str = presence_of(fast_server, alice, bob["user_id"])["presence"]
                return state == "offline"

            await poll(offline_while_syncing, within=10, interval=0)
            assert time.monotonic() - started >= 0.9

    run(scenario())


# -- joining ---------------------------------------------------------------------------


def test_a_joining_user_and_the_members_receive_each_others_presence(
    server: ServerProcess,
) -> None:
    alice, bob, carol = (register(server, name) for name in ("alice", "bob", "carol"))
    room_id = room_with(server, alice, bob)
    set_presence(server, alice, "online", "alice here")
    set_presence(server, bob, "unavailable", "bob away")
    set_presence(server, carol, "online", "new here")
    alice_before = sync(server, alice)

    async def scenario() -> None:
        async with logged_in(server, carol) as nio_carol:
            first = await synced(nio_carol)
            assert {e.user_id for e in first.presence_events} == {carol["user_id"]}
            join(server, carol, room_id)
            after_join = await synced(nio_carol)
            statuses = {e.user_id: (e.presence, e.status_msg) for e in after_join.presence_events}
            assert statuses[alice["user_id"]] == ("online", "alice here")
            assert statuses[bob["user_id"]] == ("unavailable", "bob away")
            # Nothing changed since: the next sync carries no presence again.
            again = await synced(nio_carol)
            assert {e.user_id for e in again.presence_events} <= {carol["user_id"]}

    run(scenario())
    seen_by_alice = presence_in(sync(server, alice, since=alice_before["next_batch"]))
    assert seen_by_alice[carol["user_id"]]["presence"] == "online"
    assert seen_by_alice[carol["user_id"]]["status_msg"] == "new here"


def test_a_member_who_joins_before_their_first_sync_does_not_break_others_syncs(
    server: ServerProcess,
) -> None:
    """Bob registers and joins without ever syncing or setting presence: nothing of
    his presence is in memory, yet Alice's sync covering his join must work."""
    alice, bob = register(server, "alice"), register(server, "bob")
    room_id = room_with(server, alice)
    before = sync(server, alice)
    join(server, bob, room_id)
    response = call(server, "GET", f"/sync?since={before['next_batch']}", alice["access_token"])
    assert response.status == 200, response.body
    bob_presence = presence_in(response.json()).get(bob["user_id"])
    assert bob_presence is None or bob_presence["presence"] == "offline"


# -- turned off ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "off", [{"presence": {"enabled": False}}, {"use_presence": False}], ids=["enabled", "use"]
)
def test_with_presence_turned_off_put_is_accepted_and_nothing_shows(
    tmp_path: Path, database_config: dict[str, Any], off: dict[str, Any]
) -> None:
    with running_server(tmp_path, database_config, **RELAXED_PRESENCE, **off) as server:
        alice, bob = register(server, "alice"), register(server, "bob")
        room_with(server, alice, bob)
        before = sync(server, alice)
        set_presence(server, bob, "online", "hello")
        assert presence_of(server, bob, bob["user_id"]) == {"presence": "offline"}
        assert presence_of(server, alice, bob["user_id"]) == {"presence": "offline"}

        async def scenario() -> None:
            async with logged_in(server, bob) as nio_bob:
                response = await synced(nio_bob)
                assert response.presence_events == []
                got = await nio_bob.get_presence(alice["user_id"])
                assert isinstance(got, PresenceGetResponse) and got.presence == "offline"

        run(scenario())
        assert presence_in(sync(server, alice)) == {}
        assert presence_in(sync(server, alice, since=before["next_batch"])) == {}


# -- bad input -------------------------------------------------------------------------


def test_bad_presence_requests_are_refused(server: ServerProcess) -> None:
    alice, bob = register(server, "alice"), register(server, "bob")
    set_presence(server, alice, "online", "unchanged")
    token = alice["access_token"]
    mine = status_path(alice["user_id"])
    cases: list[tuple[str, Response, tuple[int, str]]] = [
        (
            "someone else's",
            call(server, "PUT", status_path(bob["user_id"]), token, {"presence": "online"}),
            (403, "M_FORBIDDEN"),
        ),
        (
            "no presence",
            call(server, "PUT", mine, token, {"status_msg": "x"}),
            (400, "M_MISSING_PARAM"),
        ),
        (
            "unknown state",
            call(server, "PUT", mine, token, {"presence": "busy"}),
            (400, "M_INVALID_PARAM"),
        ),
        (
            "state not a string",
            call(server, "PUT", mine, token, {"presence": 1}),
            (400, "M_INVALID_PARAM"),
        ),
        (
            "status_msg not a string",
            call(server, "PUT", mine, token, {"presence": "online", "status_msg": 5}),
            (400, "M_BAD_JSON"),
        ),
        ("body not an object", call(server, "PUT", mine, token, ["online"]), (400, "M_BAD_JSON")),
        (
            "invalid user ID (PUT)",
            call(server, "PUT", "/presence/alice/status", token, {"presence": "online"}),
            (400, "M_INVALID_PARAM"),
        ),
        (
            "invalid user ID (GET)",
            call(server, "GET", "/presence/alice/status", token),
            (400, "M_INVALID_PARAM"),
        ),
        (
            "no token",
            call(server, "PUT", mine, None, {"presence": "online"}),
            (401, "M_MISSING_TOKEN"),
        ),
        (
            "unknown set_presence on /sync",
            call(server, "GET", "/sync?set_presence=busy", token),
            (400, "M_INVALID_PARAM"),
        ),
    ]
    assert [(name, error_of(response)) for name, response, _ in cases] == [
        (name, expected) for name, _, expected in cases
    ]
    # None of them changed anything.
    assert presence_of(server, alice, alice["user_id"])["status_msg"] == "unchanged"
    assert presence_of(server, bob, bob["user_id"]) == {"presence": "offline"}


def test_presence_updates_are_rate_limited_by_default(open_server: ServerProcess) -> None:
    """``rc_presence.per_user`` defaults to one update per 10 s (burst 1)."""
    alice = register(open_server, "alice")
    set_presence(open_server, alice, "online", "first")
    response = put_presence(open_server, alice, {"presence": "online", "status_msg": "second"})
    assert error_of(response) == (429, "M_LIMIT_EXCEEDED")
    assert response.json()["retry_after_ms"] > 0
    assert presence_of(open_server, alice, alice["user_id"])["status_msg"] == "first"


# -- restart ---------------------------------------------------------------------------


def test_presence_survives_a_restart(server: ServerProcess) -> None:
    alice, bob = register(server, "alice"), register(server, "bob")
    room_with(server, alice, bob)
    set_presence(server, bob, "online")
    set_presence(server, bob, "unavailable", "back soon")
    before = presence_of(server, alice, bob["user_id"])
    stopped = time.monotonic()
    server.stop()
    server.start()
    after = presence_of(server, alice, bob["user_id"])
    elapsed_ms = (time.monotonic() - stopped) * 1000
    assert (after["presence"], after["status_msg"]) == ("unavailable", "back soon")
    # "Last seen" is kept: it kept counting while the server was down.
    assert after["last_active_ago"] >= before["last_active_ago"] + elapsed_ms - 100
    assert after["last_active_ago"] < before["last_active_ago"] + elapsed_ms + 10_000
