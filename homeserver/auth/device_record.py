"""A device as the device handler and the HTTP API see it.

Defined here rather than in the device store so the API can name it without
importing the store; the store builds these from its rows.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class DeviceRecord:
    user_id: str
    device_id: str
    display_name: str | None
    last_seen_ts: int | None
    last_seen_ip: str | None
    last_seen_user_agent: str | None
