"""Routing and error rendering of JsonResource, through a real listening socket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest_twisted
import treq
from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address

from homeserver import errors
from homeserver.http.request import MatrixRequest, MatrixSite
from homeserver.http.server import JsonResource, Router


@pytest_twisted.async_yield_fixture
async def served() -> AsyncIterator[tuple[str, Router]]:
    router = Router()
    site = MatrixSite(JsonResource(router), max_body_size=1024, reactor=reactor)
    # Twisted's ServerFactory is invariant in its protocol type, so listenTCP's
    # ServerFactory[_ProtoWithFactory] admits no Site.
    port = reactor.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[arg-type]
    address = port.getHost()
    assert isinstance(address, IPv4Address)
    yield f"http://127.0.0.1:{address.port}", router
    await defer.maybeDeferred(port.stopListening)


async def fetch(method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    response = await treq.request(method, url, **kwargs)
    return response.code, json.loads(await response.content())


@pytest_twisted.ensureDeferred
async def test_path_parameters_are_percent_decoded(served: tuple[str, Router]) -> None:
    base, router = served

    async def echo(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        return 200, {"room_id": room_id}

    router.register("GET", "/rooms/{room_id}/state", echo)
    assert await fetch("GET", f"{base}/rooms/%21abc%3Aexample.org/state") == (
        200,
        {"room_id": "!abc:example.org"},
    )


@pytest_twisted.ensureDeferred
async def test_invalid_utf8_in_path_parameter_is_m_invalid_param(
    served: tuple[str, Router],
) -> None:
    base, router = served

    async def echo(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        return 200, {}

    router.register("GET", "/rooms/{room_id}", echo)
    status, body = await fetch("GET", f"{base}/rooms/%FF")
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


@pytest_twisted.ensureDeferred
async def test_matrix_error_from_handler_is_rendered_with_extra_keys(
    served: tuple[str, Router],
) -> None:
    base, router = served

    async def limited(request: MatrixRequest) -> tuple[int, Any]:
        raise errors.limit_exceeded(2.5)

    router.register("GET", "/limited", limited)
    response = await treq.get(f"{base}/limited")
    body = json.loads(await response.content())
    assert response.code == 429
    assert body == {
        "errcode": "M_LIMIT_EXCEEDED",
        "error": "Too many requests",
        "retry_after_ms": 2500,
    }
    assert response.headers.getRawHeaders("Retry-After") == ["3"]


@pytest_twisted.ensureDeferred
async def test_unexpected_exception_is_500_m_unknown_without_traceback(
    served: tuple[str, Router],
) -> None:
    base, router = served

    async def broken(request: MatrixRequest) -> tuple[int, Any]:
        raise KeyError("secret internals")

    router.register("GET", "/broken", broken)
    response = await treq.get(f"{base}/broken")
    raw = await response.content()
    assert response.code == 500
    assert json.loads(raw) == {"errcode": "M_UNKNOWN", "error": "Internal server error"}
    assert b"secret internals" not in raw


@pytest_twisted.ensureDeferred
async def test_forbidden_is_403(served: tuple[str, Router]) -> None:
    base, router = served

    async def refuse(request: MatrixRequest) -> tuple[int, Any]:
        raise errors.forbidden("You are not allowed")

    router.register("POST", "/refuse", refuse)
    assert await fetch("POST", f"{base}/refuse") == (
        403,
        {"errcode": "M_FORBIDDEN", "error": "You are not allowed"},
    )


@pytest_twisted.ensureDeferred
async def test_options_does_not_run_the_handler(served: tuple[str, Router]) -> None:
    base, router = served
    calls: list[str] = []

    async def handler(request: MatrixRequest) -> tuple[int, Any]:
        calls.append("called")
        return 200, {}

    router.register("PUT", "/thing", handler)
    assert await fetch("OPTIONS", f"{base}/thing") == (200, {})
    assert calls == []


def test_registering_a_route_twice_is_an_error() -> None:
    router = Router()

    async def handler(request: MatrixRequest) -> tuple[int, Any]:
        return 200, {}

    router.register("GET", "/x/{a}", handler)
    try:
        router.register("GET", "/x/{a}", handler)
    except ValueError:
        return
    raise AssertionError("duplicate registration was accepted")
