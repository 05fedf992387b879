"""Letting the reactor run in the middle of long CPU-bound loops.

Checking a PDU whose keys are cached completes without ever waiting, so a loop over
thousands of them (a room's state from ``/state`` or a ``send_join`` answer) would
hold the reactor — every other request and timer — until it ends.  Such loops call
:func:`yield_to_reactor` every few dozen items.
"""

from __future__ import annotations

from twisted.internet import task
from twisted.internet.interfaces import IReactorTime


def default_reactor() -> IReactorTime:
    """The global reactor (imported late: tests may install another first)."""
    from twisted.internet import reactor

    return reactor


async def yield_to_reactor(reactor: IReactorTime) -> None:
    """Resume in the reactor's next iteration, after what is ready to run."""
    await task.deferLater(reactor, 0, lambda: None)
