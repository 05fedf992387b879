"""JSON body parsing edge cases (M_NOT_JSON vs M_BAD_JSON)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from homeserver.errors import MatrixError
from homeserver.http.parsing import parse_json_object, require_str


class _FakeBody:
    def __init__(self, body: bytes) -> None:
        self.content = io.BytesIO(body)


def parse(body: bytes) -> Any:
    return parse_json_object(_FakeBody(body))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"\xff\xfe",
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b'["\\udc00"]',
        b'{"k\\ud800": 1}',
    ],
)
def test_not_json_bodies_are_m_not_json(body: bytes) -> None:
    with pytest.raises(MatrixError) as raised:
        parse(body)
    assert raised.value.errcode == "M_NOT_JSON"


@pytest.mark.parametrize("body", [b"[]", b"1", b'"text"', b"null"])
def test_json_that_is_not_an_object_is_m_bad_json(body: bytes) -> None:
    with pytest.raises(MatrixError) as raised:
        parse(body)
    assert raised.value.errcode == "M_BAD_JSON"


def test_valid_surrogate_pairs_are_accepted() -> None:
    assert parse(b'{"cat": "\\ud83d\\udc31"}') == {"cat": "🐱"}


def test_require_str_distinguishes_missing_from_wrong_type() -> None:
    with pytest.raises(MatrixError) as missing:
        require_str({}, "a")
    with pytest.raises(MatrixError) as wrong:
        require_str({"a": 1}, "a")
    assert (missing.value.errcode, wrong.value.errcode) == ("M_MISSING_PARAM", "M_BAD_JSON")
