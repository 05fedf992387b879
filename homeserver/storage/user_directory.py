"""The user directory's index and its search: SQL only.

Owns ``user_directory``, ``user_directory_search`` (SQLite), ``user_directory_words``,
``user_directory_vocabulary``, ``user_directory_public_rooms`` and
``user_directory_progress`` (schema/0031_user_directory.*.sql).  Reads ``users`` and
``profiles`` (to index accounts) and ``room_memberships`` (who shares a room with
whom), owned by storage.users, storage.profiles and storage.events.

Substring search runs on trigrams: SQLite's FTS5 ``trigram`` tokenizer, PostgreSQL's
``pg_trgm`` GIN index under ``LIKE``.  Both see the same normalised text, so both
engines find the same users.  A search ranks the matching users first and decides
visibility only for a bounded window of the best of them (docs/user-directory.md).

spec: client-server-api/_index.md#post_matrixclientv3user_directorysearch
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction
from homeserver.userdir.records import DirectoryEntry as DirectoryEntry
from homeserver.userdir.records import DirectoryHit as DirectoryHit
from homeserver.userdir.records import LocalProfile as LocalProfile
from homeserver.userdir.records import SearchPlan as SearchPlan

#: Builds a local user's row from their account and profile (pure, no I/O: it runs
#: inside the transaction that read the profile).
EntryFactory = Callable[[LocalProfile], DirectoryEntry]

#: Accounts are looked for from this long before the newest one indexed: an account
#: whose transaction committed after a later one's is still found.  An account
#: without a profile row is left alone for this long too: registration writes the
#: profile a moment after the account.
REGISTRATION_MARGIN_MS = 60_000
#: Above every character, so ``[p, p + _TOP)`` is every string that starts with ``p``.
_TOP = "\U0010ffff"
_ROWS_PER_INSERT = 400
#: Candidates ranked, then checked for visibility, per round: a search whose page is
#: not full after a round widens to the next.  Past their sum (11,100) the matching
#: users the searcher may not see are not looked through any further.
CANDIDATE_WINDOWS = (100, 1_000, 10_000)


class UserDirectoryStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    # --- keeping the index -----------------------------------------------------------

    async def upsert(self, entries: Sequence[DirectoryEntry]) -> None:
        """Index or re-index users.  A local user who is deactivated or a support
        account by the time this runs is removed instead."""
        if entries:
            await self._db.run_interaction("user_directory_upsert", _write_txn, entries, False)

    async def insert_missing(self, entries: Sequence[DirectoryEntry]) -> None:
        """Index the users not in the directory yet; leave the others' rows alone."""
        if entries:
            await self._db.run_interaction("user_directory_insert", _write_txn, entries, True)

    async def index_local_users(self, user_ids: Sequence[str], make: EntryFactory) -> None:
        """(Re-)index local users from their profile as it is now, read in the same
        transaction (and on PostgreSQL share-locked until it commits, so a profile
        change's own write, which comes after its commit, is the later one)."""
        await self._db.run_interaction(
            "user_directory_index_local", _index_local_txn, list(user_ids), make
        )

    async def catch_up_local_users(
        self, limit: int, now_ms: int, make: EntryFactory
    ) -> list[LocalProfile]:
        """Insert (never overwrite) up to ``limit`` accounts created since the
        directory last looked and not in it, oldest first; returns the accounts read.
        Their profiles are read in the same transaction."""
        return await self._db.run_interaction(
            "user_directory_catch_up", _catch_up_txn, limit, now_ms, make
        )

    async def advance_progress(self, created_ts: int, min_step: int = 0) -> None:
        """Accounts created before ``created_ts`` (less the margin) are indexed.  Only
        moves forward, and only by ``min_step`` or more (a write per search at most
        once a minute)."""
        await self._db.execute(
            "user_directory_advance_progress",
            "UPDATE user_directory_progress SET users_created_ts = ? WHERE users_created_ts < ?",
            created_ts,
            created_ts - min_step,
        )

    async def remove(self, user_id: str) -> None:
        await self._db.run_interaction("user_directory_remove", _remove_txn, user_id)

    async def remove_roomless_remote_users(self, user_ids: Sequence[str]) -> list[str]:
        """Remove those of the remote ``user_ids`` joined to no room here any more
        (one index probe each); returns them."""
        return await self._db.run_interaction(
            "user_directory_remove_roomless", _remove_roomless_txn, list(user_ids)
        )

    async def set_room_public(self, room_nid: int, public: bool) -> None:
        """Whether anyone may find the members of a room (public join rule or
        world-readable history in its current state)."""
        if public:
            sql = (
                "INSERT INTO user_directory_public_rooms (room_nid) VALUES (?)"
                " ON CONFLICT (room_nid) DO NOTHING"
            )
        else:
            sql = "DELETE FROM user_directory_public_rooms WHERE room_nid = ?"
        await self._db.execute("user_directory_set_room_public", sql, room_nid)

    # --- searching -------------------------------------------------------------------

    async def words_near(self, prefixes: Sequence[str], lengths: range, limit: int) -> list[str]:
        """Distinct indexed words starting with one of ``prefixes`` with a length in
        ``lengths``, at most ``limit`` (one index range per prefix and length): the
        candidates for a misspelt query word."""
        ranges = [(prefix, length) for prefix in dict.fromkeys(prefixes) for length in lengths]
        if not ranges:
            return []
        where = " OR ".join("(length = ? AND word >= ? AND word < ?)" for _ in ranges)
        args = [value for prefix, length in ranges for value in (length, prefix, prefix + _TOP)]
        rows = await self._db.execute_read(
            "user_directory_words_near",
            f"SELECT word FROM user_directory_vocabulary WHERE {where} LIMIT ?",
            *args,
            limit,
        )
        return [str(row[0]) for row in rows]

    async def search(self, plan: SearchPlan) -> list[DirectoryHit]:
        """The users matching ``plan`` that its searcher may see, best first, at most
        ``plan.limit``: the best-ranked matches are checked for visibility one window
        at a time, so the cost follows the page, not the number of matches."""
        sqlite = self._db.engine.dialect == "sqlite"
        hits: list[DirectoryHit] = []
        offset = 0
        for window in CANDIDATE_WINDOWS:
            sql, args = _search_sql(plan, window, offset, sqlite=sqlite)
            rows = await self._db.execute_read("user_directory_search", sql, *args)
            hits += [DirectoryHit(str(r[0]), r[1], r[2]) for r in rows if r[3]]
            if len(hits) >= plan.limit or len(rows) < window:
                break
            offset += window
        return hits[: plan.limit]


def _write_txn(txn: Transaction, entries: Sequence[DirectoryEntry], insert_only: bool) -> None:
    # The last entry of a user wins; rows and accounts are read once per batch.
    latest = {entry.user_id: entry for entry in entries}
    user_ids = list(latest)
    marks = ", ".join("?" * len(user_ids))
    txn.execute(
        "SELECT user_id, display_name, avatar_url, is_local, name_key, localpart_key,"
        f" search_text, user_id_key FROM user_directory WHERE user_id IN ({marks})",
        user_ids,
    )
    stored = {row[0]: (*row[1:3], bool(row[3]), *row[4:]) for row in txn.fetchall()}
    txn.execute(
        f"SELECT user_id FROM users WHERE user_id IN ({marks})"
        " AND NOT deactivated AND (user_type IS NULL OR user_type <> 'support')",
        user_ids,
    )
    indexable = {row[0] for row in txn.fetchall()}
    words: list[tuple[str, str]] = []
    rewritten: list[str] = []
    for entry in latest.values():
        if entry.is_local and entry.user_id not in indexable:
            _remove_txn(txn, entry.user_id)
            continue
        wanted = (
            entry.display_name,
            entry.avatar_url,
            entry.is_local,
            entry.name_key,
            entry.localpart_key,
            entry.search_text,
            entry.user_id_key,
        )
        if entry.user_id in stored and (insert_only or stored[entry.user_id] == wanted):
            continue  # kept, replayed or unchanged: nothing to rewrite
        insert = (
            "INSERT INTO user_directory (user_id, display_name, avatar_url, is_local,"
            " name_key, localpart_key, search_text, user_id_key)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO "
        )
        if insert_only:
            txn.execute(insert + "NOTHING", (entry.user_id, *wanted))
            if txn.rowcount == 0:
                continue  # indexed by a concurrent write since the read above: keep it
        else:
            txn.execute(
                insert + "UPDATE SET display_name = excluded.display_name,"
                " avatar_url = excluded.avatar_url, is_local = excluded.is_local,"
                " name_key = excluded.name_key, localpart_key = excluded.localpart_key,"
                " search_text = excluded.search_text, user_id_key = excluded.user_id_key",
                (entry.user_id, *wanted),
            )
        if txn.engine.dialect == "sqlite":
            txn.execute("SELECT id FROM user_directory WHERE user_id = ?", (entry.user_id,))
            found = txn.fetchone()
            assert found is not None
            txn.execute("DELETE FROM user_directory_search WHERE rowid = ?", (found[0],))
            txn.execute(
                "INSERT INTO user_directory_search (rowid, search_text) VALUES (?, ?)",
                (found[0], entry.search_text),
            )
        rewritten.append(entry.user_id)
        words += [(word, entry.user_id) for word in entry.words]
    # Whether stored or not at the first read: a concurrent insert may have written
    # words since.
    dropped = _delete_words(txn, rewritten) - {word for word, _ in words}
    # Many rows per statement: one round trip per row would dominate on PostgreSQL.
    for start in range(0, len(words), _ROWS_PER_INSERT):
        chunk = words[start : start + _ROWS_PER_INSERT]
        txn.execute(
            "INSERT INTO user_directory_words (word, user_id) VALUES "
            + ", ".join("(?, ?)" for _ in chunk)
            + " ON CONFLICT DO NOTHING",
            [value for row in chunk for value in row],
        )
    vocabulary = sorted({word for word, _ in words})
    for start in range(0, len(vocabulary), _ROWS_PER_INSERT):
        part = vocabulary[start : start + _ROWS_PER_INSERT]
        txn.execute(
            "INSERT INTO user_directory_vocabulary (word, length) VALUES "
            + ", ".join("(?, ?)" for _ in part)
            + " ON CONFLICT (word) DO NOTHING",
            [value for word in part for value in (word, len(word))],
        )
    _forget_unused_words(txn, dropped)


def _delete_words(txn: Transaction, user_ids: list[str]) -> set[str]:
    """Delete the users' words; returns them."""
    old: set[str] = set()
    for start in range(0, len(user_ids), _ROWS_PER_INSERT):
        part = user_ids[start : start + _ROWS_PER_INSERT]
        txn.execute(
            "DELETE FROM user_directory_words WHERE user_id IN"
            f" ({', '.join('?' * len(part))}) RETURNING word",
            part,
        )
        old |= {str(row[0]) for row in txn.fetchall()}
    return old


def _forget_unused_words(txn: Transaction, words: set[str]) -> None:
    """Drop from the vocabulary the ``words`` no user has any more.  (On PostgreSQL a
    concurrent transaction adding one of them back may lose its vocabulary row: that
    word then tolerates no typo until some user is indexed with it again.)"""
    ordered = sorted(words)
    for start in range(0, len(ordered), _ROWS_PER_INSERT):
        part = ordered[start : start + _ROWS_PER_INSERT]
        txn.execute(
            "DELETE FROM user_directory_vocabulary WHERE word IN"
            f" ({', '.join('?' * len(part))}) AND NOT EXISTS (SELECT 1 FROM"
            " user_directory_words AS w WHERE w.word = user_directory_vocabulary.word)",
            part,
        )


def _remove_txn(txn: Transaction, user_id: str) -> None:
    if txn.engine.dialect == "sqlite":
        txn.execute(
            "DELETE FROM user_directory_search WHERE rowid IN"
            " (SELECT id FROM user_directory WHERE user_id = ?)",
            (user_id,),
        )
    txn.execute("DELETE FROM user_directory WHERE user_id = ?", (user_id,))
    _forget_unused_words(txn, _delete_words(txn, [user_id]))


def _remove_roomless_txn(txn: Transaction, user_ids: list[str]) -> list[str]:
    removed = []
    for user_id in user_ids:
        txn.execute(
            "SELECT 1 FROM user_directory AS d WHERE d.user_id = ? AND NOT d.is_local"
            " AND NOT EXISTS (SELECT 1 FROM room_memberships AS m"
            " WHERE m.user_id = d.user_id AND m.membership = 'join')",
            (user_id,),
        )
        if txn.fetchone() is not None:
            _remove_txn(txn, user_id)
            removed.append(user_id)
    return removed


_PROFILE_COLUMNS = "SELECT u.user_id, p.displayname, p.avatar_url, u.created_ts FROM users AS u"


def _index_local_txn(txn: Transaction, user_ids: list[str], make: EntryFactory) -> None:
    if not user_ids:
        return
    marks = ", ".join("?" * len(user_ids))
    if txn.engine.dialect == "postgres":
        # (SQLite runs one write transaction at a time: nothing to lock.)
        txn.execute(f"SELECT 1 FROM profiles WHERE user_id IN ({marks}) FOR SHARE", user_ids)
    txn.execute(
        f"{_PROFILE_COLUMNS} LEFT JOIN profiles AS p ON p.user_id = u.user_id"
        f" WHERE u.user_id IN ({marks})",
        user_ids,
    )
    profiles = [LocalProfile(str(r[0]), r[1], r[2], int(r[3])) for r in txn.fetchall()]
    # A user who is gone or not indexable is removed by the write.
    _write_txn(txn, [make(profile) for profile in profiles], False)


def _catch_up_txn(
    txn: Transaction, limit: int, now_ms: int, make: EntryFactory
) -> list[LocalProfile]:
    txn.execute(
        f"{_PROFILE_COLUMNS} LEFT JOIN profiles AS p ON p.user_id = u.user_id"
        " WHERE u.created_ts >= (SELECT users_created_ts FROM user_directory_progress) - ?"
        " AND NOT u.deactivated AND (u.user_type IS NULL OR u.user_type <> 'support')"
        # A new account's profile may not be written yet: indexing it now would
        # index it without its name.
        " AND (p.user_id IS NOT NULL OR u.created_ts < ?)"
        " AND NOT EXISTS (SELECT 1 FROM user_directory AS d WHERE d.user_id = u.user_id)"
        " ORDER BY u.created_ts, u.user_id LIMIT ?",
        (REGISTRATION_MARGIN_MS, now_ms - REGISTRATION_MARGIN_MS, limit),
    )
    profiles = [LocalProfile(str(r[0]), r[1], r[2], int(r[3])) for r in txn.fetchall()]
    if profiles:
        _write_txn(txn, [make(profile) for profile in profiles], True)
    return profiles


def _search_sql(
    plan: SearchPlan, window: int, offset: int, *, sqlite: bool
) -> tuple[str, list[Any]]:
    """One statement: the ``window`` best-ranked matches from ``offset`` (matching and
    ranking only), then whether the searcher may see each of them."""
    where: list[str] = []
    args: list[Any] = []
    if plan.substrings:
        if sqlite:
            # One MATCH of quoted phrases: each is a literal substring to FTS5.
            where.append(
                "d.id IN (SELECT rowid FROM user_directory_search"
                " WHERE user_directory_search MATCH ?)"
            )
            args.append(" AND ".join(_fts_phrase(word) for word in plan.substrings))
        else:
            for word in plan.substrings:
                where.append("d.search_text LIKE ? ESCAPE '\\'")
                args.append(f"%{_like_escape(word)}%")
    for prefix in plan.prefixes:
        where.append(
            "d.user_id IN (SELECT w.user_id FROM user_directory_words AS w"
            " WHERE w.word >= ? AND w.word < ?)"
        )
        args += [prefix, prefix + _TOP]
    for prefix in plan.user_id_prefixes:
        where.append("d.user_id_key >= ? AND d.user_id_key < ?")
        args += [prefix, prefix + _TOP]
    if plan.near_words:
        every = sorted({word for _, near in plan.near_words for word in near})
        where.append(f"d.user_id IN ({_words_in(len(every))})")
        args += every
        contains = "instr(d.search_text, ?) > 0" if sqlite else "strpos(d.search_text, ?) > 0"
        for word, near in plan.near_words:
            where.append(f"({contains} OR d.user_id IN ({_words_in(len(near))}))")
            args += [word, *near]
    if plan.exclude:
        where.append(f"d.user_id NOT IN ({', '.join('?' * len(plan.exclude))})")
        args += plan.exclude
    if plan.local_only:
        where.append("d.is_local")
    rank = (
        "CASE WHEN d.name_key = ? OR d.localpart_key = ? OR d.user_id_key = ? THEN 0"
        " WHEN substr(d.name_key, 1, ?) = ? OR substr(d.localpart_key, 1, ?) = ? THEN 1"
        " ELSE 2 END"
    )
    rank_args: list[Any] = [
        plan.whole,
        plan.whole_localpart,
        plan.whole,
        len(plan.whole),
        plan.whole,
        len(plan.whole_localpart),
        plan.whole_localpart,
    ]
    local = "CASE WHEN d.is_local THEN 0 ELSE 1 END" if plan.prefer_local else "0"
    candidates = (
        f"SELECT d.user_id, d.display_name, d.avatar_url, {rank} AS r0, {local} AS r1,"
        # spec: "Ordered by rank and then whether or not profile info is available."
        " CASE WHEN d.display_name IS NULL AND d.avatar_url IS NULL THEN 1 ELSE 0 END AS r2,"
        " CASE WHEN d.name_key = '' THEN d.localpart_key ELSE d.name_key END AS r3"
        f" FROM user_directory AS d WHERE {' AND '.join(where) or 'TRUE'}"
        " ORDER BY r0, r1, r2, r3, d.user_id LIMIT ? OFFSET ?"
    )
    # A deactivated account's row is removed at deactivation; this covers the moment
    # in between.
    visible = "NOT EXISTS (SELECT 1 FROM users AS u WHERE u.user_id = c.user_id AND u.deactivated)"
    visible_args: list[Any] = []
    if not plan.search_all_users:
        # Per candidate of the window: its joined rooms, probed against the
        # searcher's joined rooms and the public ones.
        visible += (
            " AND (c.user_id = ? OR EXISTS (SELECT 1 FROM room_memberships AS m"
            " WHERE m.user_id = c.user_id AND m.membership = 'join'"
            " AND (m.room_nid IN (SELECT s.room_nid FROM room_memberships AS s"
            " WHERE s.user_id = ? AND s.membership = 'join')"
            " OR m.room_nid IN (SELECT p.room_nid FROM user_directory_public_rooms AS p))))"
        )
        visible_args = [plan.searcher, plan.searcher]
    sql = (
        f"SELECT c.user_id, c.display_name, c.avatar_url, CASE WHEN {visible} THEN 1 ELSE 0 END"
        f" FROM ({candidates}) AS c ORDER BY c.r0, c.r1, c.r2, c.r3, c.user_id"
    )
    return sql, [*visible_args, *rank_args, *args, window, offset]


def _words_in(count: int) -> str:
    marks = ", ".join("?" * count)
    return f"SELECT w.user_id FROM user_directory_words AS w WHERE w.word IN ({marks})"


def _fts_phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _like_escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
