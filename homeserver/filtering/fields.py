"""``event_fields``: keeping only some properties of each event.

Each entry is a dot-separated property path; a literal ``.`` or ``\\`` inside a
property name is escaped with a backslash (``content.m\\.relates_to``).  Any other
backslash is literal.

spec: appendices.md#dot-separated-property-paths, data/api/client-server/definitions/
sync_filter.yaml (``event_fields``)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from homeserver.util.property_paths import split_property_path

FieldPath = tuple[str, ...]


def parse_field_path(path: str) -> FieldPath:
    """Split ``path`` at unescaped dots, resolving the ``\\.`` and ``\\\\`` escapes."""
    return split_property_path(path)


def only_fields(event: Mapping[str, Any], paths: Iterable[FieldPath]) -> dict[str, Any]:
    """A new dict holding only the properties of ``event`` named by ``paths``.

    Paths that do not exist in the event are skipped.  The values are not copied:
    the result shares them with ``event``, which is never modified.
    """
    result: dict[str, Any] = {}
    for path in paths:
        _copy_path(event, result, path)
    return result


def _copy_path(source: Mapping[str, Any], target: dict[str, Any], path: FieldPath) -> None:
    # Find the value first, so a missing property leaves no empty objects behind.
    parents: list[Mapping[str, Any]] = []
    node: Any = source
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return
        parents.append(node)
        node = node[key]
    for depth, key in enumerate(path[:-1]):
        existing = target.get(key)
        if existing is parents[depth][key]:
            return  # an earlier, shorter path already took this whole subtree
        if existing is None:
            existing = target[key] = {}
        target = existing
    target[path[-1]] = node
