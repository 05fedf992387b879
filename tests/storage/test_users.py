"""UserStore on both engines."""

from __future__ import annotations

import pytest
import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.users import UserExistsError, UserStore


@pytest_twisted.ensureDeferred
async def test_created_user_can_be_read_back(db: Database) -> None:
    users = UserStore(db)
    await users.create_user("@alice:localhost", password_hash="h", created_ts=5, is_admin=True)
    record = await users.get_user("@alice:localhost")
    assert record is not None
    assert (record.user_id, record.password_hash, record.is_admin, record.created_ts) == (
        "@alice:localhost",
        "h",
        True,
        5,
    )
    assert record.deactivated is False


@pytest_twisted.ensureDeferred
async def test_registering_a_taken_user_id_fails(db: Database) -> None:
    users = UserStore(db)
    await users.create_user("@bob:localhost", password_hash=None, created_ts=1)
    with pytest.raises(UserExistsError):
        await users.create_user("@bob:localhost", password_hash=None, created_ts=2)
    assert await users.count_users() == 1


@pytest_twisted.ensureDeferred
async def test_unknown_user_is_none(db: Database) -> None:
    assert await UserStore(db).get_user("@nobody:localhost") is None


@pytest_twisted.ensureDeferred
async def test_admin_flag_can_be_changed(db: Database) -> None:
    users = UserStore(db)
    await users.create_user("@carol:localhost", password_hash=None, created_ts=1)
    await users.set_admin("@carol:localhost", True)
    record = await users.get_user("@carol:localhost")
    assert record is not None and record.is_admin
