"""Identifier grammar (appendices.md#identifier-grammar)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.identifiers import (
    UserID,
    is_valid_event_id,
    is_valid_historical_user_localpart,
    is_valid_room_alias,
    is_valid_room_id,
    is_valid_server_name,
    is_valid_user_id,
    is_valid_user_localpart,
    parse_server_name,
)

HASH_43 = "Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ"


# --- server names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("matrix.org", ("matrix.org", None)),
        ("matrix.org:8888", ("matrix.org", 8888)),
        ("1.2.3.4", ("1.2.3.4", None)),
        ("1.2.3.4:1234", ("1.2.3.4", 1234)),
        ("[1234:5678::abcd]", ("[1234:5678::abcd]", None)),
        ("[1234:5678::abcd]:5678", ("[1234:5678::abcd]", 5678)),
        ("[::ffff:1.2.3.4]", ("[::ffff:1.2.3.4]", None)),
        ("localhost:1", ("localhost", 1)),
        ("MATRIX.ORG:65535", ("MATRIX.ORG", 65535)),
        ("a-b.c", ("a-b.c", None)),
    ],
)
def test_spec_example_server_names_parse(name: str, parsed: tuple[str, int | None]) -> None:
    assert parse_server_name(name) == parsed
    assert is_valid_server_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        ":8080",
        "matrix.org:",
        "matrix.org:0",
        "matrix.org:65536",
        "matrix.org:123456",
        "matrix.org:80a",
        "matrix.org:８０",  # non-ASCII digits
        "matrix.org:80:80",
        "under_score.org",
        "spa ce.org",
        "exämple.org",
        "256.1.1.1",
        "[1234:5678::abcd",
        "[1234:5678::abcd]x",
        "[fe80::1%eth0]",
        "[not:an:ip:gg]",
        "[1.2.3.4]",
        "1234:5678::abcd",
        "a" * 256,
    ],
)
def test_invalid_server_names_are_rejected(name: str) -> None:
    assert not is_valid_server_name(name)
    with pytest.raises(ValueError):
        parse_server_name(name)


def test_dns_name_may_be_255_characters() -> None:
    assert is_valid_server_name("a" * 255)


@given(st.text())
def test_server_name_parsing_never_raises_anything_but_value_error(name: str) -> None:
    try:
        parse_server_name(name)
    except ValueError:
        pass


# --- user IDs --------------------------------------------------------------------------


@pytest.mark.parametrize("localpart", ["a", "alice", "a.b_c=d-e/f+g", "0123"])
def test_current_localpart_grammar_accepts(localpart: str) -> None:
    assert is_valid_user_localpart(localpart)
    assert is_valid_historical_user_localpart(localpart)


@pytest.mark.parametrize("localpart", ["", "Alice", "a b", "a:b", "a#b", "é", "a*"])
def test_current_localpart_grammar_rejects(localpart: str) -> None:
    assert not is_valid_user_localpart(localpart)


@pytest.mark.parametrize("localpart", ["", "Alice", "a b", "a#b", "é", "\x01ctrl", "😀"])
def test_historical_localpart_accepts_any_codepoint_but_colon_and_nul(localpart: str) -> None:
    assert is_valid_historical_user_localpart(localpart)


@pytest.mark.parametrize("localpart", ["a:b", "a\x00b", "\ud800"])
def test_historical_localpart_rejects_colon_nul_and_surrogates(localpart: str) -> None:
    assert not is_valid_historical_user_localpart(localpart)


def test_user_id_parse_splits_on_first_colon_so_domain_keeps_port() -> None:
    user = UserID.parse("@alice:example.org:8448")
    assert user == UserID("alice", "example.org:8448")
    assert user.to_string() == str(user) == "@alice:example.org:8448"


def test_user_id_parse_of_ipv6_domain() -> None:
    assert UserID.parse("@a:[::1]:80").domain == "[::1]:80"


@pytest.mark.parametrize(
    ("user_id", "reason"),
    [
        ("alice:example.org", "start with '@'"),
        ("@alice", "no ':'"),
        ("@alice:", "invalid server name"),
        ("@alice:bad_domain", "invalid server name"),
        ("@a\x00b:example.org", "invalid localpart"),
        ("@\ud800:example.org", "surrogates"),
        ("@" + "a" * 243 + ":example.org", "bytes long"),
    ],
)
def test_user_id_parse_gives_a_reason(user_id: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        UserID.parse(user_id)
    assert not is_valid_user_id(user_id)


def test_user_id_limit_is_255_bytes_not_characters() -> None:
    at_limit = "@" + "a" * 242 + ":example.org"
    assert len(at_limit.encode()) == 255
    assert is_valid_user_id(at_limit)
    # 2 bytes per "é": fewer than 255 characters but over 255 bytes.
    multibyte = "@" + "é" * 122 + ":example.org"
    assert len(multibyte) < 255 < len(multibyte.encode())
    assert not is_valid_user_id(multibyte)


def test_historical_user_ids_only_accepted_when_historical() -> None:
    assert is_valid_user_id("@Alice:example.org")
    assert is_valid_user_id("@:example.org")
    assert not is_valid_user_id("@Alice:example.org", historical=False)
    with pytest.raises(ValueError, match="localpart may only contain"):
        UserID.parse("@Alice:example.org", historical=False)


def test_is_valid_user_id_handles_non_strings() -> None:
    assert not is_valid_user_id(None)  # type: ignore[arg-type]
    assert not is_valid_user_id(42)  # type: ignore[arg-type]


# --- room IDs, aliases, event IDs -------------------------------------------------------


@pytest.mark.parametrize("room_id", ["!abc:example.org", "!a:1.2.3.4:80", "!" + HASH_43])
def test_valid_room_ids(room_id: str) -> None:
    assert is_valid_room_id(room_id)


@pytest.mark.parametrize(
    "room_id",
    [
        "",
        "abc:example.org",
        "!:example.org",
        "!abc",
        "!abc:bad_domain",
        "!" + HASH_43 + "A",
        "!" + HASH_43[:-1] + "+",
        "#abc:example.org",
        "!" + "a" * 250 + ":e.org",
    ],
)
def test_invalid_room_ids(room_id: str) -> None:
    assert not is_valid_room_id(room_id)


@pytest.mark.parametrize("alias", ["#room:example.org", "#Ünïcode room:example.org:8448"])
def test_valid_room_aliases(alias: str) -> None:
    assert is_valid_room_alias(alias)


@pytest.mark.parametrize(
    "alias",
    ["room:example.org", "#room", "#:example.org", "#a\x00:e.org", "#" + "a" * 250 + ":e.org"],
)
def test_invalid_room_aliases(alias: str) -> None:
    assert not is_valid_room_alias(alias)


@pytest.mark.parametrize(
    ("event_id", "versions"),
    [
        ("$abc:example.org", {"1", "2"}),
        ("$" + HASH_43.replace("-", "+"), {"3"}),
        ("$" + HASH_43.replace("-", "a"), {"3", "4", "5", "6", "7", "8", "9", "10", "11", "12"}),
        ("$" + HASH_43, {"4", "5", "6", "7", "8", "9", "10", "11", "12"}),
        ("$" + HASH_43[:-1], set()),
        ("$abc", set()),
        ("!" + HASH_43, set()),
    ],
)
def test_event_id_format_depends_on_room_version(event_id: str, versions: set[str]) -> None:
    accepted = {v for v, rv in KNOWN_ROOM_VERSIONS.items() if is_valid_event_id(event_id, rv)}
    assert accepted == versions
