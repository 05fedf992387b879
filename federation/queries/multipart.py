"""``multipart/mixed`` bodies (RFC 2046 §5.1), as the federation media endpoints
use them: a JSON part, then the file (or a ``Location`` to fetch it from).

Building is for our answers; parsing is for other servers' answers, which are
untrusted: the body is already capped in size by the client, the boundary is
checked against the RFC's grammar, and a part's headers are capped too.

spec: server-server-api.md#content-repository (data/api/server-server/
authed_content_repo.yaml)
"""

from __future__ import annotations

import re
import secrets

import attrs

#: RFC 2046: 1-70 characters from ``bchars``, not ending in a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_BOUNDARY_PARAM = re.compile(r';\s*boundary\s*=\s*(?:"([^"]*)"|([^;\s]+))', re.IGNORECASE)
#: A part's header block; ours and any sane server's are a few hundred bytes.
MAX_HEADER_BYTES = 16 * 1024
CRLF = b"\r\n"


class MultipartError(ValueError):
    """The body is not the ``multipart/mixed`` it claims to be."""


@attrs.frozen
class Part:
    #: Lower-cased names; a repeated header keeps its last value.
    headers: dict[str, str]
    body: bytes


def new_boundary() -> str:
    return secrets.token_hex(16)


def part_head(boundary: str, headers: dict[str, str], *, first: bool) -> bytes:
    """The delimiter and headers that open a part (its body follows)."""
    lines = [("" if first else "\r\n") + f"--{boundary}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def closing(boundary: str) -> bytes:
    """What ends the last part's body and the whole body."""
    return f"\r\n--{boundary}--\r\n".encode("ascii")


def boundary_of(content_type: str) -> str:
    """The ``boundary`` of a ``multipart/mixed`` content type; MultipartError if the
    type is another or the boundary is missing or invalid."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "multipart/mixed":
        raise MultipartError(f"expected multipart/mixed, got {media_type!r}")
    match = _BOUNDARY_PARAM.search(content_type)
    if match is None:
        raise MultipartError("no boundary")
    boundary = match.group(1) if match.group(1) is not None else match.group(2)
    if _BOUNDARY.fullmatch(boundary) is None:
        raise MultipartError("invalid boundary")
    return boundary


def parse_multipart(body: bytes, boundary: str, *, max_parts: int) -> list[Part]:
    """The parts of ``body`` (at most ``max_parts``: the rest are ignored)."""
    delimiter = b"--" + boundary.encode("ascii")
    # The first delimiter starts the body or follows a preamble's line break.
    if body.startswith(delimiter):
        position = len(delimiter)
    else:
        found = body.find(CRLF + delimiter)
        if found < 0:
            raise MultipartError("no opening delimiter")
        position = found + 2 + len(delimiter)
    parts: list[Part] = []
    while len(parts) < max_parts:
        if body.startswith(b"--", position):
            return parts  # the closing delimiter
        # Transport padding (spaces and tabs) may follow a delimiter.
        while position < len(body) and body[position] in b" \t":
            position += 1
        if not body.startswith(CRLF, position):
            raise MultipartError("a delimiter is not followed by a line break")
        position += 2
        if body.startswith(CRLF, position):
            headers_end = position - 2  # a part with no headers at all
        else:
            headers_end = body.find(CRLF + CRLF, position, position + MAX_HEADER_BYTES)
        if headers_end < 0:
            raise MultipartError("a part's headers do not end")
        headers = _parse_headers(body[position:headers_end])
        body_start = headers_end + 4
        body_end = body.find(CRLF + delimiter, body_start)
        if body_end < 0:
            raise MultipartError("a part does not end")
        parts.append(Part(headers, body[body_start:body_end]))
        position = body_end + 2 + len(delimiter)
    return parts


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        raise MultipartError("a part's headers are not UTF-8") from None
    for line in text.split("\r\n"):
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise MultipartError("a malformed part header")
        headers[name.lower()] = value.strip()
    return headers
