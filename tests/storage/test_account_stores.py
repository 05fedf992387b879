"""ProfileStore, LoginTokenStore and the new UserStore methods, on both engines."""

from __future__ import annotations

import pytest
import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.login_tokens import LoginTokenStore
from homeserver.storage.profiles import Profile, ProfileStore
from homeserver.storage.users import UserStore


@pytest_twisted.ensureDeferred
async def test_profile_is_created_read_and_updated(db: Database) -> None:
    profiles = ProfileStore(db)
    assert await profiles.get_profile("@a:hs") is None
    await profiles.create_profile("@a:hs", "a")
    await profiles.create_profile("@a:hs", "ignored")  # creating twice keeps the first
    assert await profiles.get_profile("@a:hs") == Profile(displayname="a")
    updated = await profiles.set_field("@a:hs", "avatar_url", "mxc://hs/x")
    assert updated == Profile(displayname="a", avatar_url="mxc://hs/x")
    assert await profiles.set_field("@a:hs", "displayname", None) == Profile(None, "mxc://hs/x")
    await profiles.clear_profile("@a:hs")
    assert await profiles.get_profile("@a:hs") == Profile()


@pytest_twisted.ensureDeferred
async def test_profile_field_without_a_row_creates_it(db: Database) -> None:
    profiles = ProfileStore(db)
    assert await profiles.set_field("@b:hs", "displayname", "B") == Profile(displayname="B")


@pytest_twisted.ensureDeferred
async def test_profile_refuses_unknown_fields(db: Database) -> None:
    with pytest.raises(ValueError):
        await ProfileStore(db).set_field("@a:hs", "password_hash", "x")


@pytest_twisted.ensureDeferred
async def test_login_token_is_single_use_and_expires(db: Database) -> None:
    tokens = LoginTokenStore(db)
    await tokens.add_login_token("h1", "@a:hs", expires_ts=1000)
    await tokens.add_login_token("h2", "@b:hs", expires_ts=1000)
    assert await tokens.consume_login_token("h1", now_ms=500) == "@a:hs"
    assert await tokens.consume_login_token("h1", now_ms=500) is None
    assert await tokens.consume_login_token("h2", now_ms=1000) is None  # expired
    assert await db.execute("count", "SELECT COUNT(*) FROM login_tokens") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_user_lookup_ignores_case_unless_ambiguous(db: Database) -> None:
    users = UserStore(db)
    await users.create_user("@alice:hs", password_hash=None, created_ts=1)
    assert await users.find_user_case_insensitive("@ALICE:hs") == "@alice:hs"
    assert await users.find_user_case_insensitive("@bob:hs") is None
    # Two historical accounts differing only in case: only exact matches count.
    await users.create_user("@Carol:hs", password_hash=None, created_ts=1)
    await users.create_user("@carol:hs", password_hash=None, created_ts=1)
    assert await users.find_user_case_insensitive("@CAROL:hs") is None
    assert await users.find_user_case_insensitive("@Carol:hs") == "@Carol:hs"


@pytest_twisted.ensureDeferred
async def test_password_change_and_deactivation(db: Database) -> None:
    users = UserStore(db)
    await users.create_user("@a:hs", password_hash="old", created_ts=1)
    await users.set_password_hash("@a:hs", "new")
    record = await users.get_user("@a:hs")
    assert record is not None and record.password_hash == "new"
    await users.deactivate_user("@a:hs")
    record = await users.get_user("@a:hs")
    assert record is not None and record.deactivated and record.password_hash is None


@pytest_twisted.ensureDeferred
async def test_generated_localparts_are_numeric_and_increase(db: Database) -> None:
    users = UserStore(db)
    first = await users.next_generated_localpart()
    second = await users.next_generated_localpart()
    assert first.isdigit() and int(second) > int(first)
