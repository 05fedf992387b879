"""Errors raised by state resolution."""

from __future__ import annotations

from collections.abc import Iterable


class MissingEventsError(Exception):
    """State resolution needs events that the caller's event map does not hold.

    ``event_ids`` lists every missing event found in one pass (as far as the walk could
    get), so the caller can fetch them all at once, add them to the event map and retry.
    """

    def __init__(self, event_ids: Iterable[str]) -> None:
        self.event_ids: frozenset[str] = frozenset(event_ids)
        shown = ", ".join(sorted(self.event_ids)[:5])
        more = f" (+{len(self.event_ids) - 5} more)" if len(self.event_ids) > 5 else ""
        super().__init__(f"state resolution needs missing events: {shown}{more}")
