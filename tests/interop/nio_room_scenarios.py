"""Room scenarios run by matrix-nio, a real third-party client, in its own process.

Usage: ``python -m tests.interop.nio_room_scenarios <scenario> <base_url>``; prints one
JSON object with what the clients observed (as nio parsed it).  The scenarios record
rather than assert, so the pytest side (tests/interop/test_matrix_nio_rooms.py) can
say exactly which observation was wrong.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    Event,
    JoinResponse,
    LoginResponse,
    MessageDirection,
    ReceiptEvent,
    RedactedEvent,
    RedactionEvent,
    RegisterResponse,
    RoomCreateResponse,
    RoomGetEventResponse,
    RoomGetStateEventResponse,
    RoomInviteResponse,
    RoomMemberEvent,
    RoomMessagesResponse,
    RoomMessageText,
    RoomPreset,
    RoomRedactResponse,
    RoomSendResponse,
    SyncResponse,
    TypingNoticeEvent,
)
from nio.rooms import MatrixRoom

PASSWORD = "nio room password"

#: Long-poll used when waiting for something that has already happened on the server.
CATCH_UP_TIMEOUT_MS = 2000


def outcome(response: Any) -> dict[str, Any]:
    """What nio made of a response: its class, and for errors the Matrix fields."""
    result: dict[str, Any] = {"type": type(response).__name__}
    if isinstance(response, ErrorResponse):
        result["errcode"] = response.status_code
        result["retry_after_ms"] = response.retry_after_ms
    transport = response.transport_response
    result["http_status"] = transport.status if transport is not None else None
    return result


def checked(response: Any, expected: type) -> Any:
    """The response, or a loud failure naming what nio got instead."""
    if not isinstance(response, expected):
        raise AssertionError(f"expected {expected.__name__}, got {response!r}")
    return response


@asynccontextmanager
async def registered(
    base_url: str, *names: str, config: AsyncClientConfig | None = None
) -> AsyncIterator[list[AsyncClient]]:
    """One logged-in nio client per user name, each with its own store, closed at the end.

    Without end-to-end encryption: these scenarios are about plaintext rooms, and nio
    with its crypto on refuses to send to a room it has not synced yet."""
    if config is None:
        config = AsyncClientConfig(encryption_enabled=False)
    async with AsyncExitStack() as stack:
        clients: list[AsyncClient] = []
        for name in names:
            store = stack.enter_context(tempfile.TemporaryDirectory())
            client = AsyncClient(base_url, name, store_path=store, config=config)
            stack.push_async_callback(client.close)
            checked(
                await client.register(name, PASSWORD, device_name=f"{name} nio"), RegisterResponse
            )
            clients.append(client)
        yield clients


async def sync_until(
    client: AsyncClient, done: Callable[[], bool], attempts: int = 5
) -> list[SyncResponse]:
    """Sync (long-polling briefly) until ``done()`` holds or ``attempts`` run out."""
    responses: list[SyncResponse] = []
    for _ in range(attempts):
        responses.append(
            checked(await client.sync(timeout=CATCH_UP_TIMEOUT_MS, full_state=False), SyncResponse)
        )
        if done():
            break
    return responses


async def shared_room(
    owner: AsyncClient,
    *members: AsyncClient,
    preset: RoomPreset = RoomPreset.private_chat,
    **kw: Any,
) -> str:
    """A room ``owner`` creates, that ``members`` are invited to and join; all synced."""
    created = checked(await owner.room_create(preset=preset, **kw), RoomCreateResponse)
    room_id: str = created.room_id
    for member in members:
        checked(await owner.room_invite(room_id, member.user_id), RoomInviteResponse)
        checked(await member.join(room_id), JoinResponse)
    for client in (owner, *members):
        await sync_until(client, joined(client, room_id))
    return room_id


def joined(client: AsyncClient, room_id: str) -> Callable[[], bool]:
    return lambda: room_id in client.rooms


def collect_texts(client: AsyncClient) -> list[dict[str, Any]]:
    """A list that fills with every m.text message the client's syncs deliver."""
    seen: list[dict[str, Any]] = []

    async def on_text(room: MatrixRoom, event: RoomMessageText) -> None:
        seen.append(
            {
                "room_id": room.room_id,
                "event_id": event.event_id,
                "sender": event.sender,
                "body": event.body,
            }
        )

    client.add_event_callback(on_text, RoomMessageText)
    return seen


def has_body(seen: list[dict[str, Any]], body: str) -> Callable[[], bool]:
    return lambda: any(m["body"] == body for m in seen)


async def send_text(client: AsyncClient, room_id: str, body: str) -> Any:
    return await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})


def room_view(room: MatrixRoom) -> dict[str, Any]:
    """The room as nio computes it from the state it synced."""
    return {
        "name": room.name,
        "topic": room.topic,
        "display_name": room.display_name,
        "join_rule": room.join_rule,
        "history_visibility": room.history_visibility,
        "members": sorted(room.users),
        "invited": sorted(room.invited_users),
        "member_names": {user_id: room.user_name(user_id) for user_id in sorted(room.users)},
        "member_count": room.member_count,
        "summary": None
        if room.summary is None
        else {
            "joined": room.summary.joined_member_count,
            "invited": room.summary.invited_member_count,
            "heroes": room.summary.heroes,
        },
    }


# ----------------------------------------------------------------------------- scenarios


async def private_group(base_url: str) -> dict[str, Any]:
    """Scenario 1: a private group, an invite seen through sync, a conversation."""
    out: dict[str, Any] = {}
    async with registered(base_url, "alice", "bob") as (alice, bob):
        out["alice"], out["bob"] = alice.user_id, bob.user_id
        await alice.set_displayname("Alice A")
        await bob.set_displayname("Bob B")
        alice_texts, bob_texts = collect_texts(alice), collect_texts(bob)
        await bob.sync(timeout=0)
        created = checked(
            await alice.room_create(
                name="Project X", topic="Plans for X", preset=RoomPreset.private_chat
            ),
            RoomCreateResponse,
        )
        room_id = created.room_id
        out["room_id"] = room_id
        out["invite"] = outcome(await alice.room_invite(room_id, bob.user_id))

        invite_syncs = await sync_until(bob, lambda: room_id in bob.invited_rooms)
        invited = bob.invited_rooms.get(room_id)
        out["bob_invited"] = invited is not None
        if invited is not None:
            out["bob_invite_view"] = {"inviter": invited.inviter, "name": invited.name}
        out["bob_invite_state_types"] = sorted(
            {
                e.source.get("type")
                for s in invite_syncs
                for info in s.rooms.invite.values()
                for e in info.invite_state
            }
        )

        out["join"] = outcome(await bob.join(room_id))
        await sync_until(bob, lambda: room_id in bob.rooms)
        out["bob_still_invited_after_join"] = room_id in bob.invited_rooms

        out["alice_send"] = outcome(await send_text(alice, room_id, "hello bob"))
        out["bob_send"] = outcome(await send_text(bob, room_id, "hello alice"))
        await sync_until(alice, has_body(alice_texts, "hello alice"))
        await sync_until(bob, has_body(bob_texts, "hello bob"))
        out["alice_saw"] = [m for m in alice_texts if m["room_id"] == room_id]
        out["bob_saw"] = [m for m in bob_texts if m["room_id"] == room_id]
        out["alice_view"] = room_view(alice.rooms[room_id])
        out["bob_view"] = room_view(bob.rooms[room_id])
        out["bob_level_seen_by_alice"] = alice.rooms[room_id].power_levels.get_user_level(
            bob.user_id
        )

        # A profile change reaches the room as a new m.room.member event.
        out["rename_bob"] = outcome(await bob.set_displayname("Bobby Tables"))
        alice_room = alice.rooms[room_id]
        await sync_until(alice, lambda: alice_room.user_name(bob.user_id) == "Bobby Tables")
        out["alice_sees_bob_renamed"] = alice_room.user_name(bob.user_id)

        # An unnamed room: clients name it after the summary's heroes.
        unnamed = await shared_room(alice, bob)
        out["unnamed_alice_view"] = room_view(alice.rooms[unnamed])
        out["unnamed_bob_view"] = room_view(bob.rooms[unnamed])
    return out


async def muting(base_url: str) -> dict[str, Any]:
    """Scenario 2: power levels below events_default stop a member sending."""
    out: dict[str, Any] = {}
    async with registered(base_url, "alice", "bob") as (alice, bob):
        alice_texts = collect_texts(alice)
        room_id = await shared_room(alice, bob)
        out["bob"] = bob.user_id
        out["before_mute"] = outcome(await send_text(bob, room_id, "before mute"))

        levels = checked(
            await alice.room_get_state_event(room_id, "m.room.power_levels"),
            RoomGetStateEventResponse,
        ).content
        out["events_default"] = levels.get("events_default", 0)
        muted = {**levels, "users": {**levels.get("users", {}), bob.user_id: -1}}
        out["mute"] = outcome(await alice.room_put_state(room_id, "m.room.power_levels", muted))
        await sync_until(
            bob, lambda: bob.rooms[room_id].power_levels.get_user_level(bob.user_id) == -1
        )
        bob_levels = bob.rooms[room_id].power_levels
        out["bob_sees_own_level"] = bob_levels.get_user_level(bob.user_id)
        out["nio_says_bob_can_send"] = bob_levels.can_user_send_message(bob.user_id)
        out["while_muted"] = outcome(await send_text(bob, room_id, "while muted"))

        unmuted = {**levels, "users": {**levels.get("users", {}), bob.user_id: 0}}
        out["unmute"] = outcome(await alice.room_put_state(room_id, "m.room.power_levels", unmuted))
        await sync_until(
            bob, lambda: bob.rooms[room_id].power_levels.get_user_level(bob.user_id) == 0
        )
        out["nio_says_bob_can_send_after"] = bob.rooms[room_id].power_levels.can_user_send_message(
            bob.user_id
        )
        out["after_unmute"] = outcome(await send_text(bob, room_id, "after unmute"))
        await sync_until(alice, has_body(alice_texts, "after unmute"))
        out["alice_saw_from_bob"] = [
            m["body"] for m in alice_texts if m["room_id"] == room_id and m["sender"] == bob.user_id
        ]
    return out


async def only_admins_rename(base_url: str) -> dict[str, Any]:
    """Scenario 3: m.room.name needs state_default; a plain member is refused."""
    out: dict[str, Any] = {}
    async with registered(base_url, "alice", "bob") as (alice, bob):
        room_id = await shared_room(alice, bob, name="Old name")
        out["bob_sees_before"] = {
            "name": bob.rooms[room_id].name,
            "display_name": bob.rooms[room_id].display_name,
        }
        out["bob_rename"] = outcome(
            await bob.room_put_state(room_id, "m.room.name", {"name": "Bob's name"})
        )
        out["alice_rename"] = outcome(
            await alice.room_put_state(room_id, "m.room.name", {"name": "New name"})
        )
        await sync_until(bob, lambda: bob.rooms[room_id].name == "New name")
        out["bob_sees_after"] = {
            "name": bob.rooms[room_id].name,
            "display_name": bob.rooms[room_id].display_name,
        }
        fetched = await bob.room_get_state_event(room_id, "m.room.name")
        out["bob_fetches_name"] = (
            fetched.content if isinstance(fetched, RoomGetStateEventResponse) else outcome(fetched)
        )
    return out


def raw(event: Any) -> dict[str, Any]:
    source: dict[str, Any] = event.source
    return source


async def edits_and_redactions(base_url: str) -> dict[str, Any]:
    """Scenario 4: an edit and a redaction by one member, as another member sees them."""
    out: dict[str, Any] = {}
    async with registered(base_url, "alice", "bob") as (alice, bob):
        room_id = await shared_room(alice, bob)
        bob_events: list[dict[str, Any]] = []

        async def on_event(room: MatrixRoom, event: Event) -> None:
            if room.room_id == room_id:
                bob_events.append({"class": type(event).__name__, "source": raw(event)})

        bob.add_event_callback(on_event, Event)

        original = checked(await send_text(alice, room_id, "I like cake"), RoomSendResponse)
        edit_content = {
            "msgtype": "m.text",
            "body": "* I like chocolate cake",
            "m.new_content": {"msgtype": "m.text", "body": "I like chocolate cake"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": original.event_id},
        }
        edit = checked(
            await alice.room_send(room_id, "m.room.message", edit_content), RoomSendResponse
        )
        out["original_id"], out["edit_id"] = original.event_id, edit.event_id
        await sync_until(
            bob, lambda: any(e["source"].get("event_id") == edit.event_id for e in bob_events)
        )

        doomed = checked(
            await send_text(alice, room_id, "my password is hunter2"), RoomSendResponse
        )
        out["doomed_id"] = doomed.event_id
        await sync_until(
            bob, lambda: any(e["source"].get("event_id") == doomed.event_id for e in bob_events)
        )
        redaction = checked(
            await alice.room_redact(room_id, doomed.event_id, reason="oops"), RoomRedactResponse
        )
        out["redaction_id"] = redaction.event_id
        await sync_until(
            bob,
            lambda: any(e["source"].get("event_id") == redaction.event_id for e in bob_events),
        )
        out["bob_sync_events"] = bob_events
        redactions = [e for e in bob_events if e["class"] == RedactionEvent.__name__]
        out["bob_sync_redactions"] = [
            {"redacts": e["source"].get("redacts"), "reason": e["source"]["content"].get("reason")}
            for e in redactions
        ]

        page = checked(
            await bob.room_messages(room_id, start=bob.next_batch, limit=20), RoomMessagesResponse
        )
        out["messages"] = [{"class": type(e).__name__, "source": raw(e)} for e in page.chunk]

        # A fresh device's initial sync with a small timeline is ``limited``, where the
        # spec asks for bundled aggregations too.
        with tempfile.TemporaryDirectory() as store:
            fresh = AsyncClient(base_url, "bob", store_path=store)
            try:
                checked(await fresh.login(PASSWORD, device_name="fresh"), LoginResponse)
                initial = checked(
                    await fresh.sync(timeout=0, sync_filter={"room": {"timeline": {"limit": 5}}}),
                    SyncResponse,
                )
                timeline = initial.rooms.join[room_id].timeline
                out["limited_sync"] = {
                    "limited": timeline.limited,
                    "events": [
                        {"class": type(e).__name__, "source": raw(e)} for e in timeline.events
                    ],
                }
            finally:
                await fresh.close()

        got_original = await bob.room_get_event(room_id, original.event_id)
        out["get_original"] = (
            raw(got_original.event)
            if isinstance(got_original, RoomGetEventResponse)
            else outcome(got_original)
        )
        got_doomed = await bob.room_get_event(room_id, doomed.event_id)
        out["get_doomed"] = (
            {"class": type(got_doomed.event).__name__, "source": raw(got_doomed.event)}
            if isinstance(got_doomed, RoomGetEventResponse)
            else outcome(got_doomed)
        )
        out["redacted_class"] = RedactedEvent.__name__
    return out


async def pagination(base_url: str) -> dict[str, Any]:
    """Scenario 5: 60 messages read back through sync and /messages pages of 20."""
    out: dict[str, Any] = {}
    async with registered(base_url, "alice") as (alice,):
        room_id = checked(
            await alice.room_create(preset=RoomPreset.private_chat), RoomCreateResponse
        ).room_id
        for index in range(60):
            checked(await send_text(alice, room_id, f"message {index}"), RoomSendResponse)
        # A fresh device, so its first sync is an initial one with a limited timeline.
        with tempfile.TemporaryDirectory() as store:
            reader = AsyncClient(base_url, "alice", store_path=store)
            try:
                checked(await reader.login(PASSWORD, device_name="reader"), LoginResponse)
                synced = checked(
                    await reader.sync(timeout=0, sync_filter={"room": {"timeline": {"limit": 10}}}),
                    SyncResponse,
                )
                timeline = synced.rooms.join[room_id].timeline
                out["sync_timeline"] = [raw(e) for e in timeline.events]
                out["sync_limited"] = timeline.limited
                out["has_prev_batch"] = timeline.prev_batch is not None
                pages: list[dict[str, Any]] = []
                token = timeline.prev_batch
                while token is not None and len(pages) < 12:
                    page = checked(
                        await reader.room_messages(
                            room_id, start=token, direction=MessageDirection.back, limit=20
                        ),
                        RoomMessagesResponse,
                    )
                    pages.append(
                        {
                            "events": [raw(e) for e in page.chunk],
                            "start": page.start,
                            "end": page.end,
                        }
                    )
                    if not page.chunk:
                        break
                    token = page.end
                out["pages"] = pages
            finally:
                await reader.close()
    return out


async def long_poll_wakes_up(base_url: str) -> dict[str, Any]:
    """Scenario 6: a 30 s long-poll returns with a message sent while it waits."""
    out: dict[str, Any] = {}
    async with registered(base_url, "alice", "bob") as (alice, bob):
        room_id = await shared_room(alice, bob)
        bob_texts = collect_texts(bob)
        await bob.sync(timeout=0)
        since = bob.next_batch

        async def poll() -> list[SyncResponse]:
            responses: list[SyncResponse] = []
            # The server may answer early with something else (a receipt, presence);
            # keep polling until the message comes, as a client would.
            while not has_body(bob_texts, "wake up")() and len(responses) < 3:
                responses.append(
                    checked(await bob.sync(timeout=30000, since=bob.next_batch), SyncResponse)
                )
            return responses

        async def speak() -> Any:
            await asyncio.sleep(0.5)
            return await send_text(alice, room_id, "wake up")

        polling = asyncio.ensure_future(poll())
        sent = await speak()
        out["send"] = outcome(sent)
        # Well short of the server's 30 s: a server that only answers at its timeout
        # never "returns" here.
        try:
            responses = await asyncio.wait_for(polling, timeout=25)
            out["returned"] = True
            out["polls"] = len(responses)
        except TimeoutError:
            out["returned"] = False
        out["since_advanced"] = bob.next_batch != since
        out["message"] = [m for m in bob_texts if m["body"] == "wake up"]
        out["alice"] = alice.user_id
    return out


async def rate_limited(base_url: str) -> dict[str, Any]:
    """Scenario 7: rc_message's 429 reaches nio intact, and waiting it out works."""
    out: dict[str, Any] = {}
    # max_limit_exceeded=0: hand the 429 back instead of nio sleeping and retrying.
    config = AsyncClientConfig(max_limit_exceeded=0, encryption_enabled=False)
    async with registered(base_url, "alice", config=config) as (alice,):
        created = checked(
            await alice.room_create(preset=RoomPreset.private_chat), RoomCreateResponse
        )
        room_id = created.room_id
        sends = [outcome(await send_text(alice, room_id, f"burst {i}")) for i in range(6)]
        out["sends"] = sends
        limited = [s for s in sends if s.get("errcode") == "M_LIMIT_EXCEEDED"]
        if limited and isinstance(limited[-1]["retry_after_ms"], int):
            await asyncio.sleep(limited[-1]["retry_after_ms"] / 1000 + 0.05)
            out["after_waiting"] = outcome(await send_text(alice, room_id, "patient"))
    return out


async def kick_and_ban(base_url: str) -> dict[str, Any]:
    """Scenario 9: kick and ban as the victim's client sees them."""
    out: dict[str, Any] = {}
    async with registered(base_url, "alice", "bob") as (alice, bob):
        created = checked(
            await alice.room_create(preset=RoomPreset.public_chat), RoomCreateResponse
        )
        room_id = created.room_id
        out["bob"], out["alice"] = bob.user_id, alice.user_id
        out["join"] = outcome(await bob.join(room_id))
        await sync_until(bob, lambda: room_id in bob.rooms)

        def left(responses: list[SyncResponse]) -> dict[str, Any]:
            """What nio parsed from the sync that moved the room to ``leave``."""
            for response in responses:
                if room_id in response.rooms.leave:
                    info = response.rooms.leave[room_id]
                    members = [
                        e
                        for e in info.timeline.events + info.state
                        if isinstance(e, RoomMemberEvent) and e.state_key == bob.user_id
                    ]
                    return {
                        "in_leave": True,
                        "in_join": room_id in response.rooms.join,
                        "membership": [
                            {
                                "membership": e.membership,
                                "sender": e.sender,
                                "reason": e.content.get("reason"),
                            }
                            for e in members
                        ],
                    }
            return {"in_leave": False}

        out["kick"] = outcome(await alice.room_kick(room_id, bob.user_id, reason="be nice"))
        kicked: list[SyncResponse] = []
        for _ in range(5):
            kicked += await sync_until(bob, lambda: True, attempts=1)
            if left(kicked)["in_leave"]:
                break
        out["after_kick"] = left(kicked)
        await sync_until(alice, lambda: bob.user_id not in alice.rooms[room_id].users)
        out["alice_sees_members_after_kick"] = sorted(alice.rooms[room_id].users)
        out["rejoin_after_kick"] = outcome(await bob.join(room_id))
        await sync_until(bob, lambda: room_id in bob.rooms)

        out["ban"] = outcome(await alice.room_ban(room_id, bob.user_id, reason="enough"))
        banned: list[SyncResponse] = []
        for _ in range(5):
            banned += await sync_until(bob, lambda: True, attempts=1)
            if left(banned)["in_leave"]:
                break
        out["after_ban"] = left(banned)
        out["rejoin_after_ban"] = outcome(await bob.join(room_id))
        # Nothing said after the ban reaches the banned user.
        checked(await send_text(alice, room_id, "said after the ban"), RoomSendResponse)
        after = checked(await bob.sync(timeout=0), SyncResponse)
        out["bob_sync_after_ban"] = {
            "in_join": room_id in after.rooms.join,
            "bodies": [
                e.body
                for section in (after.rooms.join, after.rooms.leave)
                for info in section.values()
                for e in info.timeline.events
                if isinstance(e, RoomMessageText)
            ],
        }
        out["invite_after_ban"] = outcome(await alice.room_invite(room_id, bob.user_id))
        out["unban"] = outcome(await alice.room_unban(room_id, bob.user_id))
        out["rejoin_after_unban"] = outcome(await bob.join(room_id))
    return out


async def typing_and_receipts(base_url: str) -> dict[str, Any]:
    """Scenario 10: typing notices and read receipts through sync's ephemeral events."""
    out: dict[str, Any] = {}
    async with registered(base_url, "alice", "bob") as (alice, bob):
        room_id = await shared_room(alice, bob)
        out["alice"], out["bob"] = alice.user_id, bob.user_id
        ephemeral: dict[str, list[dict[str, Any]]] = {"alice": [], "bob": []}

        def recorder(who: str) -> Callable[[MatrixRoom, Any], Awaitable[None]]:
            async def record(room: MatrixRoom, event: Any) -> None:
                if isinstance(event, TypingNoticeEvent):
                    ephemeral[who].append({"typing": event.users})
                elif isinstance(event, ReceiptEvent):
                    ephemeral[who].append(
                        {
                            "receipts": [
                                {
                                    "event_id": r.event_id,
                                    "receipt_type": r.receipt_type,
                                    "user_id": r.user_id,
                                    "thread_id": r.thread_id,
                                    "has_ts": isinstance(r.timestamp, int),
                                }
                                for r in event.receipts
                            ]
                        }
                    )

            return record

        alice.add_ephemeral_callback(recorder("alice"), (TypingNoticeEvent, ReceiptEvent))
        bob.add_ephemeral_callback(recorder("bob"), (TypingNoticeEvent, ReceiptEvent))

        message = checked(await send_text(bob, room_id, "read me"), RoomSendResponse)
        out["message_id"] = message.event_id
        out["typing_on"] = outcome(await alice.room_typing(room_id, True, timeout=30000))
        bob_room = bob.rooms[room_id]
        await sync_until(bob, lambda: alice.user_id in bob_room.typing_users)
        out["bob_sees_typing"] = list(bob_room.typing_users)

        # nio's default: a receipt on the main timeline (thread_id "main").
        out["receipt"] = outcome(await alice.update_receipt_marker(room_id, message.event_id))

        def alice_receipt() -> Any:
            return bob_room.threaded_read_receipts.get(alice.user_id, {}).get(
                "main"
            ) or bob_room.read_receipts.get(alice.user_id)

        await sync_until(bob, lambda: alice_receipt() is not None)
        receipt = alice_receipt()
        out["bob_sees_receipt"] = (
            None
            if receipt is None
            else {
                "event_id": receipt.event_id,
                "receipt_type": receipt.receipt_type,
                "thread_id": receipt.thread_id,
            }
        )

        out["typing_off"] = outcome(await alice.room_typing(room_id, False))
        await sync_until(bob, lambda: alice.user_id not in bob_room.typing_users)
        out["bob_sees_typing_after_stop"] = list(bob_room.typing_users)

        # An unthreaded receipt the other way, through /read_markers.
        reply = checked(await send_text(alice, room_id, "read me too"), RoomSendResponse)
        out["reply_id"] = reply.event_id
        out["read_markers"] = outcome(
            await bob.room_read_markers(room_id, reply.event_id, read_event=reply.event_id)
        )
        alice_room = alice.rooms[room_id]
        await sync_until(alice, lambda: bob.user_id in alice_room.read_receipts)
        bob_receipt = alice_room.read_receipts.get(bob.user_id)
        out["alice_sees_receipt"] = (
            None
            if bob_receipt is None
            else {
                "event_id": bob_receipt.event_id,
                "receipt_type": bob_receipt.receipt_type,
                "thread_id": bob_receipt.thread_id,
            }
        )
        out["ephemeral"] = ephemeral
    return out


SCENARIOS: dict[str, Callable[[str], Coroutine[Any, Any, dict[str, Any]]]] = {
    "private_group": private_group,
    "muting": muting,
    "only_admins_rename": only_admins_rename,
    "edits_and_redactions": edits_and_redactions,
    "pagination": pagination,
    "long_poll_wakes_up": long_poll_wakes_up,
    "rate_limited": rate_limited,
    "kick_and_ban": kick_and_ban,
    "typing_and_receipts": typing_and_receipts,
}


def main() -> None:
    scenario, base_url = sys.argv[1], sys.argv[2]
    result = asyncio.run(SCENARIOS[scenario](base_url))
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
