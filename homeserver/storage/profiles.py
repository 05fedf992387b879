"""User profiles (display name, avatar): SQL only.  Owns ``profiles``.

spec: client-server-api/_index.md#profiles
"""

from __future__ import annotations

# Profile and PROFILE_FIELDS belong to the profile handler's layer; re-exported here.
from homeserver.profile.fields import PROFILE_FIELDS as PROFILE_FIELDS
from homeserver.profile.fields import Profile as Profile
from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


class ProfileStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create_profile(self, user_id: str, displayname: str | None) -> None:
        await self._db.execute(
            "create_profile",
            "INSERT INTO profiles (user_id, displayname) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO NOTHING",
            user_id,
            displayname,
        )

    async def get_profile(self, user_id: str) -> Profile | None:
        rows = await self._db.execute(
            "get_profile",
            "SELECT displayname, avatar_url FROM profiles WHERE user_id = ?",
            user_id,
        )
        if not rows:
            return None
        return Profile(displayname=rows[0][0], avatar_url=rows[0][1])

    async def set_field(self, user_id: str, field: str, value: str | None) -> Profile:
        """Set one field (creating the row if needed); returns the whole new profile."""
        if field not in PROFILE_FIELDS:
            raise ValueError(f"unknown profile field {field!r}")

        def update(txn: Transaction) -> Profile:
            txn.execute(
                f"INSERT INTO profiles (user_id, {field}) VALUES (?, ?)"
                f" ON CONFLICT (user_id) DO UPDATE SET {field} = excluded.{field}",
                (user_id, value),
            )
            txn.execute(
                "SELECT displayname, avatar_url FROM profiles WHERE user_id = ?", (user_id,)
            )
            row = txn.fetchone()
            assert row is not None
            return Profile(displayname=row[0], avatar_url=row[1])

        return await self._db.run_interaction("set_profile_field", update)

    async def clear_profile(self, user_id: str) -> None:
        await self._db.execute(
            "clear_profile",
            "UPDATE profiles SET displayname = NULL, avatar_url = NULL WHERE user_id = ?",
            user_id,
        )
