"""event_fields: dot-separated property paths with escapes, applied to client events."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.filtering.fields import only_fields, parse_field_path


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("type", ("type",)),
        ("content.body", ("content", "body")),
        (r"content.m\.relates_to", ("content", "m.relates_to")),
        (r"content.m\\foo", ("content", "m\\foo")),
        # Other escapes are literal: a backslash followed by the character.
        (r"content.a\xb", ("content", "a\\xb")),
        # An escaped backslash followed by a dot: the dot separates.
        (r"content.a\\.b", ("content", "a\\", "b")),
        # A trailing lone backslash is literal.
        ("content.a\\", ("content", "a\\")),
        ("a..b", ("a", "", "b")),
    ],
)
def test_paths_split_at_unescaped_dots(path: str, parts: tuple[str, ...]) -> None:
    assert parse_field_path(path) == parts


EVENT: dict[str, Any] = {
    "type": "m.room.message",
    "sender": "@a:hs",
    "event_id": "$e",
    "content": {"body": "hi", "msgtype": "m.text", "m.relates_to": {"rel_type": "m.thread"}},
    "unsigned": {"age": 5},
}


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["type", "content"], {"type": "m.room.message", "content": EVENT["content"]}),
        (["content.body"], {"content": {"body": "hi"}}),
        (
            [r"content.m\.relates_to.rel_type", "sender"],
            {"content": {"m.relates_to": {"rel_type": "m.thread"}}, "sender": "@a:hs"},
        ),
        # Missing properties, and paths through non-objects, are skipped.
        (["content.nope", "type.deeper", "nothing"], {}),
        # A whole subtree plus a path inside it, in either order.
        (["content", "content.body"], {"content": EVENT["content"]}),
        (["content.body", "content"], {"content": EVENT["content"]}),
        ([], {}),
    ],
)
def test_only_the_listed_fields_are_kept(paths: list[str], expected: dict[str, Any]) -> None:
    before = repr(EVENT)
    assert only_fields(EVENT, [parse_field_path(p) for p in paths]) == expected
    assert repr(EVENT) == before  # the event itself is never modified
