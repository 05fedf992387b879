"""Unread notification counts per room (and per thread), derived at read time.

Nothing is stored per member per message (DESIGN.md "Speed by design").  When a
user's ``/sync`` asks, each room's counts are moved forward from a *checkpoint*
(:class:`homeserver.storage.unread.Checkpoint`, one row per thread): the counts of
the events after the read mark up to a stream position, with the push rules they were
evaluated with.  Only the events after that position are read (oldest first, in
batches) and run through the user's push rules (:mod:`homeserver.push`: the server
defaults merged with the user's own), so the work is proportional to what changed,
not to the unread backlog, and counts are exact however large it is.  A receipt
recounts what it reads from the receipt on: an unthreaded one (or a new join) the
whole room, a threaded one only its thread; a change of the user's push rules
recounts the room from the read mark (lazily, at the next ``/sync``).

The read mark of an event's thread is the newest of: the user's join, their
unthreaded ``m.read``/``m.read.private`` receipts, their threaded receipts for that
thread (``main`` for the main timeline), and their own latest event in that thread
("when the user updates their read receipt (either by using the API or by sending an
event)").  Events sent by the user, rejected, soft-failed and outlier events never
count.

Limits, by design:
- An event is evaluated once, when first counted, and conditions read the room as
  it is then: its joined member count (``room_member_count``), power levels
  (``sender_notification_permission``) and the user's display name there
  (``contains_display_name``), fetched once per room and only for rooms with
  something to evaluate.  (The spec evaluates push rules as events arrive, so a
  later power level change does not re-evaluate counted events — unless a receipt
  or rule change recounts them.)
- An event's thread is read from its own ``m.thread`` relation: notifying events in
  a thread carry one; relations that reach a thread indirectly (edits, reactions)
  do not notify under the default rules anyway.
- A redacted event counts as it did before its redaction.

spec: client-server-api/_index.md#receiving-notifications, #marking-notifications-as-read,
#threaded-read-receipts; data/api/client-server/sync.yaml (unread_notifications,
unread_thread_notifications)
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Collection, Mapping
from typing import Any

import attrs

from homeserver.events.event import Event
from homeserver.push.evaluator import (
    PushRuleEvaluator,
)
from homeserver.push.handler import PushRulesHandler
from homeserver.push.room_facts import RoomFacts, read_room_facts
from homeserver.receipts.handler import RECEIPT_TYPES
from homeserver.receipts.threads import MAIN_THREAD, direct_thread
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.events import EventStore
from homeserver.storage.unread import (
    Checkpoint,
    RoomReadState,
    ScannedEvent,
    ThreadCheckpoint,
    UnreadStore,
)

#: Events read per room per query while moving counts forward.
SCAN_BATCH = 1000


@attrs.frozen
class NotificationCounts:
    notification_count: int = 0
    highlight_count: int = 0

    def to_json(self) -> dict[str, int]:
        return {
            "highlight_count": self.highlight_count,
            "notification_count": self.notification_count,
        }


@attrs.frozen
class UnreadCounts:
    """A room's unread notifications for one user."""

    #: The whole room, every thread included (``unread_notifications`` by default).
    notification_count: int = 0
    highlight_count: int = 0
    #: The main timeline only (``unread_notifications`` with threaded counts on).
    main: NotificationCounts = NotificationCounts()
    #: Thread root event ID -> that thread's counts; threads with nothing unread are
    #: left out.
    threads: Mapping[str, NotificationCounts] = attrs.field(factory=dict)

    def sync_json(self, *, threaded: bool) -> dict[str, Any]:
        """The room's ``unread_notifications`` (and, when the filter asks for
        ``unread_thread_notifications``, that too if any thread has unread events)."""
        if not threaded:
            total = NotificationCounts(self.notification_count, self.highlight_count)
            return {"unread_notifications": total.to_json()}
        body: dict[str, Any] = {"unread_notifications": self.main.to_json()}
        if self.threads:
            body["unread_thread_notifications"] = {
                root: counts.to_json() for root, counts in sorted(self.threads.items())
            }
        return body


class UnreadCounter:
    def __init__(
        self,
        store: UnreadStore,
        events: EventStore,
        state: RoomStateReader,
        push_rules: PushRulesHandler,
        *,
        batch_size: int = SCAN_BATCH,
    ) -> None:
        self._store = store
        self._events = events
        self._state = state
        self._push_rules = push_rules
        self._batch_size = batch_size
        #: evaluator -> fingerprint of its ruleset; the push rules handler builds a new
        #: evaluator on every change, so an entry never goes stale.
        self._fingerprints: weakref.WeakKeyDictionary[PushRuleEvaluator, str] = (
            weakref.WeakKeyDictionary()
        )

    async def counts(self, user_id: str, room_ids: Collection[str]) -> dict[str, UnreadCounts]:
        """room ID -> ``user_id``'s unread counts, for each room they are joined to."""
        read_states = await self._store.read_states(user_id, room_ids, RECEIPT_TYPES)
        if not read_states:
            return {}
        # Only positions every earlier event is written up to: a checkpoint past a
        # gap would never count the event that later fills it.
        up_to = await self._events.get_max_stream_ordering()
        evaluator = await self._push_rules.evaluator(user_id)
        rules_hash = self._fingerprint(evaluator)
        progress = {
            room.room_nid: _Progress.start(room, rules_hash, up_to) for room in read_states.values()
        }
        pending = {nid: p.scan_from for nid, p in progress.items() if p.scan_from < up_to}
        members: dict[int, int] = {}
        facts: dict[int, RoomFacts] = {}
        rooms_by_nid = {room.room_nid: room for room in read_states.values()}
        while pending:
            found = await self._store.events_after(pending, up_to, self._batch_size)
            wanted = [event.event_id for events in found.values() for event in events]
            loaded = await self._events.get_events(wanted) if wanted else {}
            unknown = [nid for nid, events in found.items() if events and nid not in members]
            if unknown:
                members.update(await self._store.joined_member_counts(unknown))
            next_pending = {}
            for nid, events in found.items():
                room = rooms_by_nid[nid]
                for scanned in events:
                    event = loaded.get(scanned.event_id)
                    if event is None:
                        continue
                    if nid not in facts and scanned.sender != user_id:
                        facts[nid] = await read_room_facts(
                            self._state, user_id, room.room_version, room.current_state_group
                        )
                    progress[nid].take(
                        user_id, scanned, event, evaluator, facts.get(nid), members.get(nid, 0)
                    )
                if len(events) == self._batch_size:
                    next_pending[nid] = events[-1].stream_ordering
                if events:
                    progress[nid].advance(events[-1].stream_ordering)
            pending = next_pending
        changed = {nid: p.checkpoint() for nid, p in progress.items() if p.changed}
        if changed:
            await self._store.save_checkpoints(user_id, changed)
        return {room.room_id: progress[room.room_nid].result() for room in read_states.values()}

    def _fingerprint(self, evaluator: PushRuleEvaluator) -> str:
        fingerprint = self._fingerprints.get(evaluator)
        if fingerprint is None:
            body = json.dumps(evaluator.ruleset.to_json(), sort_keys=True, separators=(",", ":"))
            fingerprint = hashlib.sha256(body.encode()).hexdigest()
            self._fingerprints[evaluator] = fingerprint
        return fingerprint


class _Progress:
    """One room's counts moving forward from its checkpoint (or from the read mark).

    Each thread's counts cover its events after ``max(base, its threaded receipt)``
    up to :attr:`position`.  When a receipt moves, only the threads it reads are
    counted again, from the receipt on; every thread then takes the events after
    the old position."""

    def __init__(
        self,
        room: RoomReadState,
        rules_hash: str,
        base: int,
        position: int,
        threads: dict[str, ThreadCheckpoint],
        recount: set[str],
        changed: bool,
    ) -> None:
        self.room = room
        self.rules_hash = rules_hash
        self.base = base
        #: Events up to here are counted (by every thread not in ``recount``).
        self.position = position
        self.counted_up_to = position
        #: thread -> [receipt position, notification count, highlight count]
        self.threads = {
            thread: [t.receipt_position, t.notification_count, t.highlight_count]
            for thread, t in threads.items()
        }
        self.recount = recount
        self.changed = changed

    @classmethod
    def start(cls, room: RoomReadState, rules_hash: str, up_to: int) -> _Progress:
        base = max(room.joined_at, room.unthreaded_mark)
        saved = room.checkpoint
        if (
            saved is None
            or saved.rules_hash != rules_hash
            or saved.base != base
            or saved.position > up_to
        ):
            # No checkpoint, new push rules, an unthreaded receipt moved or the user
            # joined again: count everything after the read mark, once.
            threads = {thread: ThreadCheckpoint(mark) for thread, mark in room.thread_marks.items()}
            return cls(room, rules_hash, base, base, threads, set(), True)
        threads = dict(saved.threads)
        recount = set()
        for thread in set(threads) | set(room.thread_marks):
            mark = room.thread_marks.get(thread, 0)
            old = threads.get(thread)
            if old is None or old.receipt_position != mark:
                threads[thread] = ThreadCheckpoint(mark)
                recount.add(thread)
        return cls(room, rules_hash, base, saved.position, threads, recount, bool(recount))

    @property
    def scan_from(self) -> int:
        """Where the scan starts: the old position, or earlier for recounted threads."""
        starts = [max(self.base, self.threads[thread][0]) for thread in self.recount]
        return min([self.position, *starts])

    def take(
        self,
        user_id: str,
        scanned: ScannedEvent,
        event: Event,
        evaluator: PushRuleEvaluator,
        facts: RoomFacts | None,
        joined_members: int,
    ) -> None:
        content = event.content if isinstance(event.content, dict) else {}
        thread = direct_thread(content) or MAIN_THREAD
        if scanned.stream_ordering <= self.counted_up_to and thread not in self.recount:
            return  # already in the checkpoint
        values = self.threads.setdefault(thread, [0, 0, 0])
        if scanned.stream_ordering <= max(self.base, values[0]):
            return  # read by a threaded receipt
        if scanned.sender == user_id:
            # Sending an event marks its thread read up to it.
            values[1] = values[2] = 0
            return
        assert facts is not None
        context = facts.context(user_id, self.room.room_id, event.sender, joined_members)
        actions = evaluator.evaluate(event.pdu, context)
        if actions.notify:
            values[1] += 1
            if actions.highlight:
                values[2] += 1

    def advance(self, position: int) -> None:
        if position > self.position:
            self.position = position
            self.changed = True

    def checkpoint(self) -> Checkpoint:
        threads = {
            thread: ThreadCheckpoint(*values)
            for thread, values in self.threads.items()
            if any(values)
        }
        # The main row is always written: a checkpoint is known by its rows.
        threads.setdefault(MAIN_THREAD, ThreadCheckpoint(self.threads.get(MAIN_THREAD, [0])[0]))
        return Checkpoint(self.base, self.position, self.rules_hash, threads)

    def result(self) -> UnreadCounts:
        counts = {thread: values for thread, values in self.threads.items() if values[1]}
        main = counts.get(MAIN_THREAD)
        return UnreadCounts(
            notification_count=sum(values[1] for values in counts.values()),
            highlight_count=sum(values[2] for values in counts.values()),
            main=NotificationCounts(main[1], main[2]) if main else NotificationCounts(),
            threads={
                root: NotificationCounts(values[1], values[2])
                for root, values in counts.items()
                if root != MAIN_THREAD
            },
        )
