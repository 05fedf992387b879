"""DirectoryStore on both engines: aliases, published rooms and the listing query."""

from __future__ import annotations

import pytest
import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.directory import (
    AliasMapping,
    DirectoryStore,
    ListingPosition,
    PublishedRoom,
)


def room(
    room_id: str,
    joined: int,
    *,
    search: str = "",
    room_type: str | None = None,
    listed: bool = True,
    name: str | None = None,
) -> PublishedRoom:
    return PublishedRoom(
        room_id=room_id,
        joined_members=joined,
        name=name,
        topic=None,
        avatar_url=None,
        canonical_alias=None,
        join_rule="public",
        history_visibility="shared",
        guest_access="forbidden",
        room_type=room_type,
        federatable=True,
        listed=listed,
        search_text=search,
    )


@pytest_twisted.ensureDeferred
async def test_an_alias_maps_to_one_room_until_deleted(db: Database) -> None:
    store = DirectoryStore(db)
    assert await store.create_alias("#a:hs", "!r:hs", "@u:hs", 1) is True
    assert await store.create_alias("#a:hs", "!other:hs", "@v:hs", 2) is False
    assert await store.get_alias("#a:hs") == AliasMapping("#a:hs", "!r:hs", "@u:hs")
    await store.create_alias("#b:hs", "!r:hs", "@v:hs", 3)
    assert await store.get_aliases_for_room("!r:hs") == ["#a:hs", "#b:hs"]
    assert await store.delete_alias("#a:hs") is True
    assert await store.delete_alias("#a:hs") is False
    assert await store.get_alias("#a:hs") is None
    assert await store.get_aliases_for_room("!r:hs") == ["#b:hs"]


@pytest_twisted.ensureDeferred
async def test_a_summary_update_never_publishes_a_room(db: Database) -> None:
    store = DirectoryStore(db)
    assert await store.update_published_room(room("!r:hs", 3)) is False
    assert not await store.is_published("!r:hs")
    await store.publish_room(room("!r:hs", 3))
    await store.publish_room(room("!r:hs", 4, name="again"))  # publishing twice refreshes
    assert await store.update_published_room(room("!r:hs", 5, name="n")) is True
    assert await store.get_published_room("!r:hs") == room("!r:hs", 5, name="n")
    await store.unpublish_room("!r:hs")
    assert not await store.is_published("!r:hs")
    assert await store.get_published_room("!r:hs") is None


@pytest_twisted.ensureDeferred
async def test_listing_orders_by_members_then_room_id_and_pages_both_ways(db: Database) -> None:
    store = DirectoryStore(db)
    for room_id, joined in [("!d:hs", 1), ("!b:hs", 5), ("!a:hs", 5), ("!c:hs", 9), ("!e:hs", 0)]:
        await store.publish_room(room(room_id, joined))
    await store.publish_room(room("!hidden:hs", 50, listed=False))
    everything, more = await store.list_published_rooms(limit=10)
    assert [r.room_id for r in everything] == ["!c:hs", "!a:hs", "!b:hs", "!d:hs", "!e:hs"]
    assert not more
    assert await store.count_listed_rooms() == 5

    first, more = await store.list_published_rooms(limit=2)
    assert [r.room_id for r in first] == ["!c:hs", "!a:hs"] and more
    second, more = await store.list_published_rooms(limit=2, after=ListingPosition(5, "!a:hs"))
    assert [r.room_id for r in second] == ["!b:hs", "!d:hs"] and more
    last, more = await store.list_published_rooms(limit=2, after=ListingPosition(1, "!d:hs"))
    assert [r.room_id for r in last] == ["!e:hs"] and not more

    back, more = await store.list_published_rooms(limit=2, before=ListingPosition(1, "!d:hs"))
    assert [r.room_id for r in back] == ["!a:hs", "!b:hs"] and more
    back, more = await store.list_published_rooms(limit=2, before=ListingPosition(5, "!a:hs"))
    assert [r.room_id for r in back] == ["!c:hs"] and not more
    with pytest.raises(ValueError):
        await store.list_published_rooms(
            limit=1, after=ListingPosition(1, "!a"), before=ListingPosition(1, "!b")
        )


@pytest_twisted.ensureDeferred
async def test_listing_searches_text_literally(db: Database) -> None:
    store = DirectoryStore(db)
    await store.publish_room(room("!a:hs", 1, search="cheese lovers\n#cheese:hs"))
    await store.publish_room(room("!b:hs", 2, search="100% wine"))
    await store.publish_room(room("!c:hs", 3, search="1000 wines"))
    await store.publish_room(room("!d:hs", 4, search="snake_case"))
    await store.publish_room(room("!e:hs", 5, search="snakescase!"))

    async def found(term: str) -> list[str]:
        rooms, _ = await store.list_published_rooms(limit=10, search=term)
        return sorted(r.room_id for r in rooms)

    assert await found("cheese") == ["!a:hs"]
    assert await found("#cheese:hs") == ["!a:hs"]
    assert await found("0%") == ["!b:hs"]  # % is not a wildcard
    assert await found("e_c") == ["!d:hs"]  # nor is _
    assert await found("e!") == ["!e:hs"]  # nor the escape character itself
    assert await found("absent") == []


@pytest_twisted.ensureDeferred
async def test_listing_filters_room_types_with_null_for_plain_rooms(db: Database) -> None:
    store = DirectoryStore(db)
    await store.publish_room(room("!plain:hs", 1))
    await store.publish_room(room("!space:hs", 2, room_type="m.space"))
    await store.publish_room(room("!custom:hs", 3, room_type="org.example.x"))

    async def found(types: list[str | None] | None) -> list[str]:
        rooms, _ = await store.list_published_rooms(limit=10, room_types=types)
        return sorted(r.room_id for r in rooms)

    assert await found(None) == ["!custom:hs", "!plain:hs", "!space:hs"]
    assert await found([None]) == ["!plain:hs"]
    assert await found(["m.space"]) == ["!space:hs"]
    assert await found([None, "m.space"]) == ["!plain:hs", "!space:hs"]
    assert await found([]) == []
