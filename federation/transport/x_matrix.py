"""The ``X-Matrix`` authorisation scheme of federation requests (pure: no I/O).

A request is signed by wrapping its method, target, origin, destination and JSON
body in an object signed with the JSON signing algorithm; the signature travels in
an ``Authorization: X-Matrix origin=...,destination=...,key=...,sig=...`` header.

spec: server-server-api.md#request-authentication, appendices.md#signing-json
"""

from __future__ import annotations

import string
from typing import Any

import attrs
from signedjson.sign import sign_json
from signedjson.types import SigningKey

from homeserver.identifiers import is_valid_server_name

SCHEME = "X-Matrix"

#: RFC 9110 section 5.6.2 ``tchar``s: what a parameter name is made of.
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)
_WHITESPACE = " \t"
_UNQUOTED_STOP = frozenset(',"' + _WHITESPACE)
#: A header longer than this is not a real X-Matrix header (a key ID and an ed25519
#: signature are short; server names are at most 255 characters).
MAX_HEADER_LENGTH = 4096


@attrs.frozen
class XMatrixAuthorization:
    """One parsed ``X-Matrix`` header."""

    origin: str
    #: None when the sender left it out (servers older than spec v1.3).
    destination: str | None
    #: ``algorithm:version``, e.g. ``ed25519:a_x``.
    key_id: str
    #: The unpadded base64 signature.
    signature: str


def parse_x_matrix(header_value: str) -> XMatrixAuthorization:
    """Parse one ``Authorization`` header value of the ``X-Matrix`` scheme.

    Raises ``ValueError`` saying what is wrong.  Parameter names are
    case-insensitive, unknown ones are ignored; values are quoted strings (backslash
    escapes undone) or, leniently, anything up to the next comma or whitespace
    (colons, ``/`` and ``=`` included: older senders do not quote them).
    """
    if len(header_value) > MAX_HEADER_LENGTH:
        raise ValueError("X-Matrix header is too long")
    scheme, separator, rest = header_value.partition(" ")
    if scheme.lower() != SCHEME.lower() or not separator:
        raise ValueError("not an X-Matrix authorization header")
    params = _parse_params(rest)
    missing = [name for name in ("origin", "key", "sig") if name not in params]
    if missing:
        raise ValueError(f"X-Matrix header lacks {', '.join(missing)}")
    origin, key_id, signature = params["origin"], params["key"], params["sig"]
    destination = params.get("destination")
    if not is_valid_server_name(origin):
        raise ValueError(f"X-Matrix origin {origin!r} is not a valid server name")
    if destination is not None and not is_valid_server_name(destination):
        raise ValueError(f"X-Matrix destination {destination!r} is not a valid server name")
    algorithm, colon, version = key_id.partition(":")
    if not colon or not algorithm or not version:
        raise ValueError(f"X-Matrix key {key_id!r} is not of the form algorithm:version")
    if not signature:
        raise ValueError("X-Matrix sig is empty")
    return XMatrixAuthorization(
        origin=origin, destination=destination, key_id=key_id, signature=signature
    )


def _parse_params(text: str) -> dict[str, str]:
    """RFC 9110 ``auth-param`` list: ``name=value`` pairs separated by commas."""
    params: dict[str, str] = {}
    position, end = 0, len(text)

    def skip_whitespace(at: int) -> int:
        while at < end and text[at] in _WHITESPACE:
            at += 1
        return at

    position = skip_whitespace(position)
    while position < end:
        if text[position] == ",":  # empty list elements are allowed
            position = skip_whitespace(position + 1)
            continue
        name_start = position
        while position < end and text[position] in _TOKEN_CHARS:
            position += 1
        name = text[name_start:position].lower()
        if not name:
            raise ValueError(f"X-Matrix header: expected a parameter name at {position}")
        position = skip_whitespace(position)
        if position >= end or text[position] != "=":
            raise ValueError(f"X-Matrix header: parameter {name!r} has no value")
        position = skip_whitespace(position + 1)
        value, position = _parse_value(text, position)
        if name in params:
            raise ValueError(f"X-Matrix header: parameter {name!r} appears twice")
        params[name] = value
        position = skip_whitespace(position)
        if position < end:
            if text[position] != ",":
                raise ValueError(f"X-Matrix header: expected ',' at {position}")
            position = skip_whitespace(position + 1)
    return params


def _parse_value(text: str, position: int) -> tuple[str, int]:
    """A token or a quoted string starting at ``position``; the value and where it ends."""
    end = len(text)
    if position < end and text[position] == '"':
        chars: list[str] = []
        position += 1
        while position < end:
            char = text[position]
            if char == "\\":
                if position + 1 >= end:
                    break
                chars.append(text[position + 1])
                position += 2
            elif char == '"':
                return "".join(chars), position + 1
            else:
                chars.append(char)
                position += 1
        raise ValueError("X-Matrix header: unterminated quoted value")
    start = position
    # Leniently, anything up to the next comma or space: base64 signatures hold '/'
    # and '=', which are not token characters, and some senders leave them unquoted.
    while position < end and text[position] not in _UNQUOTED_STOP:
        position += 1
    if position == start:
        raise ValueError(f"X-Matrix header: expected a value at {position}")
    return text[start:position], position


def signed_request_json(
    method: str, uri: str, origin: str, destination: str, content: object | None
) -> dict[str, Any]:
    """The object whose signature authenticates a request (without ``signatures``).

    ``uri`` is the request target as sent: the percent-encoded path and ``?query``.
    ``content`` is the parsed JSON body; None for a request without a body.
    """
    request: dict[str, Any] = {
        "method": method,
        "uri": uri,
        "origin": origin,
        "destination": destination,
    }
    if content is not None:
        request["content"] = content
    return request


def sign_request(
    signing_key: SigningKey,
    *,
    origin: str,
    destination: str,
    method: str,
    uri: str,
    content: object | None,
) -> str:
    """The ``Authorization`` header value signing this request as ``origin``."""
    signed = sign_json(
        signed_request_json(method, uri, origin, destination, content), origin, signing_key
    )
    key_id = f"{signing_key.alg}:{signing_key.version}"
    signature = signed["signatures"][origin][key_id]
    return (
        f'{SCHEME} origin="{_quote(origin)}",destination="{_quote(destination)}",'
        f'key="{_quote(key_id)}",sig="{_quote(signature)}"'
    )


def _quote(value: str) -> str:
    # Server names, key IDs and base64 never hold these, but a quoted string must
    # stay one whatever it is given.
    return value.replace("\\", "\\\\").replace('"', '\\"')
