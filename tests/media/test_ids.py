"""Media IDs and ``mxc://`` URIs: only ``A-Za-z0-9_-`` IDs and valid server names
are accepted, so nothing from a request can walk out of a storage path.

spec: client-server-api/modules/content_repo.md#matrix-content-mxc-uris and
#content-repo-security-considerations
"""

from __future__ import annotations

from pathlib import Path

import pytest

from homeserver.media import keys
from homeserver.media.backends.filesystem import key_path
from homeserver.media.ids import is_valid_media_id, mxc_uri, new_media_id, parse_mxc_uri


@pytest.mark.parametrize(
    "media_id",
    ["a", "abc", "ABCxyz019", "with-dash_and_underscore", "-", "_", "0" * 255, "a" * 255],
)
def test_ids_of_the_allowed_characters_up_to_255_are_valid(media_id: str) -> None:
    assert is_valid_media_id(media_id)


@pytest.mark.parametrize(
    "media_id",
    [
        "",
        "a" * 256,
        ".",
        "..",
        "../etc/passwd",
        "abc/../../def",
        "a/b",
        "a\\b",
        "%2e%2e",
        "%2Fetc",
        "abc.png",
        "abc\x00",
        "abc\n",
        "\nabc",
        " abc",
        "ab c",
        "abc~",
        "café",
        "ａｂｃ",  # fullwidth letters
        "١٢٣",  # Arabic-Indic digits
        "abc\u200b",  # zero-width space
        "ǅ",
        "🎉",
    ],
)
def test_traversal_unicode_empty_and_long_ids_are_invalid(media_id: str) -> None:
    assert not is_valid_media_id(media_id)


def test_new_media_ids_are_valid_24_characters_and_distinct() -> None:
    made = {new_media_id() for _ in range(1000)}
    assert len(made) == 1000
    assert all(is_valid_media_id(media_id) and len(media_id) == 24 for media_id in made)


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("mxc://example.org/abc", ("example.org", "abc")),
        ("mxc://example.org:8448/abc-DEF_123", ("example.org:8448", "abc-DEF_123")),
        ("mxc://1.2.3.4/abc", ("1.2.3.4", "abc")),
        ("mxc://[::1]:8448/abc", ("[::1]:8448", "abc")),
        ("mxc://localhost/" + "x" * 255, ("localhost", "x" * 255)),
    ],
)
def test_well_formed_mxc_uris_parse_into_server_name_and_media_id(
    uri: str, parsed: tuple[str, str]
) -> None:
    assert parse_mxc_uri(uri) == parsed


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "mxc://",
        "mxc://example.org",
        "mxc://example.org/",
        "mxc:///abc",
        "mxc:/example.org/abc",
        "MXC://example.org/abc",
        "https://example.org/abc",
        "example.org/abc",
        " mxc://example.org/abc",
        "mxc://example.org/abc/def",
        "mxc://example.org/../abc",
        "mxc://example.org/abc/..",
        "mxc://example.org//abc",
        "mxc://example.org/abc?x=1",
        "mxc://example.org/abc#fragment",
        "mxc://example.org/abc.png",
        "mxc://example.org/" + "x" * 256,
        "mxc://example.org/café",
        "mxc://exa mple.org/abc",
        "mxc://user@example.org/abc",
        "mxc://example.org:99999/abc",
        "mxc://example.org:/abc",
        "mxc://example.org:port/abc",
        "mxc://[::1/abc",
        "mxc://999.1.1.1/abc",
        "mxc://exämple.org/abc",
        "mxc://example.org\\..\\abc/def",
    ],
)
def test_malformed_mxc_uris_are_refused(uri: str) -> None:
    assert parse_mxc_uri(uri) is None


def test_mxc_uri_and_parse_mxc_uri_round_trip() -> None:
    media_id = new_media_id()
    for server_name in ["example.org", "example.org:8448", "[2001:db8::1]", "10.0.0.1:80"]:
        assert parse_mxc_uri(mxc_uri(server_name, media_id)) == (server_name, media_id)


@pytest.mark.parametrize("server_name", ["example.org", "-", "1.2.3.4:8448", "[::1]"])
def test_a_parsed_mxc_uri_gives_storage_keys_inside_the_store(
    server_name: str, tmp_path: Path
) -> None:
    parsed = parse_mxc_uri(f"mxc://{server_name}/abcdefgh")
    assert parsed is not None
    content = key_path(tmp_path, keys.remote_content(*parsed))
    thumbnail = key_path(tmp_path, keys.remote_thumbnail(*parsed, 32, 32, "image/jpeg", "crop"))
    assert content.relative_to(tmp_path).parts[:2] == ("remote_content", server_name)
    assert thumbnail.relative_to(tmp_path).parts[:2] == ("remote_thumbnail", server_name)


@pytest.mark.parametrize("server_name", [".", "..", "a..b", ".example.org", "example.org."])
def test_server_names_with_empty_labels_are_not_media_origins(server_name: str) -> None:
    assert parse_mxc_uri(f"mxc://{server_name}/abcdefgh") is None


@pytest.mark.parametrize("server_name", [".", ".."])
def test_a_dot_segment_server_name_never_reaches_a_storage_key(
    server_name: str, tmp_path: Path
) -> None:
    parsed = parse_mxc_uri(f"mxc://{server_name}/abcdefgh")
    if parsed is None:
        return
    # keys.py: "a key never holds '..' or '/' from a request".
    key_path(tmp_path, keys.remote_content(*parsed))
