"""DirectoryStore.move_aliases (room upgrades) on both engines."""

from __future__ import annotations

import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.directory import AliasMapping, DirectoryStore


@pytest_twisted.ensureDeferred
async def test_moving_aliases_repoints_only_the_old_rooms(db: Database) -> None:
    store = DirectoryStore(db)
    await store.create_alias("#b:hs", "!old:hs", "@u:hs", 1)
    await store.create_alias("#a:hs", "!old:hs", "@v:hs", 2)
    await store.create_alias("#c:hs", "!elsewhere:hs", "@u:hs", 3)

    assert await store.move_aliases("!old:hs", "!new:hs") == ["#a:hs", "#b:hs"]

    assert await store.get_aliases_for_room("!new:hs") == ["#a:hs", "#b:hs"]
    assert await store.get_aliases_for_room("!old:hs") == []
    assert await store.get_alias("#a:hs") == AliasMapping("#a:hs", "!new:hs", "@v:hs")
    assert await store.get_alias("#c:hs") == AliasMapping("#c:hs", "!elsewhere:hs", "@u:hs")
    assert await store.move_aliases("!old:hs", "!new:hs") == []
