"""Parsing JSON that comes from outside: the one place its limits are enforced.

Every JSON document a peer sends us — client request bodies and query parameters,
and later federation and application-service transactions and WebSocket frames —
is parsed here, so that one set of rules holds everywhere:

- it must be UTF-8 JSON as RFC 8259 defines it (no ``NaN``/``Infinity``, no number
  too large for a float such as ``1e400``, no lone UTF-16 surrogates: none of them
  could be encoded again as JSON to be stored or sent on);
- containers may nest at most :data:`MAX_NESTING_DEPTH` deep.  Python's parser
  recurses per level and raises ``RecursionError`` somewhere near 1,000 levels;
  everything downstream (canonical JSON, redaction, filters, push rules) recurses
  too, so a document that parsed could still blow up later.  No Matrix structure
  comes close to 100 levels.

The size limit is the HTTP layer's (``max_request_body_size``), enforced before the
body is buffered.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from homeserver import errors

#: The deepest nesting of arrays and objects accepted anywhere.
MAX_NESTING_DEPTH = 100

# A JSON escape for a UTF-16 surrogate: only then can a parsed string hold a lone
# surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class UntrustedJsonError(ValueError):
    """The document is refused; ``too_deep`` tells nesting apart from bad syntax."""

    def __init__(self, reason: str, *, too_deep: bool = False) -> None:
        super().__init__(reason)
        self.too_deep = too_deep


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # JSON has no infinity, but ``1e400`` parses to one: stored and echoed back it
    # would be written as ``Infinity`` and make every later response invalid JSON.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def parse_untrusted_json(data: bytes | str) -> Any:
    """The JSON value in ``data``, or :class:`UntrustedJsonError` saying why not."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UntrustedJsonError("not valid UTF-8") from None
    else:
        text = data
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as error:
        raise UntrustedJsonError(str(error)) from None
    # Fewer openers than the limit cannot nest past it: skips the walk for almost
    # every request at the cost of two C-speed scans.
    if text.count("[") + text.count("{") > MAX_NESTING_DEPTH and _nests_deeper_than(
        value, MAX_NESTING_DEPTH
    ):
        raise _too_deep()
    if _SURROGATE_ESCAPE.search(text) is not None:
        _check_no_lone_surrogates(value)
    return value


def parse_json_text(data: bytes | str, what: str = "Content") -> Any:
    """``data`` parsed as above, its refusals as Matrix errors for a client:
    ``M_NOT_JSON`` for bad syntax, ``M_BAD_JSON`` for nesting past the limit.

    spec: client-server-api/_index.md#common-error-codes
    """
    try:
        return parse_untrusted_json(data)
    except UntrustedJsonError as refused:
        if refused.too_deep:
            raise errors.bad_json(f"{what} is nested too deeply: {refused}") from None
        raise errors.not_json(f"{what} not JSON: {refused}") from None


def _too_deep() -> UntrustedJsonError:
    return UntrustedJsonError(
        f"arrays and objects nest more than {MAX_NESTING_DEPTH} levels deep", too_deep=True
    )


def _nests_deeper_than(value: Any, limit: int) -> bool:
    # Level by level, with exact type checks: a third of the time of a depth-first
    # walk with isinstance on large transactions.
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        deeper = []
        for item in level:
            for child in item.values() if type(item) is dict else item:
                kind = type(child)
                if kind is dict or kind is list:
                    deeper.append(child)
        level = deeper
    return False


def _check_no_lone_surrogates(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise UntrustedJsonError("lone UTF-16 surrogate") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
