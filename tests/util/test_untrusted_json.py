"""The one parser for JSON from outside: syntax, nesting and surrogate limits."""

from __future__ import annotations

import pytest

from homeserver.util.untrusted_json import (
    MAX_NESTING_DEPTH,
    UntrustedJsonError,
    parse_untrusted_json,
)


def nested_arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_nesting_up_to_the_limit_is_accepted() -> None:
    value = parse_untrusted_json(nested_arrays(MAX_NESTING_DEPTH))
    for _ in range(MAX_NESTING_DEPTH - 1):
        value = value[0]
    assert value == []


@pytest.mark.parametrize("depth", [MAX_NESTING_DEPTH + 1, 5_000, 200_000])
def test_nesting_past_the_limit_is_refused_as_too_deep(depth: int) -> None:
    with pytest.raises(UntrustedJsonError) as refused:
        parse_untrusted_json(nested_arrays(depth))
    assert refused.value.too_deep


def test_deep_objects_mixed_with_arrays_are_measured_together() -> None:
    body = '{"a":[' * 51 + "1" + "]}" * 51  # 102 levels, alternating
    with pytest.raises(UntrustedJsonError) as refused:
        parse_untrusted_json(body)
    assert refused.value.too_deep


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = '{"body": "' + "[{" * 500 + '"}'
    assert parse_untrusted_json(text) == {"body": "[{" * 500}


def test_many_shallow_containers_are_accepted() -> None:
    body = "[" + ",".join(["[[1]]"] * 10_000) + "]"
    assert len(parse_untrusted_json(body)) == 10_000


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"a": NaN}',
        b"[Infinity]",
        b'{"a": 1e400}',
        b"[-1e400]",
        b'"\\ud800"',
        b'{"\\udc00": 1}',
        b"\xff",
    ],
)
def test_invalid_documents_are_refused_as_syntax(body: bytes) -> None:
    with pytest.raises(UntrustedJsonError) as refused:
        parse_untrusted_json(body)
    assert not refused.value.too_deep


def test_a_surrogate_pair_is_a_valid_character() -> None:
    assert parse_untrusted_json(b'"\\ud83d\\ude42"') == "\U0001f642"


def test_large_but_finite_numbers_are_accepted() -> None:
    assert parse_untrusted_json(b"[1e308, -1e308, 1e-400, 123456789012345678901234567890]") == [
        1e308,
        -1e308,
        0.0,
        123456789012345678901234567890,
    ]
