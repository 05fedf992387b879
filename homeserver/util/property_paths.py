"""Dot-separated property paths, as filters (``event_fields``) and push rule
conditions name fields of an event.

spec: appendices.md#dot-separated-property-paths
"""

from __future__ import annotations


def split_property_path(path: str) -> tuple[str, ...]:
    """Split ``path`` at unescaped dots: ``\\.`` is a literal dot, ``\\\\`` a literal
    backslash, any other backslash is itself."""
    parts: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(path):
        char = path[index]
        if char == "\\" and index + 1 < len(path) and path[index + 1] in ".\\":
            current.append(path[index + 1])
            index += 2
            continue
        if char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return tuple(parts)
