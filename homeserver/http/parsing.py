"""Reading request bodies and query strings, with Matrix errors for bad input.

spec: client-server-api/_index.md#api-standards (M_NOT_JSON, M_BAD_JSON)
"""

from __future__ import annotations

from typing import Any, Literal

from twisted.web import server

from homeserver import errors
from homeserver.identifiers import is_valid_room_id
from homeserver.util.untrusted_json import parse_json_text


def parse_json_value(request: server.Request) -> Any:
    """The request body as JSON; ``M_NOT_JSON`` if it is empty or not valid JSON."""
    assert request.content is not None
    body = request.content.getvalue()
    if not body:
        raise errors.not_json("Request body is empty; expected JSON")
    return parse_json_text(body)


def parse_json_object(request: server.Request) -> dict[str, Any]:
    """The request body, which must be a JSON object."""
    value = parse_json_value(request)
    if not isinstance(value, dict):
        raise errors.bad_json("Request body must be a JSON object")
    return value


def query_str(request: server.Request, name: str, default: str | None = None) -> str | None:
    """A query-string parameter as text; the last value wins if it is repeated."""
    assert request.args is not None
    values = request.args.get(name.encode("ascii"))
    if not values:
        return default
    return param_text(values[-1], f"Query parameter {name!r}")


def param_text(raw: bytes, what: str) -> str:
    """A parameter's bytes as text: UTF-8 without NUL, else 400 ``M_INVALID_PARAM``
    naming ``what`` (e.g. "Query parameter 'from'")."""
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.invalid_param(f"{what} is not valid UTF-8") from None
    if "\x00" in value:
        raise errors.invalid_param(f"{what} contains a NUL character")
    return value


def query_int(request: server.Request, name: str, default: int | None = None) -> int | None:
    raw = query_str(request, name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise errors.invalid_param(f"Query parameter {name!r} must be an integer") from None


def require_str(body: dict[str, Any], key: str) -> str:
    """``body[key]``, which must be present and a string (``M_MISSING_PARAM``/``M_BAD_JSON``)."""
    if key not in body:
        raise errors.missing_param(key)
    value = body[key]
    if not isinstance(value, str):
        raise errors.bad_json(f"{key!r} must be a string")
    return value


def parse_optional_json_object(request: server.Request) -> dict[str, Any]:
    """The body as a JSON object; ``{}`` when there is none (e.g. DELETE without a body)."""
    assert request.content is not None
    if not request.content.getvalue().strip():
        return {}
    return parse_json_object(request)


def optional_str(body: dict[str, Any], key: str) -> str | None:
    """``body[key]`` if present; ``M_BAD_JSON`` if it is not a string."""
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise errors.bad_json(f"{key!r} must be a string")
    return value


def optional_bool(body: dict[str, Any], key: str, default: bool) -> bool:
    """``body[key]`` or ``default``; ``M_BAD_JSON`` if it is not a boolean."""
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise errors.bad_json(f"{key!r} must be a boolean")
    return value


def query_bool(request: server.Request, name: str) -> bool | None:
    """A ``true``/``false`` query parameter; None if absent, 400 if anything else."""
    value = query_str(request, name)
    if value is None:
        return None
    if value == "true":
        return True
    if value == "false":
        return False
    raise errors.invalid_param(f"Query parameter {name!r} must be 'true' or 'false'")


def check_room_id(room_id: str) -> None:
    """400 ``M_INVALID_PARAM`` unless ``room_id`` (from a path) is a room ID."""
    if not is_valid_room_id(room_id):
        raise errors.invalid_param(f"{room_id!r} is not a valid room ID")


def query_direction(request: server.Request) -> Literal["b", "f"]:
    """The ``dir`` query parameter of paginated endpoints: ``b`` (default) or ``f``."""
    value = query_str(request, "dir", "b")
    if value == "b":
        return "b"
    if value == "f":
        return "f"
    raise errors.invalid_param("'dir' must be 'b' or 'f'")
