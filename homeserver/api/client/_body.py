"""Reading optional, typed fields of a JSON request body (400 for the wrong type)."""

from __future__ import annotations

from typing import Any

from twisted.web import server

from homeserver.http import errors
from homeserver.http.parsing import parse_json_object


def parse_optional_json_object(request: server.Request) -> dict[str, Any]:
    """The body as a JSON object; ``{}`` when there is none (e.g. DELETE without a body)."""
    assert request.content is not None
    if not request.content.getvalue().strip():
        return {}
    return parse_json_object(request)


def optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise errors.bad_json(f"{key!r} must be a string")
    return value


def optional_bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise errors.bad_json(f"{key!r} must be a boolean")
    return value
