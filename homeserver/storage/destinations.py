"""Backoff state of the servers we failed to reach: SQL only.

Owns ``destinations`` (schema/0035_destinations.sql).  A row exists only while a
destination is failing; the rules (how intervals grow, when a destination counts as
up again) are in ``federation/client/backoff.py``.
"""

from __future__ import annotations

import attrs

from homeserver.storage.database import Database


@attrs.frozen
class RetryTimings:
    #: When the current run of failures began (ms since the epoch).
    failure_ts: int
    #: When the latest failure was recorded (ms since the epoch).
    retry_last_ts: int
    #: How long after ``retry_last_ts`` not to try again (ms).
    retry_interval: int

    @property
    def retry_at(self) -> int:
        return self.retry_last_ts + self.retry_interval


class DestinationStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_retry_timings(self, destination: str) -> RetryTimings | None:
        """The backoff state of ``destination``; None if it is not failing."""
        # The write connection, not a parallel read: the backoff cache fills from this,
        # and a read finishing after a concurrent write would put older state back.
        rows = await self._db.execute(
            "get_destination_retry_timings",
            "SELECT failure_ts, retry_last_ts, retry_interval FROM destinations"
            " WHERE destination = ?",
            destination,
        )
        if not rows:
            return None
        failure_ts, retry_last_ts, retry_interval = rows[0]
        return RetryTimings(int(failure_ts), int(retry_last_ts), int(retry_interval))

    async def set_retry_timings(self, destination: str, timings: RetryTimings) -> None:
        await self._db.execute(
            "set_destination_retry_timings",
            "INSERT INTO destinations (destination, failure_ts, retry_last_ts, retry_interval)"
            " VALUES (?, ?, ?, ?)"
            " ON CONFLICT (destination) DO UPDATE SET failure_ts = excluded.failure_ts,"
            " retry_last_ts = excluded.retry_last_ts, retry_interval = excluded.retry_interval",
            destination,
            timings.failure_ts,
            timings.retry_last_ts,
            timings.retry_interval,
        )

    async def clear_retry_timings(self, destination: str) -> None:
        """``destination`` answered: forget its failures."""
        await self._db.execute(
            "clear_destination_retry_timings",
            "DELETE FROM destinations WHERE destination = ?",
            destination,
        )

    async def get_failing_destinations(self) -> list[tuple[str, RetryTimings]]:
        """Every destination being backed off from (for the admin API and the sender's
        start-up: which servers to leave alone)."""
        rows = await self._db.execute_read(
            "get_failing_destinations",
            "SELECT destination, failure_ts, retry_last_ts, retry_interval FROM destinations"
            " ORDER BY destination",
        )
        return [
            (str(name), RetryTimings(int(failure), int(last), int(interval)))
            for name, failure, last, interval in rows
        ]
