"""The message search index and its vocabulary: SQL only.

Owns ``search_events``, ``search_terms``, ``search_rooms`` and, on SQLite, the FTS5
tables over them (schema/0030_search.*.sql).  Reads ``events`` (storage.events) for
each hit's room, sender, type and time and for a user's first membership, and
``receipts`` (storage.receipts) for read marks.

SQLite: an FTS5 external-content index (``bm25`` ranks, rowid = stream position so
newest-first is the index's own order) with the room as a column of its own;
PostgreSQL: a ``tsvector`` with a GIN index (``ts_rank_cd`` ranks) holding a room
lexeme next to the words.  A search in a small part of the index (see
:func:`names_rooms`) ANDs the rooms' tokens into the full-text query, so the index
intersects posting lists instead of testing every hit's room.  The
vocabulary has a trigram index on both (FTS5 ``trigram`` / ``pg_trgm``) for fuzzy
matching.  Text is split into words here, on the database thread
(``search.text``), never on the reactor.  docs/search.md has the reasons.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from homeserver.search.text import words as text_words
from homeserver.storage.database import Database
from homeserver.storage.engines import Sqlite3Engine
from homeserver.storage.receipts import UNTHREADED
from homeserver.storage.state import chunks
from homeserver.storage.transaction import Transaction

Order = Literal["rank", "recent"]

#: ``flags`` bit 0: the content has a string ``url``; bits 1-3: the media kind.
FLAG_HAS_URL = 1
MEDIA_KINDS = {"image": 1, "audio": 2, "video": 3, "file": 4}
#: Searches in at most this many rooms, holding at most this share of the index,
#: name the rooms in the full-text query (an OR of more, or longer, room posting
#: lists costs more than testing each hit's room: docs/search.md has the figures).
ROOM_TOKEN_MAX_ROOMS = 20
ROOM_TOKEN_MAX_SHARE = 0.25

#: Rows per multi-row INSERT (SQLite allows 32766 parameters per statement).
_ROWS_PER_STATEMENT = 500
#: PostgreSQL keeps at most 256 positions per lexeme, each at most 16383.
_PG_MAX_POSITIONS = 256
_PG_MAX_POSITION = 16383
#: The room lexeme's mark on PostgreSQL: never part of a word (search.text).
_ROOM_MARK = "!"
_INDEXED_TYPES = ("m.room.message", "m.room.name", "m.room.topic")


@attrs.frozen
class IndexedEvent:
    stream_ordering: int
    room_nid: int
    flags: int
    #: The searchable text; split into words in the writing transaction.
    text: str


@attrs.frozen
class RoomFacts:
    """What the indexer learnt of a room from a batch."""

    #: Lowest position of an indexed event sent under shared/world_readable
    #: visibility in the batch (None: none).
    first_open: int | None = None
    encrypted: bool = False


@attrs.frozen
class IndexedRoom:
    encrypted: bool
    first_open: int | None
    #: Its rows in the index.
    docs: int = 0


@attrs.frozen
class TermGroup:
    """One word of a query: an event matches if it holds any of these."""

    #: Terms starting with this match (None: no prefix matching).
    prefix: str | None
    exact: tuple[str, ...] = ()


@attrs.frozen
class RoomScope:
    """A room to search, with optional bounds on stream position."""

    room_nid: int
    #: Only events after this position (exclusive).
    after: int | None = None
    #: Only events up to this position (inclusive): a former member's leave.
    up_to: int | None = None


@attrs.frozen
class SearchConditions:
    """What SQL narrows hits by; the caller still applies visibility."""

    rooms: Sequence[RoomScope]
    #: Event types (of the indexed ones); None: all.
    types: tuple[str, ...] | None = None
    senders: tuple[str, ...] | None = None
    not_senders: tuple[str, ...] = ()
    since_ts: int | None = None
    until_ts: int | None = None
    contains_url: bool | None = None
    #: Media kinds (values of MEDIA_KINDS); None: any event.
    media: tuple[int, ...] | None = None
    #: Name the rooms in the full-text query (:func:`names_rooms`).
    room_tokens: bool = False


def names_rooms(rooms: int, room_docs: int, total_docs: int) -> bool:
    """Whether a search in ``rooms`` rooms holding ``room_docs`` of the index's
    ``total_docs`` rows is faster with the rooms in the full-text query."""
    return rooms <= ROOM_TOKEN_MAX_ROOMS and room_docs <= ROOM_TOKEN_MAX_SHARE * total_docs


@attrs.frozen
class Hit:
    event_id: str
    stream_ordering: int
    #: Higher is more relevant.
    rank: float


@attrs.frozen
class PageKey:
    """A hit already shown: the next page starts after it, in the order searched
    (``rank`` is needed for ``rank`` order only)."""

    stream_ordering: int
    rank: float | None = None


class SearchStore:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._sqlite = isinstance(database.engine, Sqlite3Engine)

    # --- writing ----------------------------------------------------------------------

    async def update(
        self,
        added: Sequence[IndexedEvent],
        removed: Collection[int],
        rooms: Mapping[int, RoomFacts] | None = None,
    ) -> None:
        """Index ``added``, forget the events at positions ``removed`` and record
        ``rooms``' facts (an encrypted room loses every row), in one transaction.
        Idempotent: an event already indexed (or already gone) is left as it is, and
        the vocabulary counts only real changes."""
        if added or removed or rooms:
            await self._db.run_interaction(
                "search_update", self._update_txn, added, removed, rooms or {}
            )

    def _update_txn(
        self,
        txn: Transaction,
        added: Sequence[IndexedEvent],
        removed: Collection[int],
        rooms: Mapping[int, RoomFacts],
    ) -> None:
        delta: Counter[str] = Counter()
        #: room NID -> change of its number of rows.
        room_rows: Counter[int] = Counter()
        encrypted = {nid for nid, facts in rooms.items() if facts.encrypted}
        self._record_rooms(txn, rooms)
        # Never a row of an encrypted room, whoever hands it over.
        added_rooms = sorted({doc.room_nid for doc in added} - encrypted)
        for part in chunks(added_rooms, _ROWS_PER_STATEMENT):
            txn.execute(
                "SELECT room_nid FROM search_rooms WHERE encrypted = ?"
                f" AND room_nid IN ({','.join('?' * len(part))})",
                (True, *part),
            )
            encrypted.update(int(nid) for (nid,) in txn.fetchall())
        by_position = {
            doc.stream_ordering: (doc, words)
            for doc in added
            if doc.room_nid not in encrypted and (words := text_words(doc.text))
        }
        for part in chunks(sorted(by_position), _ROWS_PER_STATEMENT):
            args: list[object] = []
            for p in part:
                doc, words = by_position[p]
                if self._sqlite:
                    args.extend((p, doc.room_nid, doc.flags, " ".join(words)))
                else:
                    args.extend((p, doc.flags, _tsvector_literal(doc.room_nid, words)))
            if self._sqlite:
                values = "(?, ?, ?, ?)"
                columns = "stream_ordering, room, flags, words"
            else:
                values = "(?, ?, CAST(? AS tsvector))"
                columns = "stream_ordering, flags, vector"
            # RETURNING names the rows actually inserted: an event indexed before
            # (a repeated batch) does not count its words again.
            txn.execute(
                f"INSERT INTO search_events ({columns}) VALUES {','.join([values] * len(part))}"
                " ON CONFLICT (stream_ordering) DO NOTHING RETURNING stream_ordering",
                args,
            )
            for (position,) in txn.fetchall():
                doc, words = by_position[int(position)]
                delta.update(set(words))
                room_rows[doc.room_nid] += 1
        # The room as its own column (SQLite) or as the '!<nid>' lexeme (PostgreSQL).
        words_column = (
            "room || ' ' || words"
            if self._sqlite
            else "array_to_string(tsvector_to_array(vector), ' ')"
        )
        for part in chunks(sorted(removed), _ROWS_PER_STATEMENT):
            txn.execute(
                "DELETE FROM search_events"
                f" WHERE stream_ordering IN ({','.join('?' * len(part))})"
                f" RETURNING {words_column}",
                part,
            )
            for (row_words,) in txn.fetchall():
                room_nid, stored = self._stored_row(str(row_words))
                delta.subtract(stored)
                room_rows[room_nid] -= 1
        for room_nid in sorted(encrypted):
            if self._sqlite:
                txn.execute(
                    "DELETE FROM search_events WHERE stream_ordering IN"
                    " (SELECT rowid FROM search_fts WHERE search_fts MATCH ?)"
                    f" RETURNING {words_column}",
                    (_fts5_rooms([room_nid]),),
                )
            else:
                txn.execute(
                    "DELETE FROM search_events WHERE vector @@ CAST(? AS tsquery)"
                    f" RETURNING {words_column}",
                    (_pg_room_lexeme(room_nid),),
                )
            for (row_words,) in txn.fetchall():
                delta.subtract(self._stored_row(str(row_words))[1])
            room_rows.pop(room_nid, None)
            txn.execute("UPDATE search_rooms SET docs = 0 WHERE room_nid = ?", (room_nid,))
        self._apply_vocabulary(txn, delta)
        changed = sorted((nid, count) for nid, count in room_rows.items() if count)
        if changed:
            txn.executemany(
                "INSERT INTO search_rooms (room_nid, encrypted, docs) VALUES (?, ?, ?)"
                " ON CONFLICT (room_nid) DO UPDATE SET docs = search_rooms.docs + excluded.docs",
                [(nid, False, count) for nid, count in changed],
            )

    def _stored_row(self, stored: str) -> tuple[int, set[str]]:
        """The room and the distinct words of a removed row (``words_column``)."""
        if self._sqlite:
            room, _, words = stored.partition(" ")
            return int(room), set(words.split())
        found = stored.split()
        room = next(word for word in found if word.startswith(_ROOM_MARK))
        return int(room[len(_ROOM_MARK) :]), {w for w in found if not w.startswith(_ROOM_MARK)}

    def _record_rooms(self, txn: Transaction, rooms: Mapping[int, RoomFacts]) -> None:
        if not rooms:
            return
        txn.executemany(
            "INSERT INTO search_rooms (room_nid, encrypted, first_open, docs) VALUES (?, ?, ?, 0)"
            " ON CONFLICT (room_nid) DO UPDATE SET"
            " encrypted = search_rooms.encrypted OR excluded.encrypted,"
            " first_open = CASE WHEN search_rooms.first_open IS NULL THEN excluded.first_open"
            " WHEN excluded.first_open IS NULL THEN search_rooms.first_open"
            " WHEN excluded.first_open < search_rooms.first_open THEN excluded.first_open"
            " ELSE search_rooms.first_open END",
            [(nid, facts.encrypted, facts.first_open) for nid, facts in sorted(rooms.items())],
        )

    def _apply_vocabulary(self, txn: Transaction, delta: Counter[str]) -> None:
        grown = sorted((term, count) for term, count in delta.items() if count > 0)
        shrunk = sorted((term, -count) for term, count in delta.items() if count < 0)
        for rows in chunks(grown, _ROWS_PER_STATEMENT):
            txn.execute(
                f"INSERT INTO search_terms (term, docs) VALUES {','.join(['(?, ?)'] * len(rows))}"
                " ON CONFLICT (term) DO UPDATE SET docs = search_terms.docs + excluded.docs",
                [value for row in rows for value in row],
            )
        if shrunk:
            txn.executemany(
                "UPDATE search_terms SET docs = docs - ? WHERE term = ?",
                [(count, term) for term, count in shrunk],
            )
            txn.executemany(
                "DELETE FROM search_terms WHERE term = ? AND docs <= 0",
                [(term,) for term, _ in shrunk],
            )

    # --- rooms ------------------------------------------------------------------------

    async def indexed_rooms(self, room_nids: Collection[int]) -> dict[int, IndexedRoom]:
        """room NID -> what the indexer knows of it, for those of ``room_nids`` it has
        seen (a room absent has nothing indexed)."""
        found: dict[int, IndexedRoom] = {}
        for part in chunks(sorted(room_nids), 500):
            rows = await self._db.execute_read(
                "search_indexed_rooms",
                "SELECT room_nid, encrypted, first_open, docs FROM search_rooms"
                f" WHERE room_nid IN ({','.join('?' * len(part))})",
                *part,
            )
            found.update(
                {
                    int(nid): IndexedRoom(
                        bool(encrypted), None if first is None else int(first), int(docs)
                    )
                    for nid, encrypted, first, docs in rows
                }
            )
        return found

    async def indexed_total(self) -> int:
        """Rows in the index (one row per room in ``search_rooms``: a short scan)."""
        rows = await self._db.execute_read(
            "search_indexed_total", "SELECT COALESCE(SUM(docs), 0) FROM search_rooms"
        )
        return int(rows[0][0])

    async def first_memberships(self, user_id: str, room_nids: Collection[int]) -> dict[int, int]:
        """room NID -> the stream position of the user's first membership event there
        (invite, join, knock...), over the index of membership events by target."""
        wanted = set(room_nids)
        if not wanted:
            return {}
        rows = await self._db.execute_read(
            "search_first_memberships",
            "SELECT room_nid, MIN(stream_ordering) FROM events"
            " WHERE type = 'm.room.member' AND state_key = ? AND stream_ordering IS NOT NULL"
            " AND outlier = ? AND rejected_reason IS NULL GROUP BY room_nid",
            user_id,
            False,
        )
        return {int(nid): int(first) for nid, first in rows if int(nid) in wanted}

    # --- the vocabulary ---------------------------------------------------------------

    async def term_counts(self, terms: Collection[str]) -> dict[str, int]:
        """term -> how many indexed events hold it, for those of ``terms`` indexed."""
        if not terms:
            return {}
        ordered = sorted(terms)
        rows = await self._db.execute_read(
            "search_term_counts",
            f"SELECT term, docs FROM search_terms WHERE term IN ({','.join('?' * len(ordered))})",
            *ordered,
        )
        return {str(term): int(docs) for term, docs in rows}

    async def terms_sharing_trigrams(self, word: str, limit: int) -> dict[str, int]:
        """Up to ``limit`` terms most alike ``word`` by shared trigrams (with docs)."""
        if self._sqlite:
            trigrams = sorted({word[i : i + 3] for i in range(len(word) - 2)})
            if not trigrams:
                return {}
            rows = await self._db.execute_read(
                "search_terms_by_trigrams",
                "SELECT t.term, t.docs FROM search_term_trigrams g"
                " JOIN search_terms t ON t.term_id = g.rowid"
                " WHERE search_term_trigrams MATCH ? ORDER BY g.rank LIMIT ?",
                " OR ".join(f'"{trigram}"' for trigram in trigrams),
                limit,
            )
        else:
            # '%%' is pg_trgm's similarity operator, escaped for psycopg2's
            # placeholders (PostgreSQL SQL only: SQLite would read it literally).
            rows = await self._db.execute_read(
                "search_terms_by_trigrams",
                "SELECT term, docs FROM search_terms WHERE term %% ?"
                " ORDER BY similarity(term, ?) DESC, term LIMIT ?",
                word,
                word,
                limit,
            )
        return {str(term): int(docs) for term, docs in rows}

    async def terms_starting_like(
        self, starts: Iterable[str], min_length: int, max_length: int, limit: int
    ) -> dict[str, int]:
        """Up to ``limit`` of the most common terms beginning with one of ``starts``
        with a length in ``[min_length, max_length]``: candidates for short
        misspelled words, which share too few trigrams with what they were meant to
        be.  Each start is a range of the term index."""
        ranges: list[str] = []
        args: list[object] = []
        for start in sorted(set(starts)):
            if ord(start[-1]) >= 0x10FFFF:
                ranges.append("term >= ?")
                args.append(start)
            else:
                ranges.append("(term >= ? AND term < ?)")
                args.extend((start, start[:-1] + chr(ord(start[-1]) + 1)))
        if not ranges:
            return {}
        rows = await self._db.execute_read(
            "search_terms_starting_like",
            f"SELECT term, docs FROM search_terms WHERE ({' OR '.join(ranges)})"
            " AND length(term) BETWEEN ? AND ? ORDER BY docs DESC LIMIT ?",
            *args,
            min_length,
            max_length,
            limit,
        )
        return {str(term): int(docs) for term, docs in rows}

    # --- searching --------------------------------------------------------------------

    async def search(
        self,
        groups: Sequence[TermGroup],
        conditions: SearchConditions,
        *,
        order: Order,
        limit: int,
        after: PageKey | None = None,
    ) -> list[Hit]:
        """Hits in ``order`` — ``rank`` (most relevant first, then newest) or
        ``recent`` (newest first) — after the hit ``after`` if given (keyset paging:
        newer events indexed between two pages neither repeat nor push out hits).

        ``bm25`` (SQLite) depends on the whole index (how many events hold a word),
        so ranks drift as events are indexed: the rank of ``after``'s hit is read
        again and the page goes on from where that hit is now."""
        built = self._query(groups, conditions)
        if built is None:
            return []
        sql, args = built
        if self._sqlite:
            rank = "-f.rank"
            position = "f.rowid"
            select = f"SELECT e.event_id, f.rowid, {rank}"
            ordering = "f.rank, f.rowid DESC" if order == "rank" else "f.rowid DESC"
        else:
            # float8: the token carries the exact value compared next time
            # (ts_rank_cd reads the event's vector only: it does not drift).
            rank = "CAST(ts_rank_cd(s.vector, q.words) AS float8)"
            position = "s.stream_ordering"
            select = f"SELECT e.event_id, s.stream_ordering, {rank}"
            ordering = (
                "3 DESC, s.stream_ordering DESC" if order == "rank" else "s.stream_ordering DESC"
            )
        keyset = after is not None and order == "rank" and after.rank is not None
        if after is not None:
            if keyset:
                sql += f" AND ({rank} < ? OR ({rank} = ? AND {position} < ?))"
            else:
                sql += f" AND {position} < ?"
                args.append(after.stream_ordering)
        match = args[0]

        def read(txn: Transaction) -> list[tuple[Any, ...]]:
            extra: list[object] = []
            if keyset:
                assert after is not None and after.rank is not None
                current = after.rank
                if self._sqlite:
                    txn.execute(
                        "SELECT -rank FROM search_fts WHERE search_fts MATCH ? AND rowid = ?",
                        (match, after.stream_ordering),
                    )
                    row = txn.fetchone()
                    if row is not None:
                        current = float(row[0])
                extra = [current, current, after.stream_ordering]
            txn.execute(f"{select} {sql} ORDER BY {ordering} LIMIT ?", (*args, *extra, limit))
            return txn.fetchall()

        rows = await self._db.run_read("search_events", read)
        return [
            Hit(str(event_id), int(position), float(value)) for event_id, position, value in rows
        ]

    async def count(
        self, groups: Sequence[TermGroup], conditions: SearchConditions, cap: int
    ) -> int:
        """How many events match, counting at most ``cap``."""
        built = self._query(groups, conditions)
        if built is None:
            return 0
        sql, args = built
        rows = await self._db.execute_read(
            "search_count",
            f"SELECT COUNT(*) FROM (SELECT 1 {sql} LIMIT ?) AS hits",
            *args,
            cap,
        )
        return int(rows[0][0])

    def _query(
        self, groups: Sequence[TermGroup], conditions: SearchConditions
    ) -> tuple[str, list[object]] | None:
        """``FROM ... WHERE ...`` and its arguments; None if nothing can match."""
        if not groups or not conditions.rooms:
            return None
        room_nids = sorted({scope.room_nid for scope in conditions.rooms})
        room_tokens = conditions.room_tokens and len(room_nids) <= ROOM_TOKEN_MAX_ROOMS
        needs_flags = conditions.contains_url is not None or conditions.media is not None
        if self._sqlite:
            # CROSS JOIN fixes the join order: the full-text match drives, events are
            # looked up by position (never a scan of the rooms' events).
            position = "f.rowid"
            sql = "FROM search_fts f CROSS JOIN events e"
            if needs_flags:
                sql += " CROSS JOIN search_events s"
            clauses = ["search_fts MATCH ?", "e.stream_ordering = f.rowid"]
            if needs_flags:
                clauses.append("s.stream_ordering = f.rowid")
            match = _fts5_words(groups)
            if room_tokens:
                match = f"{_fts5_rooms(room_nids)} AND {match}"
            args: list[object] = [match]
        else:
            position = "s.stream_ordering"
            sql = (
                "FROM search_events s JOIN events e ON e.stream_ordering = s.stream_ordering"
                " CROSS JOIN (SELECT CAST(? AS tsquery) AS query,"
                " CAST(? AS tsquery) AS words) AS q"
            )
            clauses = ["s.vector @@ q.query"]
            words = _tsquery_words(groups)
            match = f"({_tsquery_rooms(room_nids)}) & {words}" if room_tokens else words
            args = [match, words]
        # On SQLite the unary + keeps the room test off the index: events are found
        # by their unique stream position, one probe per hit, not one per room.
        room = "+e.room_nid" if self._sqlite else "e.room_nid"
        room_sql, room_args = _room_clause(conditions.rooms, room, position)
        clauses.append(room_sql)
        args.extend(room_args)
        for column, values, negate in (
            ("e.type", conditions.types, False),
            ("e.sender", conditions.senders, False),
            ("e.sender", conditions.not_senders or None, True),
        ):
            if values is None:
                continue
            if not values:
                if negate:
                    continue
                return None
            clauses.append(
                f"{column} {'NOT IN' if negate else 'IN'} ({','.join('?' * len(values))})"
            )
            args.extend(values)
        if conditions.since_ts is not None:
            clauses.append("e.origin_server_ts >= ?")
            args.append(conditions.since_ts)
        if conditions.until_ts is not None:
            clauses.append("e.origin_server_ts <= ?")
            args.append(conditions.until_ts)
        if conditions.contains_url is not None:
            clauses.append(f"(s.flags & {FLAG_HAS_URL}) = ?")
            args.append(FLAG_HAS_URL if conditions.contains_url else 0)
        if conditions.media is not None:
            if not conditions.media:
                return None
            clauses.append(f"(s.flags >> 1) IN ({','.join('?' * len(conditions.media))})")
            args.extend(conditions.media)
        return f"{sql} WHERE {' AND '.join(clauses)}", args

    # --- read marks -------------------------------------------------------------------

    async def read_marks(self, user_id: str, room_nids: Collection[int]) -> dict[int, int]:
        """room NID -> the newest stream position the user's read receipts (public or
        private, unthreaded or on the main timeline) cover; rooms without one absent."""
        marks: dict[int, int] = {}
        for part in chunks(sorted(room_nids), 200):
            rows = await self._db.execute_read(
                "search_read_marks",
                "SELECT room_nid, MAX(event_stream_ordering) FROM receipts"
                " WHERE user_id = ? AND receipt_type IN (?, ?) AND thread_id IN (?, ?)"
                f" AND room_nid IN ({','.join('?' * len(part))})"
                " AND event_stream_ordering IS NOT NULL GROUP BY room_nid",
                user_id,
                "m.read",
                "m.read.private",
                UNTHREADED,
                "main",
                *part,
            )
            marks.update({int(nid): int(mark) for nid, mark in rows})
        return marks


def _room_clause(rooms: Sequence[RoomScope], room: str, position: str) -> tuple[str, list[object]]:
    """Rooms without bounds as one ``IN`` list, bounded ones as their own ranges."""
    plain = sorted(scope.room_nid for scope in rooms if scope.after is None and scope.up_to is None)
    options: list[str] = []
    args: list[object] = []
    if plain:
        options.append(f"{room} IN ({','.join('?' * len(plain))})")
        args.extend(plain)
    for scope in rooms:
        if scope.after is None and scope.up_to is None:
            continue
        parts = [f"{room} = ?"]
        args.append(scope.room_nid)
        if scope.after is not None:
            parts.append(f"{position} > ?")
            args.append(scope.after)
        if scope.up_to is not None:
            parts.append(f"{position} <= ?")
            args.append(scope.up_to)
        options.append(f"({' AND '.join(parts)})")
    return f"({' OR '.join(options)})", args


def _fts5_rooms(room_nids: Sequence[int]) -> str:
    quoted = " OR ".join(f'"{nid}"' for nid in room_nids)
    return f"room : ({quoted})"


def _fts5_words(groups: Sequence[TermGroup]) -> str:
    """Words ANDed, each a prefix or any of its exact alternatives, in the words
    column.  Terms are runs of letters, marks and digits (search.text), so quoting
    them is all FTS5 needs."""
    parts = []
    for group in groups:
        options = [f'"{group.prefix}"*'] if group.prefix is not None else []
        options.extend(f'"{term}"' for term in group.exact)
        parts.append(f"({' OR '.join(options)})")
    return f"words : ({' AND '.join(parts)})"


def _pg_room_lexeme(room_nid: int) -> str:
    return f"'{_ROOM_MARK}{room_nid}'"


def _tsquery_rooms(room_nids: Sequence[int]) -> str:
    return " | ".join(_pg_room_lexeme(nid) for nid in room_nids)


def _tsquery_words(groups: Sequence[TermGroup]) -> str:
    """The words as a ``tsquery`` literal (cast, not ``to_tsquery``: no text search
    configuration reinterprets the terms)."""
    parts = []
    for group in groups:
        options = [f"'{group.prefix}':*"] if group.prefix is not None else []
        options.extend(f"'{term}'" for term in group.exact)
        parts.append(f"({' | '.join(options)})")
    return " & ".join(parts)


def _tsvector_literal(room_nid: int, words: Sequence[str]) -> str:
    """``'!12' 'word':1,4 'other':2``: the room's lexeme (no position: it never
    ranks), then the words, whose positions rank by proximity (``ts_rank_cd``).
    Every word is kept (search.text caps a text at PostgreSQL's last position), so
    the vector holds exactly the words the vocabulary counts."""
    positions: dict[str, list[int]] = {}
    for index, word in enumerate(words, start=1):
        kept = positions.setdefault(word, [])
        if len(kept) < _PG_MAX_POSITIONS:
            kept.append(min(index, _PG_MAX_POSITION))
    lexemes = " ".join(
        f"'{word}':{','.join(map(str, places))}" for word, places in positions.items()
    )
    return f"{_pg_room_lexeme(room_nid)} {lexemes}"
