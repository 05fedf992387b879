"""Checks of what other servers send about their users' keys (pure, no I/O).

Other servers are hostile: every object is checked for shape, for belonging to the
user it is filed under (and that user to the server that sent it), and bounded in
number.  Signatures are left to the clients, who verify them against keys they
trust; the server only refuses what could never verify or would be misfiled.

spec: server-server-api.md#device-management, #end-to-end-encryption,
#send-to-device-messaging; client-server definitions/device_keys.yaml,
definitions/cross_signing_key.yaml
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: Devices one user may have in what another server sends us; past it the rest are
#: dropped (a real user has a handful).
MAX_DEVICES_PER_USER = 1000
#: Largest device keys object kept (canonical JSON, bytes): real ones are well
#: under 1 KiB; a server padding them must not fill our cache.
MAX_KEY_JSON_BYTES = 16 * 1024
#: Longest device display name kept from another server.
MAX_DISPLAY_NAME = 512
#: Longest device ID and message ID accepted.
MAX_ID_LENGTH = 255
#: Cross-signing usages another server may tell us of (user-signing keys are
#: private to their owner).
PUBLIC_USAGES = ("master", "self_signing")


def canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def device_keys(value: object, user_id: str, device_id: str) -> dict[str, Any] | None:
    """A DeviceKeys object of ``user_id``'s device ``device_id``, without ``unsigned``
    (what servers add); None if it is not one."""
    if not isinstance(value, dict):
        return None
    if value.get("user_id") != user_id or value.get("device_id") != device_id:
        return None
    algorithms = value.get("algorithms")
    keys = value.get("keys")
    if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
        return None
    if not isinstance(keys, dict) or not all(isinstance(k, str) for k in keys.values()):
        return None
    if not isinstance(value.get("signatures"), dict):
        return None
    kept = {k: v for k, v in value.items() if k != "unsigned"}
    if len(canonical(kept).encode("utf-8")) > MAX_KEY_JSON_BYTES:
        return None
    return kept


def cross_signing_key(value: object, user_id: str, usage: str) -> dict[str, Any] | None:
    """A CrossSigningKey of ``user_id`` for ``usage``; None if it is not one."""
    if not isinstance(value, dict) or value.get("user_id") != user_id:
        return None
    usages = value.get("usage")
    if not isinstance(usages, list) or usage not in usages:
        return None
    keys = value.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        return None
    [(key_id, public_key)] = keys.items()
    if not isinstance(public_key, str) or key_id != f"ed25519:{public_key}":
        return None
    signatures = value.get("signatures", {})
    if not isinstance(signatures, dict):
        return None
    return {k: v for k, v in value.items() if k != "unsigned"}


def display_name(value: object) -> str | None:
    if isinstance(value, str) and len(value) <= MAX_DISPLAY_NAME:
        return value
    return None


def device_id(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH:
        return value
    return None


def stream_id(value: object) -> int | None:
    """A non-negative integer that fits a BIGINT."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    return None


def signing_keys_of(
    body: Mapping[str, Any], user_id: str, fields: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """usage → key for each ``fields`` entry (field name → usage) present and valid."""
    found: dict[str, dict[str, Any]] = {}
    for field, usage in fields.items():
        checked = cross_signing_key(body.get(field), user_id, usage)
        if checked is not None:
            found[usage] = checked
    return found
