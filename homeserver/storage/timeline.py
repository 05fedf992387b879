"""Reading rooms the way clients see them: timelines by stream position (``/sync``) or
in graph order (``/messages``, ``/context``), memberships, redactions, relations.  SQL
only; the tables are storage.events' (this is its read side for clients, kept apart
so the write path stays small).

Every timeline read leaves out outliers, rejected and soft-failed events: clients
never see them.  Out-of-band memberships (a local user's invite, rejection or knock
in a room this server was not in: stream position, no state) are not part of the
room's timeline either; only :meth:`TimelineStore.get_room_events` returns one, and
only to the user it is about, when asked (their left room's timeline, as Synapse).
"""

from __future__ import annotations

import collections
from collections.abc import Collection, Sequence
from typing import Literal

import attrs

from homeserver.events.event import Event
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore
from homeserver.storage.state import chunks
from homeserver.storage.transaction import Transaction
from homeserver.util.caches import LruCache

Direction = Literal["b", "f"]

#: An event's place in graph order: ``(depth, stream_ordering)``.  As a bound it
#: stands for the point just after the event at that position.
GraphPosition = tuple[int, int]

#: Longer filter lists are left to the caller's own filter rather than made into
#: SQL with that many parameters.
_MAX_SQL_LIST = 100

_VISIBLE = "outlier = ? AND soft_failed = ? AND rejected_reason IS NULL"
_VISIBLE_ARGS = (False, False)

#: The stream position of a ``room_memberships`` row (alias ``m``, its event ``e``).
#: A member learnt of by joining a room through another server is current state by an
#: outlier (no stream position): such a row holds as of this server's first event in
#: the room's timeline — the join that brought the state in (``persist_joined_room``;
#: out-of-band memberships before it, such as the invite, have no state and do not
#: count).
_MEMBERSHIP_STREAM = (
    "COALESCE(e.stream_ordering, (SELECT MIN(j.stream_ordering) FROM events j"
    " WHERE j.room_nid = m.room_nid AND j.stream_ordering > 0 AND j.outlier = ?"
    " AND j.state_group_before IS NOT NULL))"
)
_MEMBERSHIP_STREAM_ARGS = (False,)


@attrs.frozen
class MembershipRow:
    room_id: str
    room_nid: int
    membership: str
    event_id: str
    stream_ordering: int
    #: The user forgot the room at this membership (and has not rejoined since).
    forgotten: bool = False


@attrs.define
class RoomMemberSummary:
    joined: int = 0
    invited: int = 0
    heroes: list[str] = attrs.Factory(list)


@attrs.frozen
class GraphRow:
    """A visible event of a graph-ordered read, with its place in that order."""

    event: Event
    position: GraphPosition


@attrs.frozen
class EventConditions:
    """What a graph-ordered read may leave out in SQL, so pages with a narrow filter do
    not drag every other event through Python.  A superset of what the caller's own
    filter lets through (SQLite's ``LIKE`` ignores ASCII case), so the caller still
    applies it; lists the SQL would not do well with are simply not narrowed.

    spec: client-server-api/_index.md#filtering (``RoomEventFilter``)
    """

    #: Event types, ``*`` matching any sequence of characters; None: every type.
    types: tuple[str, ...] | None = None
    #: Exact event types to leave out (wildcard ``not_types`` stay with the caller:
    #: a case-blind ``NOT LIKE`` would leave out too much).
    not_types: tuple[str, ...] = ()
    senders: tuple[str, ...] | None = None
    not_senders: tuple[str, ...] = ()

    def sql(self) -> tuple[list[str], list[object]] | None:
        """WHERE clauses and their arguments; None if nothing can match."""
        clauses: list[str] = []
        args: list[object] = []
        if self.types is not None and len(self.types) <= _MAX_SQL_LIST:
            if not self.types:
                return None
            exact = [t for t in self.types if "*" not in t]
            globs = [_like_pattern(t) for t in self.types if "*" in t]
            options = []
            if exact:
                options.append(f"type IN ({','.join('?' * len(exact))})")
                args.extend(exact)
            for pattern in globs:
                options.append("type LIKE ? ESCAPE '\\'")
                args.append(pattern)
            clauses.append(f"({' OR '.join(options)})")
        if self.not_types and len(self.not_types) <= _MAX_SQL_LIST:
            clauses.append(f"type NOT IN ({','.join('?' * len(self.not_types))})")
            args.extend(self.not_types)
        if self.senders is not None and len(self.senders) <= _MAX_SQL_LIST:
            if not self.senders:
                return None
            clauses.append(f"sender IN ({','.join('?' * len(self.senders))})")
            args.extend(self.senders)
        if self.not_senders and len(self.not_senders) <= _MAX_SQL_LIST:
            clauses.append(f"sender NOT IN ({','.join('?' * len(self.not_senders))})")
            args.extend(self.not_senders)
        return clauses, args


def _like_pattern(type_pattern: str) -> str:
    """``*`` becomes ``%``; the characters LIKE reads specially are escaped with ``\\``."""
    escaped = type_pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


@attrs.frozen
class RelationRow:
    event_id: str
    rel_type: str
    aggregation_key: str | None
    stream_ordering: int


class TimelineStore:
    def __init__(self, database: Database, events: EventStore) -> None:
        self._db = database
        self._events = events
        #: user ID -> (events position read at, the user's membership rows): every
        #: /sync reads them, and they change only with the user's membership (the
        #: event store's change cache says when) or a forget (which drops the entry).
        self._memberships: LruCache[str, tuple[int, tuple[MembershipRow, ...]]] = LruCache(50_000)
        #: Bumped by each forget, so a read that raced it is not cached.
        self._forgets: collections.Counter[str] = collections.Counter()

    async def get_room_events(
        self,
        room_nid: int,
        *,
        after: int | None,
        up_to: int | None,
        direction: Direction,
        limit: int,
        types: Collection[str] | None = None,
        out_of_band: str | None = None,
    ) -> list[Event]:
        """Visible events of the live stream with ``after < stream_ordering <= up_to``,
        nearest first: what /sync sees.  History filled in later (backfill) has
        negative positions and is only read in graph order (:meth:`get_graph_page`).

        ``direction`` "b" walks back from ``up_to``, "f" forward from ``after``.
        Out-of-band memberships have no place in the room's graph and are left out
        (a remote join's timeline starts at the join, not at the invite before it),
        except ``out_of_band``: the event ID of the reader's own membership, which
        is a left room's only event when the user left without ever being in it.
        """
        clauses = [
            "room_nid = ?",
            _VISIBLE,
            "stream_ordering > ?",
            "(state_group_before IS NOT NULL OR event_id = ?)",
        ]
        args: list[object] = [room_nid, *_VISIBLE_ARGS, max(after or 0, 0), out_of_band]
        if up_to is not None:
            clauses.append("stream_ordering <= ?")
            args.append(up_to)
        if types is not None:
            if not types:
                return []
            clauses.append(f"type IN ({','.join('?' * len(types))})")
            args.extend(types)
        order = "DESC" if direction == "b" else "ASC"
        rows = await self._db.execute_read(
            "get_room_events",
            f"SELECT event_id FROM events WHERE {' AND '.join(clauses)}"
            f" ORDER BY stream_ordering {order} LIMIT ?",
            *args,
            limit,
        )
        return await self._in_order([row[0] for row in rows])

    async def get_graph_page(
        self,
        room_nid: int,
        *,
        after: GraphPosition | None,
        up_to: GraphPosition | None,
        direction: Direction,
        limit: int,
        conditions: EventConditions | None = None,
    ) -> list[GraphRow]:
        """Visible events with ``after < (depth, stream_ordering) <= up_to``, nearest
        first: "b" walks back from ``up_to`` in descending ``(depth,
        stream_ordering)``, "f" forward from ``after`` in ascending order.  None is
        unbounded.  Backfilled events (negative stream positions) take their place
        by depth like any other.

        spec: client-server-api/_index.md#get_matrixclientv3roomsroomidmessages
        """
        clauses = ["room_nid = ?", _VISIBLE]
        args: list[object] = [room_nid, *_VISIBLE_ARGS]
        # Row-value comparisons ((depth, stream_ordering) <= (?, ?)) are not used as
        # index ranges by SQLite; this form gives both engines a range on depth over
        # events_by_room_graph, with the tie on stream_ordering checked in the index.
        if up_to is not None:
            clauses.append("depth <= ? AND (depth < ? OR stream_ordering <= ?)")
            args.extend((up_to[0], up_to[0], up_to[1]))
        if after is not None:
            clauses.append("depth >= ? AND (depth > ? OR stream_ordering > ?)")
            args.extend((after[0], after[0], after[1]))
        if conditions is not None:
            narrowed = conditions.sql()
            if narrowed is None:
                return []
            clauses.extend(narrowed[0])
            args.extend(narrowed[1])
        order = "DESC" if direction == "b" else "ASC"
        rows = await self._db.execute_read(
            "get_graph_page",
            f"SELECT event_id, depth, stream_ordering FROM events WHERE {' AND '.join(clauses)}"
            f" ORDER BY depth {order}, stream_ordering {order} LIMIT ?",
            *args,
            limit,
        )
        events = await self._events.get_events([row[0] for row in rows])
        return [
            GraphRow(events[event_id], (int(depth), int(stream)))
            for event_id, depth, stream in rows
            if event_id in events
        ]

    async def get_graph_position_at_stream(
        self, room_nid: int, stream: int | None
    ) -> GraphPosition | None:
        """The graph position of the room's last visible event, in graph order, among
        those at stream positions up to ``stream`` (all of them if None); None if
        there is none.  The point after it is the earliest one that every event a
        sync token at ``stream`` covered lies before.

        Reads the graph index down from the room's newest depth, so the cost grows
        with the number of events that arrived after ``stream``: nothing for a token
        from a recent ``/sync``.
        """
        # SQLite would rather range over events_by_room_stream and sort every event
        # of the room up to ``stream`` (milliseconds per thousand events); a unary
        # plus takes that index away from it.  PostgreSQL checks the bound inside the
        # graph index, which the plus would turn into a heap fetch per event.
        column = "+stream_ordering" if self._db.engine.dialect == "sqlite" else "stream_ordering"
        bound = "" if stream is None else f" AND {column} <= ?"
        rows = await self._db.execute_read(
            "get_graph_position_at_stream",
            f"SELECT depth, stream_ordering FROM events WHERE room_nid = ? AND {_VISIBLE}"
            f"{bound} ORDER BY depth DESC, stream_ordering DESC LIMIT 1",
            room_nid,
            *_VISIBLE_ARGS,
            *(() if stream is None else (stream,)),
        )
        return (int(rows[0][0]), int(rows[0][1])) if rows else None

    async def get_graph_position(self, event_id: str) -> GraphPosition | None:
        """The event's ``(depth, stream_ordering)``; None for outliers and unknown IDs."""
        rows = await self._db.execute_read(
            "get_graph_position",
            "SELECT depth, stream_ordering FROM events"
            " WHERE event_id = ? AND stream_ordering IS NOT NULL",
            event_id,
        )
        return (int(rows[0][0]), int(rows[0][1])) if rows else None

    async def get_rooms_with_events_after(
        self, room_nids: Collection[int], after: int, up_to: int
    ) -> set[int]:
        """Which of ``room_nids`` have visible events in ``(after, up_to]``."""

        def read(txn: Transaction) -> set[int]:
            found: set[int] = set()
            for part in chunks(sorted(room_nids)):
                txn.execute(
                    "SELECT DISTINCT room_nid FROM events WHERE stream_ordering > ?"
                    f" AND stream_ordering <= ? AND room_nid IN ({','.join('?' * len(part))})",
                    (after, up_to, *part),
                )
                found.update(int(row[0]) for row in txn.fetchall())
            return found

        if not room_nids or after >= up_to:
            return set()
        return await self._db.run_read("get_rooms_with_events_after", read)

    async def get_memberships_for_user(self, user_id: str) -> list[MembershipRow]:
        """The user's current membership in every room the server knows them in."""
        cached = self._memberships.get(user_id)
        if cached is not None:
            read_at, cached_rows = cached
            if await self._events.membership_changed_since(user_id, read_at) is False:
                return list(cached_rows)
        # Everything up to this position is committed: a change after it is in the
        # change cache by the time it is visible, and invalidates what is read now.
        read_at = await self._events.get_max_stream_ordering()
        forgets = self._forgets[user_id]
        rows = await self._db.execute_read(
            "get_memberships_for_user",
            f"SELECT r.room_id, r.room_nid, m.membership, e.event_id, {_MEMBERSHIP_STREAM},"
            " f.user_id IS NOT NULL"
            " FROM room_memberships m JOIN rooms r ON r.room_nid = m.room_nid"
            " JOIN events e ON e.event_nid = m.event_nid"
            " LEFT JOIN room_forgets f ON f.user_id = m.user_id AND f.room_nid = m.room_nid"
            " AND f.membership_event_nid = m.event_nid"
            " WHERE m.user_id = ?",
            *_MEMBERSHIP_STREAM_ARGS,
            user_id,
        )
        memberships = [_membership_row(row) for row in rows]
        if self._forgets[user_id] == forgets:
            self._memberships.set(user_id, (read_at, tuple(memberships)))
        return memberships

    async def get_membership_changes(
        self, user_id: str, after: int, up_to: int
    ) -> list[MembershipRow]:
        """The user's membership events in ``(after, up_to]``, oldest first."""
        rows = await self._db.execute_read(
            "get_membership_changes",
            "SELECT r.room_id, r.room_nid, e.event_id, e.stream_ordering"
            " FROM events e JOIN rooms r ON r.room_nid = e.room_nid"
            " WHERE e.type = 'm.room.member' AND e.state_key = ?"
            f" AND e.stream_ordering > ? AND e.stream_ordering <= ? AND {_VISIBLE}"
            " ORDER BY e.stream_ordering",
            user_id,
            after,
            up_to,
            *_VISIBLE_ARGS,
        )
        events = await self._events.get_events([row[2] for row in rows])
        changes = []
        for room_id, room_nid, event_id, stream in rows:
            event = events.get(event_id)
            if event is not None and event.membership is not None:
                changes.append(
                    MembershipRow(room_id, int(room_nid), event.membership, event_id, int(stream))
                )
        return changes

    async def get_membership_history(
        self, user_id: str, room_ids: Collection[str], *, lowest: int, highest: int
    ) -> dict[str, list[tuple[int, str]]]:
        """room ID → (stream position, membership) of the user's visible membership
        events in that room, oldest first: the last one at or before ``lowest`` and
        every one up to ``highest`` (enough to know the membership at any position in
        between; for ``unsigned.membership``)."""

        def read(txn: Transaction) -> list[tuple[str, str, int]]:
            found: list[tuple[str, str, int]] = []
            member = (
                "FROM events e JOIN rooms r ON r.room_nid = e.room_nid"
                " WHERE e.type = 'm.room.member' AND e.state_key = ?"
                f" AND e.stream_ordering IS NOT NULL AND {_VISIBLE}"
            )
            for part in chunks(sorted(room_ids)):
                rooms = f" AND r.room_id IN ({','.join('?' * len(part))})"
                txn.execute(
                    "SELECT r.room_id, e.event_id, e.stream_ordering"
                    f" {member}{rooms} AND e.stream_ordering > ? AND e.stream_ordering <= ?",
                    (user_id, *_VISIBLE_ARGS, *part, lowest, highest),
                )
                found.extend((str(a), str(b), int(c)) for a, b, c in txn.fetchall())
                txn.execute(
                    "SELECT r.room_id, e.event_id, e.stream_ordering FROM events e"
                    " JOIN rooms r ON r.room_nid = e.room_nid"
                    " WHERE e.stream_ordering IN (SELECT MAX(e.stream_ordering)"
                    f" {member}{rooms} AND e.stream_ordering <= ? GROUP BY e.room_nid)",
                    (user_id, *_VISIBLE_ARGS, *part, lowest),
                )
                found.extend((str(a), str(b), int(c)) for a, b, c in txn.fetchall())
            return found

        if not room_ids:
            return {}
        rows = await self._db.run_read("get_membership_history", read)
        events = await self._events.get_events([row[1] for row in rows])
        history: dict[str, list[tuple[int, str]]] = {}
        for room_id, event_id, stream in sorted(rows, key=lambda row: row[2]):
            event = events.get(event_id)
            if event is not None and event.membership is not None:
                history.setdefault(room_id, []).append((stream, event.membership))
        return history

    async def get_membership(self, room_nid: int, user_id: str) -> MembershipRow | None:
        """The user's current membership in the room (``forgotten`` set if they
        forgot the room at it)."""
        rows = await self._db.execute_read(
            "get_membership",
            f"SELECT r.room_id, r.room_nid, m.membership, e.event_id, {_MEMBERSHIP_STREAM},"
            " f.user_id IS NOT NULL"
            " FROM room_memberships m JOIN rooms r ON r.room_nid = m.room_nid"
            " JOIN events e ON e.event_nid = m.event_nid"
            " LEFT JOIN room_forgets f ON f.user_id = m.user_id AND f.room_nid = m.room_nid"
            " AND f.membership_event_nid = m.event_nid"
            " WHERE m.room_nid = ? AND m.user_id = ?",
            *_MEMBERSHIP_STREAM_ARGS,
            room_nid,
            user_id,
        )
        return _membership_row(rows[0]) if rows else None

    async def is_joined(self, user_id: str, room_id: str) -> bool:
        """Whether ``user_id`` is joined to ``room_id`` in its current state."""
        rows = await self._db.execute_read(
            "is_joined",
            "SELECT m.membership FROM rooms r JOIN room_memberships m"
            " ON m.room_nid = r.room_nid AND m.user_id = ? WHERE r.room_id = ?",
            user_id,
            room_id,
        )
        return bool(rows) and rows[0][0] == "join"

    async def count_joined_members(self, room_nid: int) -> int:
        rows = await self._db.execute_read(
            "count_joined_members",
            "SELECT COUNT(*) FROM room_memberships WHERE room_nid = ? AND membership = 'join'",
            room_nid,
        )
        return int(rows[0][0])

    async def get_redactions(self, event_ids: Sequence[str]) -> dict[str, str]:
        """target event ID -> the ID of the (first) redaction that applies to it."""

        def read(txn: Transaction) -> dict[str, str]:
            found: dict[str, str] = {}
            for part in chunks(list(event_ids)):
                txn.execute(
                    "SELECT r.redacts_event_id, e.event_id FROM redactions r"
                    " JOIN events e ON e.event_nid = r.redaction_event_nid"
                    f" WHERE r.redacts_event_id IN ({','.join('?' * len(part))})"
                    " ORDER BY e.stream_ordering",
                    part,
                )
                for target, redaction in txn.fetchall():
                    found.setdefault(target, redaction)
            return found

        if not event_ids:
            return {}
        return await self._db.run_read("get_redactions", read)

    async def get_relations(
        self,
        parent_ids: Sequence[str],
        *,
        rel_type: str | None = None,
    ) -> dict[str, list[RelationRow]]:
        """parent event ID -> its visible relations, oldest first."""

        def read(txn: Transaction) -> dict[str, list[RelationRow]]:
            found: dict[str, list[RelationRow]] = {}
            for part in chunks(list(parent_ids)):
                sql = (
                    "SELECT r.relates_to_id, e.event_id, r.rel_type, r.aggregation_key,"
                    " e.stream_ordering FROM event_relations r"
                    " JOIN events e ON e.event_nid = r.event_nid"
                    f" WHERE r.relates_to_id IN ({','.join('?' * len(part))})"
                    " AND e.soft_failed = ? AND e.rejected_reason IS NULL"
                    " AND e.stream_ordering IS NOT NULL"
                )
                args: list[object] = [*part, False]
                if rel_type is not None:
                    sql += " AND r.rel_type = ?"
                    args.append(rel_type)
                txn.execute(sql + " ORDER BY e.stream_ordering", args)
                for parent, event_id, kind, key, stream in txn.fetchall():
                    found.setdefault(parent, []).append(
                        RelationRow(event_id, kind, key, int(stream))
                    )
            return found

        if not parent_ids:
            return {}
        return await self._db.run_read("get_relations", read)

    async def get_thread_roots(
        self, room_nid: int, *, before: int | None, limit: int
    ) -> list[tuple[str, int]]:
        """(thread root ID, stream of its latest reply), latest activity first."""
        rows = await self._db.execute_read(
            "get_thread_roots",
            "SELECT r.relates_to_id, MAX(e.stream_ordering) AS latest FROM event_relations r"
            " JOIN events e ON e.event_nid = r.event_nid"
            " WHERE r.room_nid = ? AND r.rel_type = 'm.thread'"
            " AND e.soft_failed = ? AND e.rejected_reason IS NULL"
            " GROUP BY r.relates_to_id"
            + (" HAVING MAX(e.stream_ordering) < ?" if before is not None else "")
            + " ORDER BY latest DESC LIMIT ?",
            room_nid,
            False,
            *([before] if before is not None else []),
            limit,
        )
        return [(root, int(latest)) for root, latest in rows]

    async def get_event_near_timestamp(
        self, room_nid: int, ts: int, direction: Direction
    ) -> Event | None:
        """The closest visible event at or before (b) / at or after (f) ``ts``."""
        comparison, order = ("<=", "DESC") if direction == "b" else (">=", "ASC")
        rows = await self._db.execute_read(
            "get_event_near_timestamp",
            f"SELECT event_id FROM events WHERE room_nid = ? AND {_VISIBLE}"
            f" AND stream_ordering IS NOT NULL AND origin_server_ts {comparison} ?"
            f" ORDER BY origin_server_ts {order}, stream_ordering {order} LIMIT 1",
            room_nid,
            *_VISIBLE_ARGS,
            ts,
        )
        if not rows:
            return None
        return (await self._events.get_events([rows[0][0]])).get(rows[0][0])

    async def forget_room(self, user_id: str, room_nid: int, membership_event_id: str) -> None:
        def forget(txn: Transaction) -> None:
            txn.execute("SELECT event_nid FROM events WHERE event_id = ?", (membership_event_id,))
            row = txn.fetchone()
            if row is None:
                return
            txn.execute(
                "INSERT INTO room_forgets (user_id, room_nid, membership_event_nid)"
                " VALUES (?, ?, ?) ON CONFLICT (user_id, room_nid) DO UPDATE SET"
                " membership_event_nid = excluded.membership_event_nid",
                (user_id, room_nid, int(row[0])),
            )

        # Before and after: a read of the rows that overlaps the write is not cached.
        self._forgets[user_id] += 1
        try:
            await self._db.run_interaction("forget_room", forget)
        finally:
            self._forgets[user_id] += 1
            self._memberships.invalidate(user_id)

    async def _in_order(self, event_ids: list[str]) -> list[Event]:
        events = await self._events.get_events(event_ids)
        return [events[event_id] for event_id in event_ids if event_id in events]

    # --- relations & hierarchy: relations pages and thread lists ---------------------

    async def get_related_events(
        self,
        parent_id: str,
        *,
        room_nid: int,
        rel_type: str | None,
        event_type: str | None,
        max_depth: int,
        after: int | None,
        up_to: int | None,
        direction: Direction,
        limit: int,
    ) -> list[Event]:
        """Visible events relating to ``parent_id`` with ``after < stream_ordering <=
        up_to``, nearest first ("b" walks back from ``up_to``, "f" forward from ``after``).

        ``max_depth`` 1 means direct relations only; more follows relations of those
        events too, up to ``max_depth`` steps from the parent, only through events that
        match ``rel_type`` and ``event_type`` themselves.  Relations from other rooms
        (``room_nid`` is the parent's room) are not relations.
        """
        step = (
            " AND r.room_nid = ? AND e.outlier = ? AND e.soft_failed = ?"
            " AND e.rejected_reason IS NULL AND e.stream_ordering IS NOT NULL"
        )
        step_args: list[object] = [room_nid, False, False]
        if rel_type is not None:
            step += " AND r.rel_type = ?"
            step_args.append(rel_type)
        if event_type is not None:
            step += " AND e.type = ?"
            step_args.append(event_type)
        page_args: list[object] = []
        page = ""
        if after is not None:
            page += " AND {column} > ?"
            page_args.append(after)
        if up_to is not None:
            page += " AND {column} <= ?"
            page_args.append(up_to)
        order = "DESC" if direction == "b" else "ASC"
        if max_depth <= 1:
            sql = (
                "SELECT e.event_id FROM event_relations r"
                " JOIN events e ON e.event_nid = r.event_nid"
                f" WHERE r.relates_to_id = ?{step}{page.format(column='e.stream_ordering')}"
                f" ORDER BY e.stream_ordering {order} LIMIT ?"
            )
            args = [parent_id, *step_args, *page_args, limit]
        else:
            # A child relates to one parent, so this is a tree unless event IDs loop
            # (possible in old room versions); depth bounds it either way.
            sql = (
                "WITH RECURSIVE related (event_id, stream_ordering, depth) AS ("
                " SELECT e.event_id, e.stream_ordering, 1 FROM event_relations r"
                " JOIN events e ON e.event_nid = r.event_nid"
                f" WHERE r.relates_to_id = ?{step}"
                " UNION"
                " SELECT e.event_id, e.stream_ordering, related.depth + 1 FROM related"
                " JOIN event_relations r ON r.relates_to_id = related.event_id"
                " JOIN events e ON e.event_nid = r.event_nid"
                f" WHERE related.depth < ?{step})"
                " SELECT DISTINCT event_id, stream_ordering FROM related"
                f" WHERE event_id <> ?{page.format(column='stream_ordering')}"
                f" ORDER BY stream_ordering {order} LIMIT ?"
            )
            args = [parent_id, *step_args, max_depth, *step_args, parent_id, *page_args, limit]
        rows = await self._db.execute_read("get_related_events", sql, *args)
        return await self._in_order([row[0] for row in rows])

    async def get_participated_thread_roots(
        self, room_nid: int, user_id: str, *, before: int | None, limit: int
    ) -> list[tuple[str, int]]:
        """Like :meth:`get_thread_roots`, only the threads ``user_id`` started or replied
        in.  spec: modules/threading.md#server-side-aggregation-of-mthread-relationships
        """
        rows = await self._db.execute_read(
            "get_participated_thread_roots",
            "SELECT r.relates_to_id, MAX(e.stream_ordering) AS latest FROM event_relations r"
            " JOIN events e ON e.event_nid = r.event_nid"
            " LEFT JOIN events root ON root.event_id = r.relates_to_id"
            " WHERE r.room_nid = ? AND r.rel_type = 'm.thread'"
            " AND e.soft_failed = ? AND e.rejected_reason IS NULL"
            " AND e.stream_ordering IS NOT NULL"
            " GROUP BY r.relates_to_id, root.sender"
            " HAVING (root.sender = ? OR MAX(CASE WHEN e.sender = ? THEN 1 ELSE 0 END) = 1)"
            + (" AND MAX(e.stream_ordering) < ?" if before is not None else "")
            + " ORDER BY latest DESC LIMIT ?",
            room_nid,
            False,
            user_id,
            user_id,
            *([before] if before is not None else []),
            limit,
        )
        return [(root, int(latest)) for root, latest in rows]

    async def get_room_summaries(
        self, room_nids: Collection[int], *, exclude_user: str, heroes: int = 5
    ) -> dict[int, RoomMemberSummary]:
        """Joined/invited counts and the first ``heroes`` joined or invited members
        (by stream order, leaving out ``exclude_user``) of each room, in one go.

        spec: client-server-api/_index.md#calculating-the-display-name-for-a-room
        """

        def read(txn: Transaction) -> dict[int, RoomMemberSummary]:
            result = {nid: RoomMemberSummary() for nid in room_nids}
            for part in chunks(sorted(room_nids)):
                marks = ",".join("?" * len(part))
                txn.execute(
                    "SELECT room_nid, membership, COUNT(*) FROM room_memberships"
                    f" WHERE room_nid IN ({marks}) AND membership IN ('join', 'invite')"
                    " GROUP BY room_nid, membership",
                    part,
                )
                for nid, membership, count in txn.fetchall():
                    summary = result[int(nid)]
                    if membership == "join":
                        summary.joined = int(count)
                    else:
                        summary.invited = int(count)
                txn.execute(
                    "SELECT room_nid, user_id FROM (SELECT m.room_nid, m.user_id,"
                    " ROW_NUMBER() OVER (PARTITION BY m.room_nid"
                    # Members learnt of by a remote join (outliers) first, in one
                    # order on both engines (they order NULL differently).
                    " ORDER BY COALESCE(e.stream_ordering, 0), m.user_id)"
                    " AS place FROM room_memberships m JOIN events e ON e.event_nid = m.event_nid"
                    f" WHERE m.room_nid IN ({marks}) AND m.membership IN ('join', 'invite')"
                    " AND m.user_id <> ?) ranked WHERE place <= ? ORDER BY room_nid, place",
                    (*part, exclude_user, heroes),
                )
                for nid, user_id in txn.fetchall():
                    result[int(nid)].heroes.append(user_id)
            return result

        if not room_nids:
            return {}
        return await self._db.run_read("get_room_summaries", read)


def _membership_row(row: Sequence[object]) -> MembershipRow:
    room_id, room_nid, membership, event_id, stream, *forgotten = row
    return MembershipRow(
        str(room_id),
        int(str(room_nid)),
        str(membership),
        str(event_id),
        int(str(stream)),
        bool(forgotten and forgotten[0]),
    )
