"""Pushers' settings: Synapse's ``push`` section and its global outbound address
lists (``ip_range_blacklist``/``ip_range_whitelist``), and ``webpush`` (our own: the
``webpush`` pusher kind of MSC4174).

spec: client-server-api/modules/push.md, push-gateway-api.md
"""

from __future__ import annotations

from pathlib import Path

import attrs

from homeserver.config.media import (
    DEFAULT_PREVIEW_IP_BLACKLIST,
    IpNetwork,
    _networks,
    _rate_limit,
)
from homeserver.config.reader import ConfigError, Section
from homeserver.ratelimit import RateLimitConfig

#: ``rc_pushers``: a client sets its pushers at start-up, a few at a time.
DEFAULT_SET_LIMIT = RateLimitConfig(per_second=0.2, burst_count=10)


@attrs.frozen
class WebPushConfig:
    enabled: bool = True
    #: A PEM file holding the VAPID private key (created if missing); None keeps the
    #: key in the database, made at first start.
    vapid_private_key_path: Path | None = None
    #: The VAPID ``sub`` claim (RFC 8292 §2.1): a ``mailto:`` or ``https:`` URI push
    #: services may use to reach the operator.  None: ``mailto:postmaster@<server_name>``.
    vapid_contact: str | None = None


@attrs.frozen
class PushConfig:
    enabled: bool = True
    #: Send the event's ``content`` to push gateways (false: only IDs, sender, type).
    include_content: bool = True
    #: ``counts.unread`` is the number of rooms with unread notifications (false: the
    #: number of unread notifications).
    group_unread_count_by_room: bool = True
    #: Delay each notification by a random time up to this, so a gateway cannot match
    #: pushes to messages by timing (Synapse's ``jitter_delay``).  None: no delay.
    jitter_delay_ms: int | None = None
    #: Deliveries (requests to gateways and push services) under way at once (our own
    #: key): a message in a big room must not open a connection per member at once.
    max_concurrent_deliveries: int = 50
    #: ``rc_pushers`` (our own): ``POST /pushers/set`` requests per user.
    set_limit: RateLimitConfig = DEFAULT_SET_LIMIT
    #: Addresses pushers never reach unless also whitelisted (Synapse's global keys).
    ip_range_blacklist: tuple[IpNetwork, ...] = ()
    ip_range_whitelist: tuple[IpNetwork, ...] = ()
    webpush: WebPushConfig = WebPushConfig()


def parse_push(root: Section) -> PushConfig:
    section = root.section("push")
    config = PushConfig(
        enabled=section.get_bool("enabled", True),
        include_content=section.get_bool("include_content", True),
        group_unread_count_by_room=section.get_bool("group_unread_count_by_room", True),
        jitter_delay_ms=section.get_duration_ms("jitter_delay", None, positive=True),
        max_concurrent_deliveries=section.get_int(
            "max_concurrent_deliveries", 50, minimum=1, maximum=10_000
        ),
        set_limit=_rate_limit(root, "rc_pushers", DEFAULT_SET_LIMIT),
        ip_range_blacklist=_networks(root, "ip_range_blacklist", DEFAULT_PREVIEW_IP_BLACKLIST),
        ip_range_whitelist=_networks(root, "ip_range_whitelist", ()),
        webpush=_parse_webpush(root),
    )
    section.finish()
    return config


def _parse_webpush(root: Section) -> WebPushConfig:
    section = root.section("webpush")
    contact = section.get_str("vapid_contact", None)
    if contact is not None and not contact.startswith(("mailto:", "https:")):
        raise ConfigError("webpush.vapid_contact", "must be a mailto: or https: URI")
    config = WebPushConfig(
        enabled=section.get_bool("enabled", True),
        vapid_private_key_path=section.get_path("vapid_private_key_path", None),
        vapid_contact=contact,
    )
    section.finish()
    return config
