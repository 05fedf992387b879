"""Pagination tokens that are opaque to clients: URL-safe base64 of a JSON array.

The caller decides what the array holds and checks its shape; this module only
turns it into text and back, refusing anything that is not one of ours with 400
``M_INVALID_PARAM``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from homeserver import errors
from homeserver.util.untrusted_json import UntrustedJsonError, parse_untrusted_json

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,4096}")


def invalid_token() -> errors.MatrixError:
    return errors.invalid_param("Invalid pagination token")


def encode_array(payload: list[Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_array(token: str, length: int) -> list[Any]:
    """The array of ``length`` items in ``token``; 400 if it is anything else."""
    if _TOKEN_RE.fullmatch(token) is None:
        raise invalid_token()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = parse_untrusted_json(raw)
    except (binascii.Error, UntrustedJsonError):
        raise invalid_token() from None
    if not (isinstance(payload, list) and len(payload) == length):
        raise invalid_token()
    return payload
