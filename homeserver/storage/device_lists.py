"""Device-list changes (the ``device_lists`` stream) and the membership reads that
decide who hears of them: SQL only.  Owns ``device_list_changes``
(schema/0027_device_lists.py); reads storage.events' ``room_memberships``,
``events`` and ``rooms``.

Each change takes the next ``device_lists_stream`` position inside its transaction;
the stream's tracker (streams/positions.py) says up to where they are all committed.

spec: client-server-api/modules/end_to_end_encryption.md#tracking-the-device-list-for-a-user
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import attrs

from homeserver.storage.database import Database
from homeserver.storage.events import EventStore
from homeserver.storage.state import chunks
from homeserver.storage.transaction import Transaction
from homeserver.streams.positions import LazyStreamPositions, PositionsWrite

#: The sequence behind the device lists stream.
STREAM_SEQUENCE = "device_lists_stream"

#: Events clients never see (as storage/timeline.py): they change no one's membership.
_VISIBLE = "e.outlier = ? AND e.soft_failed = ? AND e.rejected_reason IS NULL"
_VISIBLE_ARGS = (False, False)

#: Told ``(position, audience)`` of a committed change before its position can become
#: visible: the audience is the changed user and everyone sharing a joined room with them.
ChangeNote = Callable[[int, frozenset[str]], None]


@attrs.frozen
class UsersChanged:
    #: Changes for everyone sharing a room with the user (who must be checked).
    for_room_mates: set[str]
    #: Changes that concern the viewer alone (``only_for``).
    for_viewer: set[str]


@attrs.frozen
class MembershipTransition:
    """One visible membership event: ``user_id`` went from ``before`` to ``after``."""

    room_nid: int
    user_id: str
    #: The membership the event replaced in the room state ("leave" if none).
    before: str
    after: str
    stream_ordering: int


class DeviceListStore:
    def __init__(self, database: Database, events: EventStore) -> None:
        self._db = database
        self._events = events
        self._stream = LazyStreamPositions(STREAM_SEQUENCE, self._highest_stored)

    # --- the stream ---------------------------------------------------------------

    async def add_change(
        self, user_id: str, note: ChangeNote, *, only_for: str | None = None
    ) -> int:
        """Record that ``user_id``'s device list changed, at a new position.

        The audience is read in the same transaction, so a user who joins a shared
        room later sees the change through their join instead.  ``note`` runs once
        the transaction has committed and before the position can become visible
        (the caller's change cache must hold it before any reader may ask).
        ``only_for``: the one user the change concerns (then the audience).
        """

        def write(txn: Transaction, positions: PositionsWrite) -> tuple[int, frozenset[str]]:
            position = positions.allocate(txn)
            txn.execute(
                "INSERT INTO device_list_changes (stream_id, user_id, only_for) VALUES (?, ?, ?)",
                (position, user_id, only_for),
            )
            if only_for is not None:
                return position, frozenset({only_for})
            txn.execute(
                "SELECT DISTINCT theirs.user_id FROM room_memberships mine"
                " JOIN room_memberships theirs ON theirs.room_nid = mine.room_nid"
                " WHERE mine.user_id = ? AND mine.membership = 'join'"
                " AND theirs.membership = 'join'",
                (user_id,),
            )
            audience = frozenset(str(row[0]) for row in txn.fetchall()) | {user_id}
            return position, audience

        stream = await self._stream.get()
        with stream.writing() as positions:
            position, audience = await self._db.run_interaction(
                "add_device_list_change", write, positions
            )
            note(position, audience)
            return position

    async def wait_until_visible(self, position: int) -> None:
        """Wait until every position up to ``position`` is committed or abandoned:
        only then may it be announced."""
        await (await self._stream.get()).wait_until_visible(position)

    async def current_position(self) -> int:
        """The position up to which every change is committed (or abandoned)."""
        return (await self._stream.get()).current

    async def users_changed(
        self, after: int, up_to: int, viewer: str, *, limit: int
    ) -> UsersChanged | None:
        """The users whose device list changed in ``(after, up_to]``, as ``viewer``
        may learn of it; None if that is more than ``limit`` rows (an old token)."""
        if up_to <= after:
            return UsersChanged(set(), set())
        rows = await self._db.execute_read(
            "device_list_users_changed",
            "SELECT DISTINCT user_id, only_for IS NOT NULL FROM device_list_changes"
            " WHERE stream_id > ? AND stream_id <= ? AND (only_for IS NULL OR only_for = ?)"
            " LIMIT ?",
            after,
            up_to,
            viewer,
            limit + 1,
        )
        if len(rows) > limit:
            return None
        return UsersChanged(
            for_room_mates={str(user) for user, only in rows if not only},
            for_viewer={str(user) for user, only in rows if only},
        )

    async def _highest_stored(self) -> int:
        rows = await self._db.execute(
            "device_lists_max_stream_id",
            "SELECT COALESCE(MAX(stream_id), 0) FROM device_list_changes",
        )
        return int(rows[0][0])

    # --- who shares a room with whom ----------------------------------------------

    async def share_a_room(self, user_id: str, others: Collection[str]) -> set[str]:
        """Those of ``others`` joined to at least one room ``user_id`` is joined to."""

        def read(txn: Transaction) -> set[str]:
            found: set[str] = set()
            for part in chunks(sorted(others)):
                marks = ",".join("?" * len(part))
                txn.execute(
                    "SELECT DISTINCT theirs.user_id FROM room_memberships mine"
                    " JOIN room_memberships theirs ON theirs.room_nid = mine.room_nid"
                    " WHERE mine.user_id = ? AND mine.membership = 'join'"
                    f" AND theirs.user_id IN ({marks}) AND theirs.membership = 'join'",
                    (user_id, *part),
                )
                found.update(str(row[0]) for row in txn.fetchall())
            return found

        if not others:
            return set()
        return await self._db.run_read("device_lists_share_a_room", read)

    async def room_mates(self, user_id: str) -> set[str]:
        """Everyone joined to a room ``user_id`` is joined to (``user_id`` included
        when joined anywhere)."""
        rows = await self._db.execute_read(
            "device_lists_room_mates",
            "SELECT DISTINCT theirs.user_id FROM room_memberships mine"
            " JOIN room_memberships theirs ON theirs.room_nid = mine.room_nid"
            " WHERE mine.user_id = ? AND mine.membership = 'join'"
            " AND theirs.membership = 'join'",
            user_id,
        )
        return {str(row[0]) for row in rows}

    async def joined_members(self, room_nids: Collection[int]) -> dict[int, set[str]]:
        """room nid → the users joined to it now."""

        def read(txn: Transaction) -> dict[int, set[str]]:
            found: dict[int, set[str]] = {}
            for part in chunks(sorted(room_nids)):
                txn.execute(
                    "SELECT room_nid, user_id FROM room_memberships"
                    f" WHERE room_nid IN ({','.join('?' * len(part))}) AND membership = 'join'",
                    tuple(part),
                )
                for room_nid, member in txn.fetchall():
                    found.setdefault(int(room_nid), set()).add(str(member))
            return found

        if not room_nids:
            return {}
        return await self._db.run_read("device_lists_joined_members", read)

    async def membership_transitions(
        self, room_nids: Collection[int], after: int, up_to: int, *, limit: int
    ) -> list[MembershipTransition] | None:
        """The visible membership events of ``room_nids`` in ``(after, up_to]``,
        oldest first, each with the membership it replaced; None if there are more
        than ``limit`` (an old token: the caller does without)."""

        def read(txn: Transaction) -> list[tuple[int, str, str, int]] | None:
            found: list[tuple[int, str, str, int]] = []
            for part in chunks(sorted(room_nids)):
                txn.execute(
                    "SELECT e.room_nid, e.state_key, e.event_id, e.stream_ordering FROM events e"
                    f" WHERE e.room_nid IN ({','.join('?' * len(part))})"
                    " AND e.stream_ordering > ? AND e.stream_ordering <= ?"
                    f" AND e.type = 'm.room.member' AND {_VISIBLE} LIMIT ?",
                    (*part, after, up_to, *_VISIBLE_ARGS, limit + 1 - len(found)),
                )
                found.extend((int(a), str(b), str(c), int(d)) for a, b, c, d in txn.fetchall())
                if len(found) > limit:
                    return None
            return found

        if not room_nids or up_to <= after:
            return []
        found = await self._db.run_read("device_lists_memberships", read)
        if found is None:
            return None
        rows = sorted(found, key=_position)
        events = await self._events.get_events([row[2] for row in rows])
        replaced_ids = [
            replaced
            for event in events.values()
            if (replaced := event.internal.replaces_state) is not None
        ]
        replaced_events = await self._events.get_events(replaced_ids)
        transitions = []
        for room_nid, user_id, event_id, stream in rows:
            event = events.get(event_id)
            if event is None or event.membership is None:
                continue
            previous = replaced_events.get(event.internal.replaces_state or "")
            before = previous.membership if previous is not None else None
            transitions.append(
                MembershipTransition(room_nid, user_id, before or "leave", event.membership, stream)
            )
        return transitions


def _position(row: Sequence[object]) -> int:
    value = row[3]
    assert isinstance(value, int)
    return value
