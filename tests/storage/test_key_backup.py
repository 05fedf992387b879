"""Key backup storage on both engines: version numbering and deletion, the current
version, keys written under the handler's replacement rule with etag and count kept
in step, reads and deletes by version, room and session, and a bulk upload in one
transaction.

spec: client-server-api/modules/end_to_end_encryption.md#server-side-key-backups
"""

from __future__ import annotations

from typing import Any

import pytest_twisted
from twisted.internet import defer

from homeserver.e2ee.key_backup import replaces
from homeserver.storage.database import Database
from homeserver.storage.key_backup import (
    KeyBackupStore,
    KeysState,
    NotCurrent,
    RoomKey,
    UploadedKey,
    VersionDeletion,
)

ALICE = "@alice:example.org"
BOB = "@bob:example.org"
ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
AUTH: dict[str, Any] = {"public_key": "abcdefg", "signatures": {}}
ROOM = "!room:example.org"
OTHER_ROOM = "!other:example.org"


def key(
    first_index: int = 0, forwarded: int = 0, verified: bool = False, data: str = "x"
) -> RoomKey:
    return RoomKey(first_index, forwarded, verified, {"ciphertext": data, "n": [1, "é"]})


async def upload(
    store: KeyBackupStore, version: int, *keys: tuple[str, str, RoomKey], user: str = ALICE
) -> KeysState | NotCurrent:
    return await store.upload_keys(
        user, version, [UploadedKey(r, s, k) for r, s, k in keys], replaces
    )


@pytest_twisted.ensureDeferred
async def test_versions_are_numbered_per_user_and_never_reused(db: Database) -> None:
    store = KeyBackupStore(db)
    assert await store.create_version(ALICE, ALGORITHM, AUTH) == 1
    assert await store.create_version(ALICE, ALGORITHM, AUTH) == 2
    assert await store.create_version(BOB, ALGORITHM, AUTH) == 1
    assert await store.delete_version(ALICE, 2) is VersionDeletion.DELETED
    assert await store.create_version(ALICE, ALGORITHM, AUTH) == 3


@pytest_twisted.ensureDeferred
async def test_the_current_version_is_the_newest_undeleted_one(db: Database) -> None:
    store = KeyBackupStore(db)
    assert await store.get_version(ALICE, None) is None
    await store.create_version(ALICE, ALGORITHM, {"public_key": "one"})
    await store.create_version(ALICE, "org.example.other", {"public_key": "two"})
    current = await store.get_version(ALICE, None)
    assert current is not None
    assert (current.version, current.algorithm, current.auth_data) == (
        2,
        "org.example.other",
        {"public_key": "two"},
    )
    assert (current.etag, current.count) == (0, 0)
    await store.delete_version(ALICE, 2)
    after = await store.get_version(ALICE, None)
    assert after is not None and after.version == 1
    assert await store.get_version(ALICE, 2) is None
    assert await store.get_version(BOB, None) is None


@pytest_twisted.ensureDeferred
async def test_deleting_a_version_removes_its_keys_and_succeeds_twice(db: Database) -> None:
    store = KeyBackupStore(db)
    await store.create_version(ALICE, ALGORITHM, AUTH)
    await upload(store, 1, (ROOM, "s1", key()), (ROOM, "s2", key()))
    assert await store.delete_version(ALICE, 1) is VersionDeletion.DELETED
    assert await store.delete_version(ALICE, 1) is VersionDeletion.ALREADY_DELETED
    assert await store.delete_version(ALICE, 7) is VersionDeletion.UNKNOWN
    assert await store.get_keys(ALICE, 1) is None
    rows = await db.execute("count_keys", "SELECT COUNT(*) FROM room_key_backup_keys")
    assert rows[0][0] == 0
    rows = await db.execute(
        "deleted_row", "SELECT auth_data, key_count FROM room_key_backup_versions"
    )
    assert rows == [("{}", 0)]


@pytest_twisted.ensureDeferred
async def test_auth_data_is_replaced_only_on_an_undeleted_version(db: Database) -> None:
    store = KeyBackupStore(db)
    await store.create_version(ALICE, ALGORITHM, AUTH)
    assert await store.update_auth_data(ALICE, 1, {"public_key": "new"})
    found = await store.get_version(ALICE, 1)
    assert found is not None and found.auth_data == {"public_key": "new"}
    assert not await store.update_auth_data(BOB, 1, {"public_key": "bob"})
    await store.delete_version(ALICE, 1)
    assert not await store.update_auth_data(ALICE, 1, {"public_key": "late"})


@pytest_twisted.ensureDeferred
async def test_keys_are_written_only_to_the_current_version(db: Database) -> None:
    store = KeyBackupStore(db)
    assert await upload(store, 1, (ROOM, "s", key())) == NotCurrent(None)
    await store.create_version(ALICE, ALGORITHM, AUTH)
    await store.create_version(ALICE, ALGORITHM, AUTH)
    assert await upload(store, 1, (ROOM, "s", key())) == NotCurrent(2)
    assert await upload(store, 2, (ROOM, "s", key()), user=BOB) == NotCurrent(None)
    assert await upload(store, 2, (ROOM, "s", key())) == KeysState(etag=1, count=1)
    assert await store.get_keys(ALICE, 1) == {}


@pytest_twisted.ensureDeferred
async def test_a_stored_key_is_replaced_only_by_a_better_one(db: Database) -> None:
    store = KeyBackupStore(db)
    await store.create_version(ALICE, ALGORITHM, AUTH)
    stored = key(first_index=5, forwarded=2, verified=False, data="stored")
    assert await upload(store, 1, (ROOM, "s", stored)) == KeysState(1, 1)
    # Worse on the deciding field: kept, etag unchanged.
    assert await upload(store, 1, (ROOM, "s", key(9, 0, False, "later"))) == KeysState(1, 1)
    assert await upload(store, 1, (ROOM, "s", key(5, 3, False, "more"))) == KeysState(1, 1)
    assert await upload(store, 1, (ROOM, "s", key(5, 2, False, "same"))) == KeysState(1, 1)
    keys = await store.get_keys(ALICE, 1)
    assert keys == {ROOM: {"s": stored}}
    # Better: replaced, one more etag, same count.
    better = key(5, 1, False, "fewer forwards")
    assert await upload(store, 1, (ROOM, "s", better)) == KeysState(2, 1)
    assert await store.get_keys(ALICE, 1, ROOM, "s") == {ROOM: {"s": better}}
    verified = key(50, 9, True, "verified")
    assert await upload(store, 1, (ROOM, "s", verified)) == KeysState(3, 1)
    assert await store.get_keys(ALICE, 1, ROOM, "s") == {ROOM: {"s": verified}}


@pytest_twisted.ensureDeferred
async def test_reads_and_deletes_by_version_room_and_session(db: Database) -> None:
    store = KeyBackupStore(db)
    await store.create_version(ALICE, ALGORITHM, AUTH)
    await store.create_version(BOB, ALGORITHM, AUTH)
    await upload(store, 1, (ROOM, "a", key()), (ROOM, "b", key()), (OTHER_ROOM, "c", key()))
    await upload(store, 1, (ROOM, "a", key()), user=BOB)
    all_keys = await store.get_keys(ALICE, 1)
    assert all_keys is not None
    assert {room: sorted(sessions) for room, sessions in all_keys.items()} == {
        ROOM: ["a", "b"],
        OTHER_ROOM: ["c"],
    }
    room_keys = await store.get_keys(ALICE, 1, ROOM)
    assert room_keys is not None and sorted(room_keys[ROOM]) == ["a", "b"]
    assert await store.get_keys(ALICE, 1, ROOM, "missing") == {}
    assert await store.delete_keys(ALICE, 1, ROOM, "missing") == KeysState(1, 3)
    assert await store.delete_keys(ALICE, 1, ROOM, "a") == KeysState(2, 2)
    assert await store.delete_keys(ALICE, 1, ROOM) == KeysState(3, 1)
    assert await store.delete_keys(ALICE, 1) == KeysState(4, 0)
    assert await store.delete_keys(ALICE, 2) is None
    # Bob's key with the same room and session is untouched.
    assert await store.get_keys(BOB, 1) == {ROOM: {"a": key()}}
    version = await store.get_version(BOB, 1)
    assert version is not None and version.count == 1


@pytest_twisted.ensureDeferred
async def test_a_bulk_upload_is_counted_and_read_back(db: Database) -> None:
    store = KeyBackupStore(db)
    await store.create_version(ALICE, ALGORITHM, AUTH)
    rooms = [f"!room{r}:example.org" for r in range(20)]
    first = [(room, f"session{s}", key(s)) for room in rooms for s in range(100)]
    assert await upload(store, 1, *first) == KeysState(1, 2000)
    # Half better, half new (sessions 100-199), in chunks larger than one IN list.
    second = [(room, f"session{s}", key(max(s - 100, 0))) for room in rooms for s in range(50, 150)]
    assert await upload(store, 1, *second) == KeysState(2, 3000)
    keys = await store.get_keys(ALICE, 1)
    assert keys is not None and sum(len(s) for s in keys.values()) == 3000
    assert keys[rooms[3]]["session60"].first_message_index == 0
    assert keys[rooms[3]]["session40"].first_message_index == 40
    version = await store.get_version(ALICE, 1)
    assert version is not None and (version.etag, version.count) == (2, 3000)


@pytest_twisted.ensureDeferred
async def test_concurrent_uploads_keep_the_count_right(db: Database) -> None:
    store = KeyBackupStore(db)
    await store.create_version(ALICE, ALGORITHM, AUTH)
    await defer.gatherResults(
        [
            defer.ensureDeferred(upload(store, 1, *[(ROOM, f"s{i}-{j}", key()) for j in range(20)]))
            for i in range(5)
        ]
        + [defer.ensureDeferred(upload(store, 1, (ROOM, "shared", key(i)))) for i in range(5)]
    )
    version = await store.get_version(ALICE, 1)
    keys = await store.get_keys(ALICE, 1)
    assert version is not None and keys is not None
    assert version.count == len(keys[ROOM]) == 101
    assert keys[ROOM]["shared"].first_message_index == 0


@pytest_twisted.ensureDeferred
async def test_concurrent_creations_get_distinct_versions(db: Database) -> None:
    store = KeyBackupStore(db)
    versions = await defer.gatherResults(
        [defer.ensureDeferred(store.create_version(ALICE, ALGORITHM, AUTH)) for _ in range(5)]
    )
    assert sorted(versions) == [1, 2, 3, 4, 5]


@pytest_twisted.ensureDeferred
async def test_forgetting_a_user_deletes_every_backup(db: Database) -> None:
    store = KeyBackupStore(db)
    await store.create_version(ALICE, ALGORITHM, AUTH)
    await store.create_version(ALICE, ALGORITHM, AUTH)
    await store.create_version(BOB, ALGORITHM, AUTH)
    await upload(store, 2, (ROOM, "a", key()))
    await upload(store, 1, (ROOM, "a", key()), user=BOB)
    await store.delete_all_for_user(ALICE)
    assert await store.get_version(ALICE, None) is None
    assert await store.get_keys(ALICE, 2) is None
    assert await store.get_keys(BOB, 1) == {ROOM: {"a": key()}}
    assert await store.create_version(ALICE, ALGORITHM, AUTH) == 3
