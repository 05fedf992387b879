"""Canonical JSON (appendices.md#canonical-json) and the v6 strictness rules."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from homeserver.events.canonical import (
    MAX_CANONICAL_INT,
    MIN_CANONICAL_INT,
    check_json_value,
    encode_canonical_json,
)
from homeserver.events.errors import InvalidEventError


def _parse_integral_float(text: str) -> int | float:
    # A JSON number like 1e10 is an integer value; a spec-following parser keeps it one.
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(text)


# Every "Examples" pair from appendices.md#canonical-json, as JSON text.
SPEC_EXAMPLES = [
    ("{}", "{}"),
    ('{"one": 1, "two": "Two"}', '{"one":1,"two":"Two"}'),
    ('{"b": "2", "a": "1"}', '{"a":"1","b":"2"}'),
    ('{"b":"2","a":"1"}', '{"a":"1","b":"2"}'),
    (
        """{"auth": {"success": true, "mxid": "@john.doe:example.com",
           "profile": {"display_name": "John Doe", "three_pids": [
             {"medium": "email", "address": "john.doe@example.org"},
             {"medium": "msisdn", "address": "123456789"}]}}}""",
        '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe",'
        '"three_pids":[{"address":"john.doe@example.org","medium":"email"},'
        '{"address":"123456789","medium":"msisdn"}]},"success":true}}',
    ),
    ('{"a": "日本語"}', '{"a":"日本語"}'),
    ('{"本": 2, "日": 1}', '{"日":1,"本":2}'),
    ('{"a": "\\u65E5"}', '{"a":"日"}'),
    ('{"a": null}', '{"a":null}'),
    ('{"a": -0, "b": 1e10}', '{"a":0,"b":10000000000}'),
]


@pytest.mark.parametrize(("source", "expected"), SPEC_EXAMPLES)
@pytest.mark.parametrize("strict", [False, True])
def test_spec_examples_encode_exactly(source: str, expected: str, strict: bool) -> None:
    value = json.loads(source, parse_float=_parse_integral_float)
    assert encode_canonical_json(value, strict=strict) == expected.encode("utf-8")


@pytest.mark.parametrize(
    ("char", "escaped"),
    [("\x00", "\\u0000"), ("\x08", "\\b"), ("\x0b", "\\u000b"), ("\x1f", "\\u001f"),
     ("\n", "\\n"), ('"', '\\"'), ("\\", "\\\\"), ("\x7f", "\x7f"), ("é", "é")],
)  # fmt: skip
def test_strings_use_only_the_grammars_escapes(char: str, escaped: str) -> None:
    assert encode_canonical_json(char) == f'"{escaped}"'.encode()


def test_keys_sort_by_codepoint_not_utf16() -> None:
    # U+FF61 sorts before U+1F600 by code point, after it by UTF-16 code unit.
    assert encode_canonical_json({"\U0001f600": 1, "\uff61": 2}) == '{"｡":2,"😀":1}'.encode()


@pytest.mark.parametrize("value", [MIN_CANONICAL_INT, MAX_CANONICAL_INT, 0, True])
def test_strict_accepts_integers_at_the_range_edges(value: int) -> None:
    assert encode_canonical_json({"n": value}, strict=True)


@pytest.mark.parametrize(
    "value",
    [MAX_CANONICAL_INT + 1, MIN_CANONICAL_INT - 1, 2**63, 1.5, 1.0, -0.0],
)
def test_strict_rejects_floats_and_out_of_range_integers(value: object) -> None:
    with pytest.raises(InvalidEventError):
        encode_canonical_json({"deep": [{"n": value}]}, strict=True)


def test_lenient_mode_encodes_big_integers_and_floats_like_old_rooms() -> None:
    assert encode_canonical_json({"n": 2**60, "f": 1.5}) == b'{"f":1.5,"n":1152921504606846976}'


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), "\ud800", object(), b"bytes", {"a": {2, 3}}],
    ids=["nan", "inf", "lone-surrogate", "object", "bytes", "set"],
)
@pytest.mark.parametrize("strict", [False, True])
def test_non_json_values_raise_invalid_event_error(value: object, strict: bool) -> None:
    with pytest.raises(InvalidEventError):
        encode_canonical_json({"v": value}, strict=strict)


def test_hostile_nesting_raises_invalid_event_error_not_recursion_error() -> None:
    value: object = []
    for _ in range(100_000):
        value = [value]
    check_json_value(value, strict=True)  # iterative: no RecursionError here
    with pytest.raises(InvalidEventError):
        encode_canonical_json(value)


def test_check_json_value_rejects_non_string_keys_even_when_lenient() -> None:
    # (The lenient encoder alone would coerce them like ``json`` does; validation
    # runs this check first.)
    with pytest.raises(InvalidEventError, match="keys must be strings"):
        check_json_value({"a": {None: 1}}, strict=False)
    with pytest.raises(InvalidEventError, match="keys must be strings"):
        encode_canonical_json({1: "x"}, strict=True)
