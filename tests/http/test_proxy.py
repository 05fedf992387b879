"""Reading the client's address and scheme from a reverse proxy's headers."""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.web.http_headers import Headers

from homeserver.http.proxy import forwarded_client_address, forwarded_is_secure


def headers(name: bytes, *lines: bytes) -> Headers:
    result = Headers()
    result.setRawHeaders(name, list(lines))
    return result


def test_single_entry_is_the_client() -> None:
    assert forwarded_client_address(headers(b"X-Forwarded-For", b"203.0.113.7")) == IPv4Address(
        "TCP", "203.0.113.7", 0
    )


def test_right_most_entry_wins_because_the_client_wrote_the_others() -> None:
    # nginx's $proxy_add_x_forwarded_for: "<what the client sent>, <its address>".
    forged = headers(b"X-Forwarded-For", b"1.2.3.4, 198.51.100.9")
    assert forwarded_client_address(forged) == IPv4Address("TCP", "198.51.100.9", 0)


def test_several_header_lines_read_as_one_list() -> None:
    # RFC 9110 §5.3: repeated fields are one comma-separated list, in order.
    lines = headers(b"X-Forwarded-For", b"1.2.3.4", b"10.0.0.1, 192.0.2.5")
    assert forwarded_client_address(lines) == IPv4Address("TCP", "192.0.2.5", 0)


def test_ipv6_client_is_normalised() -> None:
    found = forwarded_client_address(headers(b"X-Forwarded-For", b"2001:DB8:0:0::1"))
    assert found == IPv6Address("TCP", "2001:db8::1", 0)


@pytest.mark.parametrize(
    "value", [b"unknown", b"", b" , ", b"203.0.113.7:4711", b"1.2.3.4, not-an-ip", b"\xff"]
)
def test_unparsable_right_most_entry_gives_nothing(value: bytes) -> None:
    # The caller falls back to the peer; an earlier (client-written) entry never counts.
    assert forwarded_client_address(headers(b"X-Forwarded-For", value)) is None


def test_missing_header_gives_nothing() -> None:
    assert forwarded_client_address(Headers()) is None
    assert forwarded_is_secure(Headers()) is None


@pytest.mark.parametrize(
    ("value", "secure"),
    [(b"https", True), (b"HTTPS", True), (b"http", False), (b"http, https", True), (b"ftp", None)],
)
def test_forwarded_proto(value: bytes, secure: bool | None) -> None:
    assert forwarded_is_secure(headers(b"X-Forwarded-Proto", value)) is secure
