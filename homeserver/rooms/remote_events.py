"""Where the event path gets what other servers hold: the interface federation fills.

The event path (``rooms/event_path.py``) never speaks HTTP.  When a batch cites
events this server lacks, or when a room is joined through another server, it asks
a :class:`MissingEventSource` — federation implements it over ``/event``,
``/get_missing_events`` and ``/state_ids`` — and receives events already checked
for format, signatures and hashes (steps 1-3 of the checks on receipt).

spec: server-server-api.md#retrieving-events,
server-server-api.md#backfilling-and-retrieving-missing-events
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

import attrs

from homeserver.events.event import Event


class EventsUnavailable(Exception):
    """Events a batch needs could not be had (not stored, and nobody to fetch them from)."""

    def __init__(self, event_ids: Iterable[str]) -> None:
        self.event_ids = frozenset(event_ids)
        super().__init__(f"events unavailable: {sorted(self.event_ids)[:5]}")


class InvalidRemoteState(Exception):
    """A state another server gave (at a join, or at a gap) cannot be used: its create
    event is wrong, an event of it fails the auth rules, or its auth chain is
    incomplete.  The caller may try another server."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@attrs.frozen
class RemoteState:
    """A room state as another server reports it (``/state``, ``/state_ids`` or the
    ``send_join`` response), with the auth chain of its events.  Every event is
    already checked for format, signatures and hashes."""

    #: The state events (one per ``(type, state_key)``).
    state: Sequence[Event]
    #: The auth events of the state events, transitively (may overlap ``state``).
    auth_chain: Sequence[Event]


class MissingEventSource(Protocol):
    """Where the path gets events a batch cites but this server does not have.

    ``origin`` is the server that sent the events being processed (the one most
    likely to hold what they cite); None when there is none (local events).
    """

    async def fetch_events(
        self, room_id: str, event_ids: Collection[str], *, origin: str | None = None
    ) -> Sequence[Event]:
        """Whichever of ``event_ids`` (of ``room_id``) can be had; raises
        :class:`EventsUnavailable` when none can.  spec: GET /_matrix/federation/v1/event"""
        ...

    async def fetch_missing_events(
        self,
        room_id: str,
        *,
        earliest: Sequence[str],
        latest: Sequence[str],
        limit: int,
        min_depth: int,
        origin: str | None = None,
    ) -> Sequence[Event]:
        """Events between ``earliest`` (what we hold: our forward extremities) and
        ``latest`` (the received events citing a gap), newest missing ones first
        (possibly not all of them); an empty list when nothing can be had.
        spec: POST /_matrix/federation/v1/get_missing_events/{roomId}"""
        ...

    async def fetch_state_before(
        self, room_id: str, event_id: str, *, origin: str | None = None
    ) -> RemoteState:
        """The room state just before ``event_id`` (not including it) with its auth
        chain, fetching the events the answer names that this server lacks; raises
        :class:`EventsUnavailable` when it cannot be had.
        spec: GET /_matrix/federation/v1/state_ids/{roomId}"""
        ...


class NoMissingEventSource:
    """Without federation there is no other server to ask: every fetch is refused."""

    async def fetch_events(
        self, room_id: str, event_ids: Collection[str], *, origin: str | None = None
    ) -> Sequence[Event]:
        raise EventsUnavailable(event_ids)

    async def fetch_missing_events(
        self,
        room_id: str,
        *,
        earliest: Sequence[str],
        latest: Sequence[str],
        limit: int,
        min_depth: int,
        origin: str | None = None,
    ) -> Sequence[Event]:
        return []

    async def fetch_state_before(
        self, room_id: str, event_id: str, *, origin: str | None = None
    ) -> RemoteState:
        raise EventsUnavailable([event_id])
