"""The reactor, typed by the Twisted interfaces the server uses of it.

Each component asks for the narrowest interface it needs: ``IReactorTime`` for
clocks and timers (so unit tests pass a ``twisted.internet.task.Clock``),
:class:`IDatabaseReactor` for the database's connection pools, and the server as a
whole (:mod:`homeserver.app`, :mod:`homeserver.cli`) an :class:`IServerReactor`.
The ``mypy_zope`` plugin makes these interfaces types.
"""

from __future__ import annotations

from typing import cast

from twisted.internet.interfaces import (
    IReactorCore,
    IReactorFromThreads,
    IReactorTCP,
    IReactorThreads,
    IReactorTime,
)


class IDatabaseReactor(IReactorCore, IReactorFromThreads):
    """What adbapi's connection pools use: start-up and shutdown triggers (a pool
    starts its threads with the reactor and closes at its shutdown) and
    ``callFromThread`` (results come back from the pool's threads)."""


class IServerReactor(IDatabaseReactor, IReactorTime, IReactorTCP, IReactorThreads):
    """Everything the server as a whole uses: running and stopping (core), timers,
    TCP listeners, the database's pools, and the reactor's thread pool (password
    hashing runs there)."""


def installed_reactor() -> IServerReactor:
    """The global ``twisted.internet.reactor``, installing the default one if none is.

    Twisted types it as ``_IReactorCommon``, a make-believe interface without
    ``IReactorThreads``, although every reactor Twisted installs provides it
    (``ReactorBase`` does wherever Python has threads): this is the one place that
    claims it does.
    """
    from twisted.internet import reactor

    return cast(IServerReactor, reactor)
