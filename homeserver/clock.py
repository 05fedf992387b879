"""Time, through the reactor, so tests can drive it with ``twisted.internet.task.Clock``."""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime


class Clock:
    def __init__(self, reactor: IReactorTime) -> None:
        self._reactor = reactor

    def time(self) -> float:
        """Seconds since the epoch."""
        return float(self._reactor.seconds())

    def time_msec(self) -> int:
        return int(self._reactor.seconds() * 1000)
