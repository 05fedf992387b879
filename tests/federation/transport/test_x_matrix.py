"""The X-Matrix authorisation header: signing, and parsing what other servers send.

spec: server-server-api.md#request-authentication
"""

from __future__ import annotations

import pytest
from signedjson.key import generate_signing_key, get_verify_key
from signedjson.sign import SignatureVerifyException, verify_signed_json

from federation.transport.x_matrix import (
    XMatrixAuthorization,
    parse_x_matrix,
    sign_request,
    signed_request_json,
)

SPEC_EXAMPLE = (
    'X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",'
    'key="ed25519:key1",sig="ABCDEF..."'
)


def test_the_spec_example_header_parses() -> None:
    assert parse_x_matrix(SPEC_EXAMPLE) == XMatrixAuthorization(
        origin="origin.hs.example.com",
        destination="destination.hs.example.com",
        key_id="ed25519:key1",
        signature="ABCDEF...",
    )


def test_a_signed_request_verifies_with_the_senders_key() -> None:
    key = generate_signing_key("a_x")
    body = {"pdus": [], "edus": [{"edu_type": "m.typing", "content": {}}]}
    header = sign_request(
        key,
        origin="origin.example",
        destination="dest.example",
        method="PUT",
        uri="/_matrix/federation/v1/send/1?x=%20y",
        content=body,
    )
    parsed = parse_x_matrix(header)
    assert (parsed.origin, parsed.destination, parsed.key_id) == (
        "origin.example",
        "dest.example",
        "ed25519:a_x",
    )
    signed = signed_request_json(
        "PUT", "/_matrix/federation/v1/send/1?x=%20y", "origin.example", "dest.example", body
    )
    signed["signatures"] = {"origin.example": {parsed.key_id: parsed.signature}}
    verify_signed_json(signed, "origin.example", get_verify_key(key))


def test_a_signature_does_not_cover_another_target() -> None:
    key = generate_signing_key("a_x")
    header = sign_request(
        key, origin="o.example", destination="d.example", method="GET", uri="/a", content=None
    )
    parsed = parse_x_matrix(header)
    signed = signed_request_json("GET", "/b", "o.example", "d.example", None)
    signed["signatures"] = {"o.example": {parsed.key_id: parsed.signature}}
    with pytest.raises(SignatureVerifyException):
        verify_signed_json(signed, "o.example", get_verify_key(key))


def test_the_signed_object_has_content_only_when_there_is_a_body() -> None:
    assert signed_request_json("GET", "/x", "o", "d", None) == {
        "method": "GET",
        "uri": "/x",
        "origin": "o",
        "destination": "d",
    }
    assert signed_request_json("POST", "/x", "o", "d", {})["content"] == {}


def test_the_header_we_send_follows_the_compatibility_advice() -> None:
    key = generate_signing_key("a_x")
    header = sign_request(
        key, origin="o.example", destination="d.example", method="GET", uri="/a", content=None
    )
    # One space after the scheme, lower-case names, no spaces around commas.
    assert header.startswith(
        'X-Matrix origin="o.example",destination="d.example",key="ed25519:a_x",sig="'
    )
    assert "\\" not in header


@pytest.mark.parametrize(
    "header",
    [
        # Unquoted tokens, colons included (older servers).
        "X-Matrix origin=o.example:8448,destination=d.example,key=ed25519:k,sig=abc+/def",
        # Spaces and tabs around commas, several spaces after the scheme.
        'X-Matrix   origin="o.example:8448" ,\tdestination="d.example" , key="ed25519:k",sig="abc+/def"',
        # Names are case-insensitive, and so is the scheme; order does not matter.
        'x-matrix SIG="abc+/def",Key="ed25519:k",DESTINATION="d.example",Origin="o.example:8448"',
        # Backslash escapes in quoted values are undone.
        'X-Matrix origin="o\\.example:8448",destination="d.example",key="ed25519:k",sig="abc+/def"',
        # Unknown parameters are ignored; empty list elements are allowed.
        'X-Matrix origin="o.example:8448",,destination="d.example",key="ed25519:k",'
        'sig="abc+/def",future="x, y"',
    ],
)
def test_header_variants_the_spec_allows_parse_alike(header: str) -> None:
    assert parse_x_matrix(header) == XMatrixAuthorization(
        origin="o.example:8448", destination="d.example", key_id="ed25519:k", signature="abc+/def"
    )


def test_a_header_without_destination_is_accepted_for_older_servers() -> None:
    parsed = parse_x_matrix('X-Matrix origin="o.example",key="ed25519:k",sig="s"')
    assert parsed.destination is None


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ('Bearer origin="o.example",key="ed25519:k",sig="s"', "not an X-Matrix"),
        ("X-Matrix", "not an X-Matrix"),
        ('X-Matrix key="ed25519:k",sig="s"', "lacks origin"),
        ('X-Matrix origin="o.example",sig="s"', "lacks key"),
        ('X-Matrix origin="o.example",key="ed25519:k"', "lacks sig"),
        ('X-Matrix origin="o.example",origin="p.example",key="ed25519:k",sig="s"', "twice"),
        ('X-Matrix origin="o.example,key="ed25519:k",sig="s"', "expected ','"),
        ('X-Matrix origin="o.example",key="ed25519:k",sig="s', "unterminated"),
        ('X-Matrix origin="o.example" key="ed25519:k",sig="s"', "expected ','"),
        ('X-Matrix origin=,key="ed25519:k",sig="s"', "expected a value"),
        ('X-Matrix origin="o.example",key,sig="s"', "has no value"),
        ('X-Matrix origin="bad name",key="ed25519:k",sig="s"', "not a valid server name"),
        ('X-Matrix origin="o.example",destination="",key="ed25519:k",sig="s"', "destination"),
        ('X-Matrix origin="o.example",key="ed25519",sig="s"', "algorithm:version"),
        ('X-Matrix origin="o.example",key="ed25519:k",sig=""', "sig is empty"),
        ("X-Matrix origin=" + "a" * 5000, "too long"),
    ],
)
def test_malformed_headers_are_refused_with_a_reason(header: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_x_matrix(header)
