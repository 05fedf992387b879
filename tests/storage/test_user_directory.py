"""UserDirectoryStore on both engines: indexing, the search query's matching and
visibility (past the first window of candidates too), the vocabulary of typo
candidates, the catch-up of accounts not indexed yet (which never overwrites), and
removing remote users who left every room."""

from __future__ import annotations

import attrs
import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.profiles import ProfileStore
from homeserver.storage.user_directory import CANDIDATE_WINDOWS, SearchPlan, UserDirectoryStore
from homeserver.storage.users import UserStore
from homeserver.userdir.handler import directory_entry, local_entry

HS = "hs.test"


async def account(db: Database, localpart: str, name: str | None, created_ts: int = 1) -> str:
    user_id = f"@{localpart}:{HS}"
    await UserStore(db).create_user(user_id, password_hash=None, created_ts=created_ts)
    await ProfileStore(db).create_profile(user_id, name)
    return user_id


async def index(db: Database, user_id: str, name: str | None, *, local: bool = True) -> None:
    await UserDirectoryStore(db).upsert([directory_entry(user_id, name, None, is_local=local)])


async def join(db: Database, room_nid: int, *user_ids: str, membership: str = "join") -> None:
    # room_memberships belongs to storage.events; the directory only reads it.
    for user_id in user_ids:
        await db.execute(
            "test_join",
            "INSERT INTO room_memberships (room_nid, user_id, membership, event_nid)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (room_nid, user_id)"
            " DO UPDATE SET membership = excluded.membership",
            room_nid,
            user_id,
            membership,
            1,
        )


def plan(searcher: str, *substrings: str, **extra: object) -> SearchPlan:
    fields: dict[str, object] = {
        "searcher": searcher,
        "substrings": substrings,
        "prefixes": (),
        "whole": " ".join(substrings),
        "whole_localpart": " ".join(substrings),
        "limit": 10,
    }
    fields.update(extra)
    return SearchPlan(**fields)  # type: ignore[arg-type]


async def found(store: UserDirectoryStore, search: SearchPlan) -> list[str]:
    return [hit.user_id for hit in await store.search(search)]


@pytest_twisted.ensureDeferred
async def test_substrings_match_display_names_and_user_ids_case_and_accents_aside(
    db: Database,
) -> None:
    store = UserDirectoryStore(db)
    josé = await account(db, "jdoe", None)
    await index(db, josé, "José Ölçer-Smith")
    other = await account(db, "other", None)
    await index(db, other, "Someone Else")
    search_all = {"search_all_users": True}
    assert await found(store, plan(other, "olcer", **search_all)) == [josé]
    assert await found(store, plan(other, "jose", "smith", **search_all)) == [josé]
    assert await found(store, plan(other, "jdo", **search_all)) == [josé]
    # The server name is not searched in (every local user would match part of it);
    # the user ID matches whole or as a prefix.
    assert await found(store, plan(other, "test", **search_all)) == []
    by_id = plan(other, user_id_prefixes=(f"@jdoe:{HS}",), whole=f"@jdoe:{HS}", **search_all)
    assert await found(store, by_id) == [josé]
    assert await found(store, attrs.evolve(by_id, user_id_prefixes=("@jdoe:hs.t",))) == [josé]
    assert await found(store, attrs.evolve(by_id, user_id_prefixes=("@doe",))) == []
    # Every word must match.
    assert await found(store, plan(other, "jose", "else", **search_all)) == []


@pytest_twisted.ensureDeferred
async def test_short_words_match_the_start_of_a_word_only(db: Database) -> None:
    store = UserDirectoryStore(db)
    ann = await account(db, "ann", None)
    await index(db, ann, "Ann Jones")
    mo = await account(db, "mo", None)
    await index(db, mo, "Mo Bijo")  # "jo" inside a word, not at its start
    search = plan(ann, prefixes=("jo",), whole="jo", whole_localpart="jo", search_all_users=True)
    assert await found(store, search) == [ann]


@pytest_twisted.ensureDeferred
async def test_visibility_needs_a_shared_room_or_a_public_one(db: Database) -> None:
    store = UserDirectoryStore(db)
    searcher = await account(db, "searcher", None)
    friend = await account(db, "friend", None)
    stranger = await account(db, "stranger", None)
    for user_id in (searcher, friend, stranger):
        await index(db, user_id, f"Target {user_id[1:4]}")
    await join(db, 1, searcher, friend)
    await join(db, 2, stranger)
    # The searcher sees themself (as Synapse) and the friend, not the stranger.
    assert await found(store, plan(searcher, "target")) == [friend, searcher]
    await store.set_room_public(2, True)
    assert await found(store, plan(searcher, "target")) == [friend, searcher, stranger]
    await join(db, 2, stranger, membership="leave")
    assert await found(store, plan(searcher, "target")) == [friend, searcher]
    await join(db, 2, stranger)
    await store.set_room_public(2, False)
    assert await found(store, plan(searcher, "target")) == [friend, searcher]
    # An invitation is not membership.
    await join(db, 1, stranger, membership="invite")
    assert await found(store, plan(searcher, "target")) == [friend, searcher]
    search_all = plan(searcher, "target", search_all_users=True)
    assert await found(store, search_all) == [friend, searcher, stranger]


@pytest_twisted.ensureDeferred
async def test_deactivated_and_support_accounts_are_never_indexed(db: Database) -> None:
    store = UserDirectoryStore(db)
    users = UserStore(db)
    gone = await account(db, "gone", "Gone Person")
    await index(db, gone, "Gone Person")
    await users.deactivate_user(gone)
    searcher = await account(db, "seeker", None)
    assert await found(store, plan(searcher, "gone", search_all_users=True)) == []
    await index(db, gone, "Gone Again")  # a late profile change does not bring it back
    assert await found(store, plan(searcher, "again", search_all_users=True)) == []
    support = f"@help:{HS}"
    await users.create_user(support, password_hash=None, created_ts=1, user_type="support")
    await index(db, support, "Help Desk")
    assert await found(store, plan(searcher, "desk", search_all_users=True)) == []


@pytest_twisted.ensureDeferred
async def test_reindexing_replaces_the_old_text(db: Database) -> None:
    store = UserDirectoryStore(db)
    user = await account(db, "renamed", None)
    await index(db, user, "Old Name")
    await index(db, user, "Old Name")  # replayed: unchanged
    await index(db, user, "New Name")
    assert await found(store, plan(user, "old", search_all_users=True)) == []
    assert await found(store, plan(user, "new", search_all_users=True)) == [user]
    assert sorted(await store.words_near(["n"], range(1, 10), 10)) == ["name", "new"]
    # The vocabulary forgets a word once no user has it.
    assert await store.words_near(["o"], range(1, 10), 10) == []
    await store.remove(user)
    assert await found(store, plan(user, "new", search_all_users=True)) == []
    assert await store.words_near(["n"], range(1, 10), 10) == []


@pytest_twisted.ensureDeferred
async def test_typo_candidates_are_read_by_prefix_and_length(db: Database) -> None:
    store = UserDirectoryStore(db)
    for localpart, name in [("a1", "Johan"), ("a2", "John"), ("a3", "Jon"), ("a4", "Jo")]:
        await index(db, await account(db, localpart, None), name)
    other = await account(db, "b1", None)
    await index(db, other, "Johan")  # a word two users share is one candidate
    assert sorted(await store.words_near(["j"], range(3, 6), 10)) == ["johan", "john", "jon"]
    assert sorted(await store.words_near(["jo", "jh"], range(4, 5), 10)) == ["john"]
    assert len(await store.words_near(["j"], range(3, 6), 2)) == 2


@pytest_twisted.ensureDeferred
async def test_ranking_exact_then_prefix_then_substring_local_first_when_asked(
    db: Database,
) -> None:
    store = UserDirectoryStore(db)
    searcher = await account(db, "searcher", None)
    substring = await account(db, "aaa", None)
    await index(db, substring, "Big Sam")
    prefix = await account(db, "zzz", None)
    await index(db, prefix, "Samantha")
    exact = await account(db, "sam", None)
    await index(db, exact, None)
    remote = "@sam2:elsewhere.test"
    await index(db, remote, "Sam", local=False)
    search = plan(searcher, "sam", search_all_users=True)
    assert await found(store, search) == [remote, exact, prefix, substring]
    local_first = plan(searcher, "sam", search_all_users=True, prefer_local=True)
    assert await found(store, local_first) == [exact, remote, prefix, substring]
    assert await found(store, plan(searcher, "sam", search_all_users=True, local_only=True)) == [
        exact,
        prefix,
        substring,
    ]
    assert await found(store, plan(searcher, "sam", search_all_users=True, limit=2)) == [
        remote,
        exact,
    ]


@pytest_twisted.ensureDeferred
async def test_near_words_match_users_having_one_of_them(db: Database) -> None:
    store = UserDirectoryStore(db)
    john = await account(db, "jsmith", None)
    await index(db, john, "John Smith")
    joan = await account(db, "joan", None)
    await index(db, joan, "Joan Smith")
    search = plan(
        john,
        "smith",
        near_words=(("jonh", ("john",)),),
        substrings=("smith",),
        search_all_users=True,
    )
    assert await found(store, search) == [john]
    assert await found(store, attrs.evolve(search, exclude=(john,))) == []


NOW = 10_000_000


async def names(db: Database) -> dict[str, str | None]:
    rows = await db.execute_read("test_names", "SELECT user_id, display_name FROM user_directory")
    return {str(row[0]): row[1] for row in rows}


@pytest_twisted.ensureDeferred
async def test_the_catch_up_inserts_missing_accounts_and_never_overwrites(db: Database) -> None:
    store = UserDirectoryStore(db)
    first = await account(db, "first", "First", created_ts=1_000_000)
    second = await account(db, "second", "Second", created_ts=2_000_000)
    # Indexed (by on_registered, then a profile change) before the catch-up looks.
    await index(db, second, "Renamed")
    # Registered a moment ago, its profile not written yet: left for later.
    fresh = f"@fresh:{HS}"
    await UserStore(db).create_user(fresh, password_hash=None, created_ts=NOW - 1)
    caught = await store.catch_up_local_users(10, NOW, local_entry)
    assert [p.user_id for p in caught] == [first]
    assert await names(db) == {first: "First", second: "Renamed"}
    # The profile arrives: the next look indexes it with its name.
    await ProfileStore(db).create_profile(fresh, "Fresh Name")
    assert [p.user_id for p in await store.catch_up_local_users(10, NOW, local_entry)] == [fresh]
    assert (await names(db))[fresh] == "Fresh Name"
    # A stale catch-up entry (read before a profile change) does not overwrite.
    await store.insert_missing([directory_entry(second, "Stale", None, is_local=True)])
    assert (await names(db))[second] == "Renamed"
    # Accounts much older than the watermark are not looked at again.
    await store.advance_progress(NOW)
    await account(db, "ancient", None, created_ts=5)
    assert await store.catch_up_local_users(10, NOW, local_entry) == []


@pytest_twisted.ensureDeferred
async def test_indexing_a_new_account_reads_its_profile_then(db: Database) -> None:
    store = UserDirectoryStore(db)
    user = await account(db, "newbie", None)
    await index(db, user, None)  # as a catch-up between account and profile would
    await ProfileStore(db).set_field(user, "displayname", "Newbie Name")
    await store.index_local_users([user], local_entry)
    assert (await names(db))[user] == "Newbie Name"


@pytest_twisted.ensureDeferred
async def test_a_page_is_filled_past_the_first_window_of_candidates(db: Database) -> None:
    """The searcher sees only the worst-ranked of many matches: later windows find it."""
    store = UserDirectoryStore(db)
    searcher = await account(db, "seer", None)
    hidden = [f"@hidden{i:03}:{HS}" for i in range(CANDIDATE_WINDOWS[0] + 20)]
    for user_id in hidden:
        await UserStore(db).create_user(user_id, password_hash=None, created_ts=1)
    await store.upsert([directory_entry(u, "Target Aaa", None, is_local=True) for u in hidden])
    friend = await account(db, "friend", None)
    await index(db, friend, "Target Zzz")
    await join(db, 1, searcher, friend)
    assert await found(store, plan(searcher, "target")) == [friend]
    assert len(await found(store, plan(searcher, "target", search_all_users=True))) == 10


@pytest_twisted.ensureDeferred
async def test_remote_users_in_no_room_any_more_are_removed(db: Database) -> None:
    store = UserDirectoryStore(db)
    gone, staying = "@gone:remote.test", "@staying:remote.test"
    local = await account(db, "localone", "Local One")
    await index(db, local, "Local One")
    for user_id in (gone, staying):
        await index(db, user_id, "Remote Person", local=False)
    await join(db, 1, gone, staying, local)
    await join(db, 1, gone, membership="leave")
    await join(db, 2, staying)
    await join(db, 1, staying, membership="leave")
    await join(db, 1, local, membership="leave")
    assert await store.remove_roomless_remote_users([gone, staying, local]) == [gone]
    assert set(await names(db)) == {staying, local}
