"""Directory visibility and listing through DirectoryHandler, on pipeline-made rooms."""

from __future__ import annotations

import pytest_twisted

from homeserver.directory.handler import MAX_PAGE_SIZE, PublicRoomsPage
from homeserver.storage.directory import PublishedRoom
from tests.directory.conftest import ALICE, BOB, CAROL, Rooms
from tests.directory.test_aliases import fails

DAVE = "@dave:example.org"


def ids(page: PublicRoomsPage) -> list[str]:
    return [room.room_id for room in page.rooms]


@pytest_twisted.ensureDeferred
async def test_visibility_is_private_until_published(rooms: Rooms) -> None:
    room_id = await rooms.room()
    assert await rooms.directory.get_visibility(room_id) == "private"
    await rooms.directory.set_visibility(room_id, "public")
    assert await rooms.directory.get_visibility(room_id) == "public"
    await rooms.directory.set_visibility(room_id, "public")  # no change needed: fine
    await rooms.directory.set_visibility(room_id, "private")
    assert await rooms.directory.get_visibility(room_id) == "private"
    await fails(rooms.directory.set_visibility(room_id, "hidden"), 400, "M_INVALID_PARAM")
    await fails(rooms.directory.get_visibility("!nope:example.org"), 404, "M_NOT_FOUND")
    await fails(rooms.directory.set_visibility("!nope:example.org", "public"), 404, "M_NOT_FOUND")
    await fails(rooms.directory.get_visibility("nope"), 404, "M_NOT_FOUND")


@pytest_twisted.ensureDeferred
async def test_who_may_change_a_rooms_visibility(rooms: Rooms) -> None:
    room_id = await rooms.room(members=(BOB,))
    await fails(
        rooms.directory.change_visibility(BOB, False, room_id, "public"), 403, "M_FORBIDDEN"
    )
    await fails(
        rooms.directory.change_visibility(CAROL, False, room_id, "public"), 403, "M_FORBIDDEN"
    )
    await rooms.directory.change_visibility(ALICE, False, room_id, "public")
    await rooms.directory.change_visibility(CAROL, True, room_id, "private")  # server admin
    assert await rooms.directory.get_visibility(room_id) == "private"
    # Raising Bob to the canonical alias level lets him.
    await rooms.send(
        room_id,
        "m.room.power_levels",
        ALICE,
        {"users": {ALICE: 100}, "events": {"m.room.canonical_alias": 0}},
        "",
    )
    await rooms.directory.change_visibility(BOB, False, room_id, "public")
    await fails(
        rooms.directory.change_visibility(ALICE, False, "!nope:example.org", "public"),
        404,
        "M_NOT_FOUND",
    )
    await fails(
        rooms.directory.change_visibility(ALICE, False, room_id, "open"), 400, "M_INVALID_PARAM"
    )


@pytest_twisted.ensureDeferred
async def test_the_listing_shows_each_rooms_summary(rooms: Rooms) -> None:
    room_id = await rooms.room(members=(BOB,), create={"type": "m.space"})
    await rooms.directory.create_alias(ALICE, "#cheese:example.org", room_id)
    for event_type, content in [
        ("m.room.name", {"name": "Cheese"}),
        ("m.room.topic", {"topic": "All about cheese"}),
        ("m.room.avatar", {"url": "mxc://example.org/cheese"}),
        ("m.room.canonical_alias", {"alias": "#cheese:example.org"}),
        ("m.room.guest_access", {"guest_access": "can_join"}),
        ("m.room.history_visibility", {"history_visibility": "world_readable"}),
    ]:
        await rooms.send(room_id, event_type, ALICE, content, "")
    await rooms.directory.set_visibility(room_id, "public")
    page = await rooms.directory.list_public_rooms()
    assert page.rooms == [
        PublishedRoom(
            room_id=room_id,
            joined_members=2,
            name="Cheese",
            topic="All about cheese",
            avatar_url="mxc://example.org/cheese",
            canonical_alias="#cheese:example.org",
            join_rule="public",
            history_visibility="world_readable",
            guest_access="can_join",
            room_type="m.space",
            federatable=True,
            listed=True,
            search_text="cheese\nall about cheese\n#cheese:example.org",
        )
    ]
    assert (page.next_batch, page.prev_batch, page.total_room_count_estimate) == (None, None, 1)


@pytest_twisted.ensureDeferred
async def test_state_changes_refresh_a_published_room(rooms: Rooms) -> None:
    room_id = await rooms.room()
    other = await rooms.room()
    await rooms.directory.set_visibility(room_id, "public")
    await rooms.send(room_id, "m.room.name", ALICE, {"name": "Renamed"}, "")
    await rooms.send(room_id, "m.room.member", BOB, {"membership": "join"}, BOB)
    await rooms.send(other, "m.room.name", ALICE, {"name": "Unpublished"}, "")
    [summary] = (await rooms.directory.list_public_rooms()).rooms
    assert (summary.name, summary.joined_members) == ("Renamed", 2)
    await rooms.send(room_id, "m.room.topic", ALICE, {"topic": ""}, "")  # empty: no topic
    await rooms.send(room_id, "m.room.member", BOB, {"membership": "leave"}, BOB)
    [summary] = (await rooms.directory.list_public_rooms()).rooms
    assert (summary.topic, summary.joined_members) == (None, 1)
    # An unpublished room stays out, however often its state changes.
    assert await rooms.store.get_published_room(other) is None
    await rooms.directory.set_visibility(room_id, "private")
    await rooms.directory.on_state_changed(room_id)
    assert await rooms.store.get_published_room(room_id) is None


@pytest_twisted.ensureDeferred
async def test_invite_only_rooms_are_listed_only_when_world_readable(rooms: Rooms) -> None:
    room_id = await rooms.room(join_rule="invite")
    knock = await rooms.room(join_rule="knock")
    await rooms.directory.set_visibility(room_id, "public")
    await rooms.directory.set_visibility(knock, "public")
    page = await rooms.directory.list_public_rooms()
    assert (ids(page), page.total_room_count_estimate) == ([knock], 1)
    await rooms.send(
        room_id, "m.room.history_visibility", ALICE, {"history_visibility": "world_readable"}, ""
    )
    assert sorted(ids(await rooms.directory.list_public_rooms())) == sorted([room_id, knock])


@pytest_twisted.ensureDeferred
async def test_pages_follow_member_counts_and_tokens_go_both_ways(rooms: Rooms) -> None:
    sizes = {"big": (BOB, CAROL, DAVE), "medium": (BOB, CAROL), "small": (), "tiny": ()}
    made = {name: await rooms.room(members=members) for name, members in sizes.items()}
    for room_id in made.values():
        await rooms.directory.set_visibility(room_id, "public")
    smallest = sorted([made["small"], made["tiny"]])
    expected = [made["big"], made["medium"], *smallest]

    first = await rooms.directory.list_public_rooms(limit=2)
    assert ids(first) == expected[:2] and first.prev_batch is None
    assert first.next_batch is not None and first.total_room_count_estimate == 4
    second = await rooms.directory.list_public_rooms(limit=2, since=first.next_batch)
    assert ids(second) == expected[2:] and second.next_batch is None
    assert second.prev_batch is not None
    back = await rooms.directory.list_public_rooms(limit=2, since=second.prev_batch)
    assert ids(back) == expected[:2] and back.prev_batch is None
    assert back.next_batch is not None
    again = await rooms.directory.list_public_rooms(limit=1, since=back.next_batch)
    assert ids(again) == expected[2:3]
    # A room joining the directory between pages neither repeats nor hides others.
    newcomer = await rooms.room(members=(BOB, CAROL, DAVE, "@erin:example.org"))
    await rooms.directory.set_visibility(newcomer, "public")
    rest = await rooms.directory.list_public_rooms(since=again.next_batch)
    assert ids(rest) == expected[3:]


@pytest_twisted.ensureDeferred
async def test_search_and_room_type_filters(rooms: Rooms) -> None:
    cheese = await rooms.room()
    space = await rooms.room(create={"type": "m.space"})
    street = await rooms.room()
    await rooms.send(cheese, "m.room.name", ALICE, {"name": "Cheese Lovers"}, "")
    await rooms.send(space, "m.room.topic", ALICE, {"topic": "A space for CHEESE"}, "")
    await rooms.send(street, "m.room.name", ALICE, {"name": "Hauptstraße"}, "")
    for room_id in (cheese, space, street):
        await rooms.directory.set_visibility(room_id, "public")

    async def found(**kwargs: object) -> list[str]:
        return sorted(ids(await rooms.directory.list_public_rooms(**kwargs)))  # type: ignore[arg-type]

    assert await found(search_term="cHeEsE") == sorted([cheese, space])
    assert await found(search_term="STRASSE") == [street]  # casefolded, not just lowered
    assert await found(search_term="cheese", room_types=[None]) == [cheese]
    assert await found(room_types=["m.space"]) == [space]
    assert await found(room_types=[]) == sorted([cheese, space, street])  # no filter
    assert await found(search_term="") == sorted([cheese, space, street])


@pytest_twisted.ensureDeferred
async def test_listing_arguments_out_of_bounds(rooms: Rooms) -> None:
    room_id = await rooms.room()
    await rooms.directory.set_visibility(room_id, "public")
    directory = rooms.directory
    await fails(directory.list_public_rooms(limit=-1), 400, "M_INVALID_PARAM")
    assert ids(await directory.list_public_rooms(limit=0)) == [room_id]
    assert ids(await directory.list_public_rooms(limit=MAX_PAGE_SIZE * 10)) == [room_id]
    assert ids(await directory.list_public_rooms(server="example.org")) == [room_id]
    await fails(directory.list_public_rooms(server="elsewhere.org"), 404, "M_NOT_FOUND")
    await fails(directory.list_public_rooms(server="bad server"), 400, "M_INVALID_PARAM")
    for token in ("garbage!", "e30", "WyJmIiwxXQ", "x" * 3000):
        await fails(directory.list_public_rooms(since=token), 400, "M_INVALID_PARAM")
    assert ids(await directory.list_public_rooms(since="")) == [room_id]  # as if absent
    # No application service networks exist, so none of their rooms are listed.
    page = await directory.list_public_rooms(third_party_instance_id="irc")
    assert (page.rooms, page.total_room_count_estimate) == ([], 1)
    await fails(
        directory.list_public_rooms(include_all_networks=True, third_party_instance_id="irc"),
        400,
        "M_INVALID_PARAM",
    )
    assert ids(await directory.list_public_rooms(include_all_networks=True)) == [room_id]
