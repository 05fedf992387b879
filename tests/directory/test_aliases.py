"""Room aliases through DirectoryHandler, on rooms made by the event pipeline."""

from __future__ import annotations

from collections.abc import Awaitable

import pytest
import pytest_twisted

from homeserver.errors import MatrixError
from tests.directory.conftest import ALICE, BOB, CAROL, SERVER, Rooms


async def fails(pending: Awaitable[object], status: int, errcode: str) -> None:
    """``pending`` raises a MatrixError with this status and errcode."""
    with pytest.raises(MatrixError) as raised:
        await pending
    assert (raised.value.status, raised.value.errcode) == (status, errcode)


@pytest_twisted.ensureDeferred
async def test_a_member_creates_an_alias_that_resolves_to_the_room(rooms: Rooms) -> None:
    room_id = await rooms.room(members=(BOB,))
    await rooms.directory.create_alias(BOB, "#chat:example.org", room_id)
    assert await rooms.directory.resolve_alias("#chat:example.org") == (room_id, [SERVER])
    await fails(rooms.directory.create_alias(ALICE, "#chat:example.org", room_id), 409, "M_UNKNOWN")


@pytest_twisted.ensureDeferred
async def test_aliases_must_be_valid_and_local(rooms: Rooms) -> None:
    room_id = await rooms.room()
    for alias in (
        "chat:example.org",
        "#chat",
        "#:example.org",
        "#a:bad server",
        "#a\x00:example.org",
    ):
        await fails(rooms.directory.create_alias(ALICE, alias, room_id), 400, "M_INVALID_PARAM")
        await fails(rooms.directory.resolve_alias(alias), 400, "M_INVALID_PARAM")
    await fails(
        rooms.directory.create_alias(ALICE, "#chat:elsewhere.org", room_id), 400, "M_INVALID_PARAM"
    )
    await fails(
        rooms.directory.create_alias(ALICE, "#chat:example.org", "not-a-room"),
        400,
        "M_INVALID_PARAM",
    )


@pytest_twisted.ensureDeferred
async def test_unknown_rooms_and_aliases_are_not_found(rooms: Rooms) -> None:
    await fails(
        rooms.directory.create_alias(ALICE, "#x:example.org", "!nope:example.org"),
        404,
        "M_NOT_FOUND",
    )
    await fails(rooms.directory.resolve_alias("#x:example.org"), 404, "M_NOT_FOUND")
    # Other servers' aliases need federation, which does not exist yet.
    await fails(rooms.directory.resolve_alias("#x:elsewhere.org"), 404, "M_NOT_FOUND")
    await fails(rooms.directory.delete_alias(ALICE, True, "#x:example.org"), 404, "M_NOT_FOUND")


@pytest_twisted.ensureDeferred
async def test_only_members_create_aliases_unless_admin_or_unchecked(rooms: Rooms) -> None:
    room_id = await rooms.room()
    await fails(rooms.directory.create_alias(BOB, "#b:example.org", room_id), 403, "M_FORBIDDEN")
    await rooms.directory.create_alias(BOB, "#admin:example.org", room_id, is_admin=True)
    # /createRoom creates the alias before anyone could have joined.
    await rooms.directory.create_alias(
        CAROL, "#new:example.org", "!not-yet:example.org", check_can_create=False
    )
    assert (await rooms.directory.resolve_alias("#new:example.org"))[0] == "!not-yet:example.org"


@pytest_twisted.ensureDeferred
async def test_who_may_delete_an_alias(rooms: Rooms) -> None:
    room_id = await rooms.room(members=(BOB, CAROL))
    for name in ("one", "two", "three", "four"):
        await rooms.directory.create_alias(BOB, f"#{name}:example.org", room_id)
    await rooms.directory.create_alias(ALICE, "#alices:example.org", room_id)
    # Carol is in the room but has no power to change its canonical alias.
    await fails(rooms.directory.delete_alias(CAROL, False, "#one:example.org"), 403, "M_FORBIDDEN")
    # A stranger, likewise.
    await fails(
        rooms.directory.delete_alias("@eve:example.org", False, "#one:example.org"),
        403,
        "M_FORBIDDEN",
    )
    await rooms.directory.delete_alias(BOB, False, "#one:example.org")  # its creator
    await rooms.directory.delete_alias(ALICE, False, "#two:example.org")  # power 100
    await rooms.directory.delete_alias("@admin:example.org", True, "#three:example.org")
    # Bob created #alices? No: Alice did, and Bob lacks the power.
    await fails(rooms.directory.delete_alias(BOB, False, "#alices:example.org"), 403, "M_FORBIDDEN")
    # Having the power no longer counts once one has left the room.
    await rooms.send(room_id, "m.room.member", ALICE, {"membership": "leave"}, ALICE)
    await fails(rooms.directory.delete_alias(ALICE, False, "#four:example.org"), 403, "M_FORBIDDEN")
    for alias in ("#one:example.org", "#two:example.org", "#three:example.org"):
        await fails(rooms.directory.resolve_alias(alias), 404, "M_NOT_FOUND")
    assert await rooms.directory.get_local_aliases(BOB, False, room_id) == [
        "#alices:example.org",
        "#four:example.org",
    ]


@pytest_twisted.ensureDeferred
async def test_room_v12_creators_may_delete_any_alias(rooms: Rooms) -> None:
    room_id = await rooms.room(version="12", members=(BOB,))
    await rooms.directory.create_alias(BOB, "#v12:example.org", room_id)
    await rooms.directory.delete_alias(ALICE, False, "#v12:example.org")


@pytest_twisted.ensureDeferred
async def test_local_aliases_are_listed_to_members_or_if_world_readable(rooms: Rooms) -> None:
    room_id = await rooms.room(members=(BOB,))
    await rooms.directory.create_alias(BOB, "#b:example.org", room_id)
    await rooms.directory.create_alias(BOB, "#a:example.org", room_id)
    expected = ["#a:example.org", "#b:example.org"]
    assert await rooms.directory.get_local_aliases(BOB, False, room_id) == expected
    assert await rooms.directory.get_local_aliases(CAROL, True, room_id) == expected  # admin
    await fails(rooms.directory.get_local_aliases(CAROL, False, room_id), 403, "M_FORBIDDEN")
    await fails(
        rooms.directory.get_local_aliases(CAROL, False, "!unknown:example.org"), 403, "M_FORBIDDEN"
    )
    await fails(rooms.directory.get_local_aliases(CAROL, False, "bad"), 400, "M_INVALID_PARAM")
    await rooms.send(
        room_id,
        "m.room.history_visibility",
        ALICE,
        {"history_visibility": "world_readable"},
        "",
    )
    assert await rooms.directory.get_local_aliases(CAROL, False, room_id) == expected
