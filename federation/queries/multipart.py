"""``multipart/mixed`` bodies (RFC 2046 §5.1), as the federation media endpoints
use them: a JSON part, then the file (or a ``Location`` to fetch it from).

Building is for our answers; parsing is for other servers' answers, which are
untrusted: the body is read as it arrives (:class:`MultipartReader`, so a file
part goes to disk without being held whole) and capped in size by the caller, the
boundary is checked against the RFC's grammar, and a part's headers are capped too.

spec: server-server-api.md#content-repository (data/api/server-server/
authed_content_repo.yaml)
"""

from __future__ import annotations

import enum
import re
import secrets
from typing import Protocol

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


class PartHandler(Protocol):
    """What a :class:`MultipartReader` tells of the parts as it reads them."""

    def part_started(self, headers: dict[str, str]) -> None: ...

    def part_data(self, data: bytes) -> None:
        """A piece of the current part's body (a part's pieces come in order)."""

    def part_ended(self) -> None: ...


class _State(enum.Enum):
    PREAMBLE = enum.auto()
    AFTER_DELIMITER = enum.auto()
    HEADERS = enum.auto()
    BODY = enum.auto()
    DONE = enum.auto()


class MultipartReader:
    """Parses a ``multipart/mixed`` body as it arrives, in pieces of any size, and
    hands each part's body on as it comes (so a large file part is never held
    whole): memory is bounded by the largest piece fed plus a part's headers.

    Only the first ``max_parts`` parts are read; whatever follows them, like the
    epilogue after the closing delimiter, is ignored.  :class:`MultipartError` is
    raised by :meth:`feed` as soon as the body is malformed, or by :meth:`finish`
    if it ends early.
    """

    def __init__(self, boundary: str, handler: PartHandler, *, max_parts: int) -> None:
        self._delimiter = b"--" + boundary.encode("ascii")
        #: What ends a part's body: the line break belongs to the delimiter.
        self._part_end = CRLF + self._delimiter
        self._handler = handler
        self._max_parts = max_parts
        self._parts = 0
        self._state = _State.PREAMBLE
        self._buffer = bytearray()
        #: The buffer no longer starts where the body does.
        self._preamble_dropped = False

    @property
    def done(self) -> bool:
        """The last part wanted has ended (more data is ignored)."""
        return self._state is _State.DONE

    def feed(self, data: bytes) -> None:
        if self._state is _State.DONE:
            return
        self._buffer += data
        while self._step():
            pass

    def finish(self) -> None:
        """The body has ended: MultipartError unless its parts were complete."""
        if self._state is _State.DONE:
            return
        if self._state is _State.PREAMBLE:
            raise MultipartError("no opening delimiter")
        if self._state is _State.AFTER_DELIMITER:
            raise MultipartError("a delimiter is not followed by a line break")
        if self._state is _State.HEADERS:
            raise MultipartError("a part's headers do not end")
        raise MultipartError("a part does not end")

    def _step(self) -> bool:
        """Parse what the buffer allows of the current state; whether to go on."""
        buffer = self._buffer
        if self._state is _State.PREAMBLE:
            # The first delimiter starts the body or follows a preamble's line break.
            if not self._preamble_dropped:
                if buffer.startswith(self._delimiter):
                    del buffer[: len(self._delimiter)]
                    return self._after_delimiter()
                if len(buffer) < len(self._delimiter) and self._delimiter.startswith(buffer):
                    return False
            found = buffer.find(self._part_end)
            if found < 0:
                # Only what could still begin the delimiter needs keeping.
                dropped = max(0, len(buffer) - len(self._part_end) + 1)
                if dropped:
                    self._preamble_dropped = True
                    del buffer[:dropped]
                return False
            del buffer[: found + len(self._part_end)]
            return self._after_delimiter()
        if self._state is _State.AFTER_DELIMITER:
            if len(buffer) < 2:
                return False
            if buffer.startswith(b"--"):
                self._state = _State.DONE  # the closing delimiter
                buffer.clear()
                return False
            # Transport padding (spaces and tabs) may follow a delimiter.
            padding = len(buffer) - len(bytes(buffer).lstrip(b" \t"))
            del buffer[:padding]
            if len(buffer) < 2:
                return False
            if not buffer.startswith(CRLF):
                raise MultipartError("a delimiter is not followed by a line break")
            del buffer[:2]
            self._state = _State.HEADERS
            return True
        if self._state is _State.HEADERS:
            if len(buffer) < 2:
                return False
            if buffer.startswith(CRLF):
                headers_end = -2  # a part with no headers at all
            else:
                headers_end = buffer.find(CRLF + CRLF, 0, MAX_HEADER_BYTES)
                if headers_end < 0:
                    if len(buffer) >= MAX_HEADER_BYTES:
                        raise MultipartError("a part's headers do not end")
                    return False
            headers = _parse_headers(bytes(buffer[: max(headers_end, 0)]))
            del buffer[: headers_end + 4]
            self._state = _State.BODY
            self._handler.part_started(headers)
            return True
        if self._state is _State.BODY:
            end = buffer.find(self._part_end)
            if end < 0:
                # Keep what could be the start of the delimiter; pass on the rest.
                keep = len(self._part_end) - 1
                if len(buffer) > keep:
                    self._handler.part_data(bytes(buffer[: len(buffer) - keep]))
                    del buffer[: len(buffer) - keep]
                return False
            if end:
                self._handler.part_data(bytes(buffer[:end]))
            del buffer[: end + len(self._part_end)]
            self._handler.part_ended()
            self._parts += 1
            if self._parts >= self._max_parts:
                self._state = _State.DONE
                buffer.clear()
                return False
            return self._after_delimiter()
        return False

    def _after_delimiter(self) -> bool:
        self._state = _State.AFTER_DELIMITER
        return True


class _Collected:
    def __init__(self) -> None:
        self.parts: list[Part] = []
        self._headers: dict[str, str] = {}
        self._chunks: list[bytes] = []

    def part_started(self, headers: dict[str, str]) -> None:
        self._headers, self._chunks = headers, []

    def part_data(self, data: bytes) -> None:
        self._chunks.append(data)

    def part_ended(self) -> None:
        self.parts.append(Part(self._headers, b"".join(self._chunks)))


def parse_multipart(body: bytes, boundary: str, *, max_parts: int) -> list[Part]:
    """The parts of ``body`` (at most ``max_parts``: the rest are ignored)."""
    collected = _Collected()
    reader = MultipartReader(boundary, collected, max_parts=max_parts)
    reader.feed(body)
    reader.finish()
    return collected.parts


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
