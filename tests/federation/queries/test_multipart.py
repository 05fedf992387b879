"""multipart/mixed as the federation media endpoints use it: what we build parses
back, and what other servers send is refused when it is not what it claims."""

from __future__ import annotations

import pytest

from federation.queries.multipart import (
    MultipartError,
    MultipartReader,
    Part,
    boundary_of,
    closing,
    new_boundary,
    parse_multipart,
    part_head,
)


def build(boundary: str, file_body: bytes, file_headers: dict[str, str]) -> bytes:
    return (
        part_head(boundary, {"Content-Type": "application/json"}, first=True)
        + b"{}"
        + part_head(boundary, file_headers, first=False)
        + file_body
        + closing(boundary)
    )


class Pieces:
    """Records what a MultipartReader hands on, piece by piece."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.largest_piece = 0
        self._headers: dict[str, str] = {}
        self._body = bytearray()

    def part_started(self, headers: dict[str, str]) -> None:
        self._headers, self._body = headers, bytearray()

    def part_data(self, data: bytes) -> None:
        self.largest_piece = max(self.largest_piece, len(data))
        self._body += data

    def part_ended(self) -> None:
        self.parts.append(Part(self._headers, bytes(self._body)))


def read_in_pieces(body: bytes, boundary: str, size: int, *, max_parts: int = 2) -> Pieces:
    pieces = Pieces()
    reader = MultipartReader(boundary, pieces, max_parts=max_parts)
    for start in range(0, len(body), size):
        reader.feed(body[start : start + size])
    reader.finish()
    return pieces


def test_a_built_body_parses_back_to_its_parts() -> None:
    boundary = new_boundary()
    payload = b"\r\n--almost\r\n" + bytes(range(256)) * 10
    body = build(boundary, payload, {"Content-Type": "image/png", "Content-Disposition": "inline"})
    json_part, file_part = parse_multipart(body, boundary, max_parts=2)
    assert json_part.headers == {"content-type": "application/json"}
    assert json_part.body == b"{}"
    assert file_part.headers == {"content-type": "image/png", "content-disposition": "inline"}
    assert file_part.body == payload


def test_an_empty_file_and_a_preamble_are_understood() -> None:
    boundary = "simple boundary"
    body = b"a preamble to ignore\r\n" + build(boundary, b"", {"Location": "https://x.test/f"})
    parts = parse_multipart(body, boundary, max_parts=2)
    assert parts[1].body == b""
    assert parts[1].headers["location"] == "https://x.test/f"


def test_a_part_without_headers_is_understood() -> None:
    body = b"--b\r\n\r\n{}\r\n--b\r\n\r\nfile\r\n--b--\r\n"
    parts = parse_multipart(body, "b", max_parts=2)
    assert [(p.headers, p.body) for p in parts] == [({}, b"{}"), ({}, b"file")]


def test_parts_beyond_the_maximum_are_ignored() -> None:
    body = b"--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b\r\n\r\nthree\r\n--b--"
    assert [p.body for p in parse_multipart(body, "b", max_parts=2)] == [b"one", b"two"]


@pytest.mark.parametrize(
    "body",
    [
        b"no delimiter at all",
        b"--b\r\nContent-Type: text/plain\r\n\r\nnever ends",
        b"--b\r\nContent-Type: text/plain",  # headers never end
        b"--bgarbage\r\n\r\nx\r\n--b--",  # a delimiter not followed by a line break
        b"--b\r\nno colon here\r\n\r\nx\r\n--b--",
        b"--b\r\n\xff\xfe: x\r\n\r\nx\r\n--b--",
    ],
)
def test_malformed_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(MultipartError):
        parse_multipart(body, "b", max_parts=2)


def test_a_header_block_larger_than_the_cap_is_refused() -> None:
    body = b"--b\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\nx\r\n--b--"
    with pytest.raises(MultipartError):
        parse_multipart(body, "b", max_parts=2)


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/mixed; boundary=abc123", "abc123"),
        ('Multipart/Mixed; charset=x; boundary="with space"', "with space"),
    ],
)
def test_the_boundary_is_read_from_the_content_type(content_type: str, boundary: str) -> None:
    assert boundary_of(content_type) == boundary


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "multipart/mixed",
        "multipart/mixed; boundary=",
        "multipart/mixed; boundary=" + "a" * 71,
        'multipart/mixed; boundary="ends in space "',
        "multipart/mixed; boundary=bad\x00char",
    ],
)
def test_a_missing_or_invalid_boundary_is_refused(content_type: str) -> None:
    with pytest.raises(MultipartError):
        boundary_of(content_type)


@pytest.mark.parametrize("piece_size", [1, 2, 3, 7, 64, 4096])
def test_a_body_arriving_in_pieces_parses_as_it_would_whole(piece_size: int) -> None:
    boundary = new_boundary()
    # Near-delimiters inside the file, cut anywhere by the pieces, are file bytes.
    payload = (b"\r\n--" + boundary.encode()[:-1] + b"x\r\n-" + bytes(range(256))) * 40
    body = b"a preamble\r\n" + build(boundary, payload, {"Content-Type": "image/png"})
    whole = parse_multipart(body, boundary, max_parts=2)
    pieces = read_in_pieces(body, boundary, piece_size)
    assert pieces.parts == whole
    assert pieces.parts[1].body == payload


def test_a_large_file_part_is_handed_on_without_being_held() -> None:
    boundary = new_boundary()
    payload = bytes(range(256)) * 4096  # 1 MiB
    body = build(boundary, payload, {"Content-Type": "application/octet-stream"})
    pieces = read_in_pieces(body, boundary, 16 * 1024)
    assert pieces.parts[1].body == payload
    # Each piece passed on is about what arrived, not the part so far.
    assert pieces.largest_piece <= 16 * 1024 + len(boundary) + 4


def test_a_delimiter_inside_a_preamble_line_does_not_open_the_body() -> None:
    body = b"xx--b\r\n" + b"p" * 100 + b"\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--"
    for size in (1, 5, 1000):
        assert [p.body for p in read_in_pieces(body, "b", size).parts] == [b"one", b"two"]


@pytest.mark.parametrize(
    "body",
    [
        b"no delimiter at all",
        b"--b\r\nContent-Type: text/plain\r\n\r\nnever ends",
        b"--b\r\nContent-Type: text/plain",
        b"--bgarbage\r\n\r\nx\r\n--b--",
        b"--b\r\nno colon here\r\n\r\nx\r\n--b--",
        b"--b\r\n\r\none\r\n--b",  # ends right after a delimiter
    ],
)
def test_malformed_bodies_arriving_in_pieces_are_refused(body: bytes) -> None:
    with pytest.raises(MultipartError):
        read_in_pieces(body, "b", 1)
