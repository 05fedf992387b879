"""Durable EDUs (to-device, device-list and signing-key updates) are never
acknowledged when their handler fails: the transaction fails and is sent again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet import defer

from federation.inbound.edus import EduRegistry


async def _failing(_origin: str, _content: Mapping[str, Any]) -> None:
    raise RuntimeError("database down")


def _dispatch(registry: EduRegistry, edu_type: str) -> defer.Deferred[None]:
    return defer.ensureDeferred(registry.dispatch("remote.example", edu_type, {}))


def test_failing_durable_edu_handler_fails_the_dispatch() -> None:
    registry = EduRegistry()
    registry.register("m.direct_to_device", _failing, durable=True)
    failures: list[Any] = []
    _dispatch(registry, "m.direct_to_device").addErrback(failures.append)
    assert len(failures) == 1
    assert failures[0].check(RuntimeError)


def test_failing_ephemeral_edu_handler_is_only_logged() -> None:
    registry = EduRegistry()
    registry.register("m.typing", _failing)
    results: list[Any] = []
    _dispatch(registry, "m.typing").addBoth(results.append)
    assert results == [None]
