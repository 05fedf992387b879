"""The media repository's settings: Synapse's keys where it has them, and
``media_storage`` (our own) for where the bytes live.

spec: client-server-api/modules/content_repo.md
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

import attrs

from homeserver.config.reader import ConfigError, Section
from homeserver.ratelimit import RateLimitConfig

ThumbnailMethod = Literal["crop", "scale"]


@attrs.frozen
class ThumbnailSize:
    width: int
    height: int
    method: ThumbnailMethod


#: The sizes the spec says servers SHOULD produce (and Synapse's default).
DEFAULT_THUMBNAIL_SIZES = (
    ThumbnailSize(32, 32, "crop"),
    ThumbnailSize(96, 96, "crop"),
    ThumbnailSize(320, 240, "scale"),
    ThumbnailSize(640, 480, "scale"),
    ThumbnailSize(800, 600, "scale"),
)

#: Addresses a URL preview must never reach unless allowed: loopback, private,
#: link-local, carrier-grade NAT, multicast, reserved and documentation ranges (the
#: list Synapse's documentation recommends).  Used when the config names none.
DEFAULT_PREVIEW_IP_BLACKLIST = (
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "192.0.0.0/24",
    "169.254.0.0/16",
    "192.88.99.0/24",
    "198.18.0.0/15",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "0.0.0.0/8",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::1/128",
    "::/128",
    "fe80::/10",
    "fc00::/7",
    "2001:db8::/32",
    "ff00::/8",
    "fec0::/10",
    "64:ff9b::/96",
    "100::/64",
)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The URL parts ``url_preview_url_blacklist`` entries may match (urllib's names).
_URL_PARTS = frozenset(
    {"scheme", "netloc", "path", "params", "query", "fragment"}
    | {"username", "password", "hostname", "port"}
)


@attrs.frozen
class S3StorageConfig:
    """An S3-compatible bucket (AWS S3, Cloudflare R2, MinIO, Backblaze B2, ...)."""

    bucket: str
    #: None: AWS's own endpoint for ``region_name``.
    endpoint_url: str | None = None
    region_name: str | None = None
    #: None: boto3's usual credential chain (environment, instance role, ...).
    access_key_id: str | None = None
    secret_access_key: str | None = None
    #: Prepended to every object key, so one bucket can serve several servers.
    prefix: str = ""


@attrs.frozen
class UploadLimit:
    """Synapse's ``media_upload_limits`` entry: at most ``max_size`` bytes per user
    in any ``time_period_ms``."""

    time_period_ms: int
    max_size: int


@attrs.frozen
class UrlPreviewConfig:
    enabled: bool = False
    ip_range_blacklist: tuple[IpNetwork, ...] = tuple(
        ipaddress.ip_network(network) for network in DEFAULT_PREVIEW_IP_BLACKLIST
    )
    ip_range_whitelist: tuple[IpNetwork, ...] = ()
    #: Synapse's ``url_preview_url_blacklist``: each entry maps URL parts
    #: (``scheme``, ``netloc``, ``path``, ...) to glob patterns, or ``^regex``.
    url_blacklist: tuple[dict[str, str], ...] = ()
    max_spider_size: int = 10 * 1024 * 1024
    accept_language: tuple[str, ...] = ("en",)
    #: Our own: how long one fetch may take, and how long a preview is reused.
    timeout_ms: int = 10_000
    cache_lifetime_ms: int = 3_600_000


@attrs.frozen
class MediaConfig:
    """Everything about the content repository except ``media_store_path`` and
    ``max_upload_size``, which predate it (:class:`HomeServerConfig`)."""

    enabled: bool = True
    max_image_pixels: int = 32 * 1024 * 1024
    dynamic_thumbnails: bool = False
    thumbnail_sizes: tuple[ThumbnailSize, ...] = DEFAULT_THUMBNAIL_SIZES
    #: True (Synapse's default): the deprecated unauthenticated ``/_matrix/media``
    #: download, thumbnail, config and preview routes are not served.
    enable_authenticated_media: bool = True
    max_pending_media_uploads: int = 5
    #: How long a ``/create``d media ID waits for its upload.
    unused_expiration_time_ms: int = 24 * 3_600_000
    upload_limits: tuple[UploadLimit, ...] = ()
    #: ``media_retention``: None keeps media for ever.
    local_media_lifetime_ms: int | None = None
    remote_media_lifetime_ms: int | None = None
    #: ``media_storage.s3``: None keeps the bytes under ``media_store_path``.
    s3: S3StorageConfig | None = None
    #: With S3, ``media_store_path`` is a cache of recently served files of this size.
    cache_max_size: int = 1024 * 1024 * 1024
    url_preview: UrlPreviewConfig = UrlPreviewConfig()
    #: ``rc_media_create``: ``POST /create`` (Synapse's key and default).
    create_limit: RateLimitConfig = RateLimitConfig(per_second=10, burst_count=50)
    #: ``rc_media_upload`` (our own): uploads per user, whatever their size.
    upload_limit: RateLimitConfig = RateLimitConfig(per_second=1, burst_count=20)


def parse_media(root: Section) -> MediaConfig:
    defaults = MediaConfig()
    retention = root.section("media_retention")
    local_lifetime = retention.get_duration_ms("local_media_lifetime", None, positive=True)
    remote_lifetime = retention.get_duration_ms("remote_media_lifetime", None, positive=True)
    retention.finish()
    s3, cache_max_size = _parse_media_storage(root, defaults.cache_max_size)
    return MediaConfig(
        enabled=root.get_bool("enable_media_repo", True),
        max_image_pixels=root.get_size(
            "max_image_pixels", defaults.max_image_pixels, positive=True
        ),
        dynamic_thumbnails=root.get_bool("dynamic_thumbnails", False),
        thumbnail_sizes=root.attempt(lambda: _parse_thumbnail_sizes(root), DEFAULT_THUMBNAIL_SIZES),
        enable_authenticated_media=root.get_bool("enable_authenticated_media", True),
        max_pending_media_uploads=root.get_int("max_pending_media_uploads", 5, minimum=1),
        unused_expiration_time_ms=root.get_duration_ms(
            "unused_expiration_time", defaults.unused_expiration_time_ms, positive=True
        ),
        upload_limits=root.attempt(lambda: _parse_upload_limits(root), ()),
        local_media_lifetime_ms=local_lifetime,
        remote_media_lifetime_ms=remote_lifetime,
        s3=s3,
        cache_max_size=cache_max_size,
        url_preview=root.attempt(lambda: _parse_url_preview(root), UrlPreviewConfig()),
        create_limit=_rate_limit(root, "rc_media_create", defaults.create_limit),
        upload_limit=_rate_limit(root, "rc_media_upload", defaults.upload_limit),
    )


def _rate_limit(root: Section, key: str, default: RateLimitConfig) -> RateLimitConfig:
    section = root.section(key)
    config = RateLimitConfig(
        per_second=float(section.get_number("per_second", default.per_second, minimum=0)),
        burst_count=int(section.get_number("burst_count", default.burst_count, minimum=0)),
    )
    section.finish()
    return config


def _parse_thumbnail_sizes(root: Section) -> tuple[ThumbnailSize, ...]:
    raw = root.get_list("thumbnail_sizes", None)
    if raw is None:
        return DEFAULT_THUMBNAIL_SIZES
    sizes = []
    for index, item in enumerate(raw):
        section = root.item("thumbnail_sizes", index, item)
        sizes.append(
            ThumbnailSize(
                width=section.get_int("width", minimum=1, maximum=10_000),
                height=section.get_int("height", minimum=1, maximum=10_000),
                method=section.get_choice("method", ("crop", "scale"), "scale"),
            )
        )
        section.finish()
    return tuple(sizes)


def _parse_upload_limits(root: Section) -> tuple[UploadLimit, ...]:
    limits = []
    for index, item in enumerate(root.get_list("media_upload_limits", [])):
        section = root.item("media_upload_limits", index, item)
        limits.append(
            UploadLimit(
                time_period_ms=section.get_duration_ms("time_period", positive=True),
                max_size=section.get_size("max_size", positive=True),
            )
        )
        section.finish()
    return tuple(limits)


def _parse_media_storage(root: Section, default_cache: int) -> tuple[S3StorageConfig | None, int]:
    section = root.section("media_storage")
    backend = section.get_choice("backend", ("filesystem", "s3"), None)
    cache_max_size = section.get_size("cache_max_size", default_cache, positive=True)
    s3_section = section.section("s3")
    if backend is None:
        # Naming a bucket is choosing S3.
        backend = "s3" if s3_section.has("bucket") else "filesystem"
    s3 = None
    if backend == "s3" or s3_section.has("bucket"):
        s3 = S3StorageConfig(
            bucket=s3_section.get_str("bucket"),
            endpoint_url=s3_section.get_str("endpoint_url", None),
            region_name=s3_section.get_str("region_name", None),
            access_key_id=s3_section.get_str("access_key_id", None),
            secret_access_key=s3_section.get_str("secret_access_key", None),
            prefix=s3_section.get_str("prefix", ""),
        )
    s3_section.finish()
    section.finish()
    # backend: filesystem with an s3 section keeps the bucket's settings unused.
    return (s3 if backend == "s3" else None), cache_max_size


def _networks(root: Section, key: str, default: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    networks = []
    for value in root.get_str_list(key, list(default)):
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ConfigError(key, f"{value!r} is not an IP address or CIDR range") from None
    return tuple(networks)


def _parse_url_preview(root: Section) -> UrlPreviewConfig:
    defaults = UrlPreviewConfig()
    url_blacklist = []
    for index, item in enumerate(root.get_list("url_preview_url_blacklist", [])):
        if not isinstance(item, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in item.items()
        ):
            raise ConfigError(
                f"url_preview_url_blacklist[{index}]", "must map URL parts to patterns"
            )
        unknown = sorted(set(item) - _URL_PARTS)
        if unknown:
            raise ConfigError(
                f"url_preview_url_blacklist[{index}]",
                f"unknown URL parts {unknown} (known: {', '.join(sorted(_URL_PARTS))})",
            )
        for part, pattern in item.items():
            if pattern.startswith("^"):
                try:
                    re.compile(pattern)
                except re.error as error:
                    raise ConfigError(
                        f"url_preview_url_blacklist[{index}].{part}", f"bad regex: {error}"
                    ) from None
        url_blacklist.append(dict(item))
    preview = root.section("url_preview")
    config = UrlPreviewConfig(
        enabled=root.get_bool("url_preview_enabled", False),
        ip_range_blacklist=_networks(
            root, "url_preview_ip_range_blacklist", DEFAULT_PREVIEW_IP_BLACKLIST
        ),
        ip_range_whitelist=_networks(root, "url_preview_ip_range_whitelist", ()),
        url_blacklist=tuple(url_blacklist),
        max_spider_size=root.get_size("max_spider_size", defaults.max_spider_size, positive=True),
        accept_language=tuple(root.get_str_list("url_preview_accept_language", ["en"])),
        timeout_ms=preview.get_duration_ms("timeout", defaults.timeout_ms, positive=True),
        cache_lifetime_ms=preview.get_duration_ms(
            "cache_lifetime", defaults.cache_lifetime_ms, positive=True
        ),
    )
    preview.finish()
    return config
