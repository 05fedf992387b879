"""Canonical JSON: the byte encoding that hashes and signatures are computed over.

spec: appendices.md#canonical-json, rooms/fragments/v6-canonical-json.md
"""

from __future__ import annotations

import canonicaljson

from homeserver.events.errors import InvalidEventError

#: Integers must be exactly representable as IEEE doubles.  spec: appendices.md#canonical-json
MIN_CANONICAL_INT = -(2**53) + 1
MAX_CANONICAL_INT = 2**53 - 1


def encode_canonical_json(obj: object, *, strict: bool = False) -> bytes:
    """Encode ``obj`` as canonical JSON bytes (UTF-8, sorted keys, no whitespace).

    With ``strict`` (room versions 6+, ``RoomVersion.strict_canonicaljson``) floats and
    integers outside ``[-(2**53)+1, 2**53-1]`` are rejected, as the v6 rules require.
    Without it they are encoded as Python's ``json`` does, because events in rooms
    v1-v5 may carry such values and their hashes were computed that way.

    Raises :class:`InvalidEventError` for anything that is not JSON (NaN, lone
    surrogates, non-string keys, unknown types, absurd nesting).

    spec: appendices.md#canonical-json
    """
    if strict:
        check_json_value(obj, strict=True)
    try:
        return canonicaljson.encode_canonical_json(obj)
    except (ValueError, TypeError, RecursionError) as exc:
        # ValueError covers NaN/Infinity, UnicodeEncodeError (lone surrogates) and
        # over-long integer conversions.
        raise InvalidEventError(f"value cannot be encoded as canonical JSON: {exc}") from exc


def check_json_value(obj: object, *, strict: bool) -> None:
    """Check that ``obj`` is a JSON value; with ``strict``, also the v6 number rules.

    JSON values are dicts with string keys, lists, strings, integers, floats, booleans
    and None.  ``strict`` rejects floats and integers outside
    ``[-(2**53)+1, 2**53-1]``.  Iterative, so hostile nesting cannot exhaust the stack.
    Raises :class:`InvalidEventError`.

    spec: appendices.md#canonical-json, rooms/fragments/v6-canonical-json.md
    """
    stack: list[object] = [obj]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        value = pop()
        # Exact type checks first: they are the common case and cheaper than isinstance.
        value_type = type(value)
        if value_type is str or value is None or value_type is bool:
            continue
        if value_type is dict:
            for key, item in value.items():  # type: ignore[attr-defined]
                if type(key) is not str:
                    raise InvalidEventError(f"JSON object keys must be strings, got {key!r}")
                push(item)
        elif value_type is list or value_type is tuple:
            extend(value)  # type: ignore[arg-type]
        elif value_type is int:
            if strict and not MIN_CANONICAL_INT <= value <= MAX_CANONICAL_INT:  # type: ignore[operator]
                raise InvalidEventError(
                    f"integer {value} is outside the canonical JSON range "
                    f"[{MIN_CANONICAL_INT}, {MAX_CANONICAL_INT}]"
                )
        elif value_type is float:
            if strict:
                raise InvalidEventError(f"floats are not allowed in canonical JSON (got {value!r})")
        else:
            raise InvalidEventError(f"{value_type.__name__} is not a JSON type")
