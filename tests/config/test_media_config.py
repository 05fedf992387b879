"""The media repository's config keys, through the real parser: Synapse's keys and
defaults, our ``media_storage`` section, and a clear message naming the key for
each mistake.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import attrs
import pytest

from homeserver.config.media import (
    DEFAULT_PREVIEW_IP_BLACKLIST,
    DEFAULT_THUMBNAIL_SIZES,
    MediaConfig,
    S3StorageConfig,
    ThumbnailSize,
    UploadLimit,
    UrlPreviewConfig,
)
from homeserver.config.parse import parse_config
from homeserver.config.reader import ConfigError
from homeserver.ratelimit import RateLimitConfig

HOUR = 3_600_000
DAY = 24 * HOUR


def minimal(**extra: Any) -> dict[str, Any]:
    return {"server_name": "example.org", "listeners": [{"port": 8008}], **extra}


def media(**extra: Any) -> MediaConfig:
    config, warnings = parse_config(minimal(**extra), base_dir=Path("/srv"))
    assert warnings == []
    return config.media


def error_for(**extra: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_config(minimal(**extra), base_dir=Path("/srv"))
    return str(raised.value)


# -- defaults ------------------------------------------------------------------------------


def test_defaults_are_synapses() -> None:
    config = media()
    # Everything but the preview IP blacklist, which the parser fills in (below).
    assert attrs.evolve(config, url_preview=UrlPreviewConfig()) == MediaConfig()
    assert config.enabled
    assert config.max_image_pixels == 32 * 1024 * 1024
    assert not config.dynamic_thumbnails
    assert config.thumbnail_sizes == DEFAULT_THUMBNAIL_SIZES
    assert config.enable_authenticated_media
    assert config.max_pending_media_uploads == 5
    assert config.unused_expiration_time_ms == DAY
    assert config.upload_limits == ()
    assert (config.local_media_lifetime_ms, config.remote_media_lifetime_ms) == (None, None)
    assert config.s3 is None
    assert config.cache_max_size == 1024**3
    assert config.create_limit == RateLimitConfig(per_second=10, burst_count=50)
    assert config.upload_limit == RateLimitConfig(per_second=1, burst_count=20)


def test_default_thumbnail_sizes_are_the_five_the_spec_suggests() -> None:
    assert [(s.width, s.height, s.method) for s in media().thumbnail_sizes] == [
        (32, 32, "crop"),
        (96, 96, "crop"),
        (320, 240, "scale"),
        (640, 480, "scale"),
        (800, 600, "scale"),
    ]


def test_url_previews_are_off_by_default_and_block_private_ranges() -> None:
    preview = media().url_preview
    assert preview == UrlPreviewConfig(
        ip_range_blacklist=tuple(ipaddress.ip_network(n) for n in DEFAULT_PREVIEW_IP_BLACKLIST)
    )
    assert not preview.enabled
    blocked = {str(network) for network in preview.ip_range_blacklist}
    assert {"127.0.0.0/8", "10.0.0.0/8", "192.168.0.0/16", "::1/128", "fc00::/7"} <= blocked
    assert preview.ip_range_whitelist == ()


def test_simple_media_keys_are_read() -> None:
    config = media(
        enable_media_repo=False,
        max_image_pixels="16M",
        dynamic_thumbnails=True,
        max_pending_media_uploads=2,
        unused_expiration_time="1h",
    )
    assert not config.enabled
    assert config.max_image_pixels == 16 * 1024 * 1024
    assert config.dynamic_thumbnails
    assert config.max_pending_media_uploads == 2
    assert config.unused_expiration_time_ms == HOUR


def test_max_pending_media_uploads_must_be_at_least_one() -> None:
    assert error_for(max_pending_media_uploads=0).startswith("max_pending_media_uploads:")


def test_enable_authenticated_media_can_be_turned_off() -> None:
    assert not media(enable_authenticated_media=False).enable_authenticated_media
    assert media(enable_authenticated_media=True).enable_authenticated_media
    assert error_for(enable_authenticated_media="no") == (
        "enable_authenticated_media: expected true or false, got a string"
    )


# -- thumbnail_sizes -----------------------------------------------------------------------


def test_thumbnail_sizes_replace_the_defaults_and_default_to_scale() -> None:
    config = media(
        thumbnail_sizes=[
            {"width": 64, "height": 64, "method": "crop"},
            {"width": 1000, "height": 500},
        ]
    )
    assert config.thumbnail_sizes == (
        ThumbnailSize(64, 64, "crop"),
        ThumbnailSize(1000, 500, "scale"),
    )


def test_an_empty_thumbnail_sizes_list_means_no_presets() -> None:
    assert media(thumbnail_sizes=[]).thumbnail_sizes == ()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"width": 0, "height": 10}, "thumbnail_sizes[0].width: must be between 1 and 10000"),
        ({"width": 10, "height": 10001}, "thumbnail_sizes[0].height: must be between 1 and 10000"),
        ({"height": 10}, "thumbnail_sizes[0].width: is required"),
        (
            {"width": 10, "height": 10, "method": "fit"},
            "thumbnail_sizes[0].method: must be one of crop, scale, got 'fit'",
        ),
        (
            {"width": 10, "height": 10, "mehtod": "crop"},
            "thumbnail_sizes[0].mehtod: unknown key",
        ),
        ({"width": "big", "height": 10}, "thumbnail_sizes[0].width: expected an integer"),
    ],
)
def test_bad_thumbnail_sizes_name_the_entry_and_key(entry: dict[str, Any], message: str) -> None:
    assert error_for(thumbnail_sizes=[entry]).startswith(message)


def test_thumbnail_sizes_must_be_a_list() -> None:
    assert error_for(thumbnail_sizes={"width": 1}).startswith("thumbnail_sizes: expected a list")


# -- media_upload_limits -------------------------------------------------------------------


def test_media_upload_limits_take_durations_and_sizes() -> None:
    config = media(
        media_upload_limits=[
            {"time_period": "1h", "max_size": "100M"},
            {"time_period": 86_400_000, "max_size": 1_000_000_000},
        ]
    )
    assert config.upload_limits == (
        UploadLimit(time_period_ms=HOUR, max_size=100 * 1024 * 1024),
        UploadLimit(time_period_ms=DAY, max_size=1_000_000_000),
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"time_period": "1h"}, "media_upload_limits[0].max_size: is required"),
        ({"max_size": "1M"}, "media_upload_limits[0].time_period: is required"),
        (
            {"time_period": 0, "max_size": "1M"},
            "media_upload_limits[0].time_period: must be a positive duration",
        ),
        (
            {"time_period": "1h", "max_size": 0},
            "media_upload_limits[0].max_size: must be a positive size",
        ),
        (
            {"time_period": "soon", "max_size": "1M"},
            "media_upload_limits[0].time_period: expected a duration",
        ),
        (
            {"time_period": "1h", "max_size": "1M", "per_user": True},
            "media_upload_limits[0].per_user: unknown key",
        ),
    ],
)
def test_bad_media_upload_limits_name_the_entry_and_key(
    entry: dict[str, Any], message: str
) -> None:
    assert error_for(media_upload_limits=[entry]).startswith(message)


# -- media_retention -----------------------------------------------------------------------


def test_media_retention_lifetimes_are_durations() -> None:
    config = media(media_retention={"local_media_lifetime": "90d", "remote_media_lifetime": "14d"})
    assert (config.local_media_lifetime_ms, config.remote_media_lifetime_ms) == (
        90 * DAY,
        14 * DAY,
    )


def test_either_media_retention_lifetime_may_be_left_out() -> None:
    config = media(media_retention={"remote_media_lifetime": 60_000})
    assert (config.local_media_lifetime_ms, config.remote_media_lifetime_ms) == (None, 60_000)
    config = media(media_retention={"local_media_lifetime": None})
    assert config.local_media_lifetime_ms is None


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        ({"local_media_lifetime": 0}, "media_retention.local_media_lifetime: must be a positive"),
        ({"remote_media_lifetime": "ever"}, "media_retention.remote_media_lifetime: expected"),
        ({"local_lifetime": "1d"}, "media_retention.local_lifetime: unknown key"),
    ],
)
def test_bad_media_retention_names_the_key(retention: dict[str, Any], message: str) -> None:
    assert error_for(media_retention=retention).startswith(message)


# -- media_storage ---------------------------------------------------------------------------


def test_media_storage_s3_reads_the_bucket_section() -> None:
    config = media(
        media_storage={
            "backend": "s3",
            "cache_max_size": "2G",
            "s3": {
                "bucket": "media",
                "endpoint_url": "https://s3.example.net",
                "region_name": "eu-west-1",
                "access_key_id": "AKIA",
                "secret_access_key": "secret",
                "prefix": "hs1/",
            },
        }
    )
    assert config.s3 == S3StorageConfig(
        bucket="media",
        endpoint_url="https://s3.example.net",
        region_name="eu-west-1",
        access_key_id="AKIA",
        secret_access_key="secret",
        prefix="hs1/",
    )
    assert config.cache_max_size == 2 * 1024**3


def test_an_s3_bucket_alone_selects_s3_with_default_credentials() -> None:
    # homeserver/media/backends/factory.py: "an S3-compatible bucket when
    # media_storage names one"; the parser builds the S3 config when s3.bucket is set.
    config = media(media_storage={"s3": {"bucket": "media"}})
    assert config.s3 == S3StorageConfig(bucket="media")


def test_the_filesystem_backend_ignores_an_s3_section() -> None:
    config = media(
        media_storage={"backend": "filesystem", "s3": {"bucket": "media", "prefix": "x/"}}
    )
    assert config.s3 is None


def test_the_s3_backend_needs_a_bucket() -> None:
    assert error_for(media_storage={"backend": "s3"}) == "media_storage.s3.bucket: is required"


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        (
            {"backend": "ftp"},
            "media_storage.backend: must be one of filesystem, s3, got 'ftp'",
        ),
        (
            {"s3": {"bucket": "b", "buckit": "c"}},
            "media_storage.s3.buckit: unknown key (did you mean 'bucket'?)",
        ),
        ({"cache_max_size": 0}, "media_storage.cache_max_size: must be a positive size"),
        ({"s3": {"bucket": 5}}, "media_storage.s3.bucket: expected a string, got an integer"),
        ({"path": "/srv/media"}, "media_storage.path: unknown key"),
    ],
)
def test_bad_media_storage_names_the_key(storage: dict[str, Any], message: str) -> None:
    assert error_for(media_storage=storage).startswith(message)


def test_media_storage_must_be_a_mapping() -> None:
    assert error_for(media_storage="s3").startswith("media_storage: expected a mapping")


# -- url_preview_* -----------------------------------------------------------------------------


def test_url_preview_keys_are_read() -> None:
    preview = media(
        url_preview_enabled=True,
        url_preview_ip_range_blacklist=["10.0.0.0/8", "fd00::/8", "192.0.2.1"],
        url_preview_ip_range_whitelist=["10.1.2.0/24"],
        url_preview_url_blacklist=[{"netloc": "*.evil.example"}, {"scheme": "http"}],
        max_spider_size="2M",
        url_preview_accept_language=["de-DE", "en;q=0.5"],
        url_preview={"timeout": "5s", "cache_lifetime": "2h"},
    ).url_preview
    assert preview_networks(preview.ip_range_blacklist) == [
        "10.0.0.0/8",
        "fd00::/8",
        "192.0.2.1/32",
    ]
    assert preview_networks(preview.ip_range_whitelist) == ["10.1.2.0/24"]
    assert preview == UrlPreviewConfig(
        enabled=True,
        ip_range_blacklist=preview.ip_range_blacklist,
        ip_range_whitelist=preview.ip_range_whitelist,
        url_blacklist=({"netloc": "*.evil.example"}, {"scheme": "http"}),
        max_spider_size=2 * 1024 * 1024,
        accept_language=("de-DE", "en;q=0.5"),
        timeout_ms=5_000,
        cache_lifetime_ms=2 * HOUR,
    )


def preview_networks(
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
) -> list[str]:
    return [str(network) for network in networks]


def test_a_cidr_with_host_bits_is_taken_as_its_network() -> None:
    preview = media(url_preview_ip_range_blacklist=["10.1.2.3/8"]).url_preview
    assert preview_networks(preview.ip_range_blacklist) == ["10.0.0.0/8"]


@pytest.mark.parametrize(
    "key", ["url_preview_ip_range_blacklist", "url_preview_ip_range_whitelist"]
)
@pytest.mark.parametrize("bad", ["nope", "10.0.0.0/33", "300.1.1.1", "10.0.0.0/8/8", "::g/64"])
def test_a_bad_cidr_is_a_clear_error_naming_the_key(key: str, bad: str) -> None:
    message = error_for(**{key: ["10.0.0.0/8", bad]})
    assert message == f"{key}: {bad!r} is not an IP address or CIDR range"


def test_ip_ranges_must_be_lists_of_strings() -> None:
    assert error_for(url_preview_ip_range_blacklist="10.0.0.0/8").startswith(
        "url_preview_ip_range_blacklist: expected a list"
    )
    assert error_for(url_preview_ip_range_whitelist=[10]).startswith(
        "url_preview_ip_range_whitelist[0]: expected a string"
    )


@pytest.mark.parametrize("entry", ["*.example", {"netloc": 5}, {1: "x"}])
def test_url_blacklist_entries_must_map_url_parts_to_patterns(entry: Any) -> None:
    assert error_for(url_preview_url_blacklist=[{"scheme": "http"}, entry]) == (
        "url_preview_url_blacklist[1]: must map URL parts to patterns"
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"url_preview": {"timeout": 0}}, "url_preview.timeout: must be a positive duration"),
        ({"url_preview": {"lifetime": "1h"}}, "url_preview.lifetime: unknown key"),
        ({"max_spider_size": "huge"}, "max_spider_size: expected a size"),
        ({"url_preview_enabled": "yes"}, "url_preview_enabled: expected true or false"),
    ],
)
def test_bad_url_preview_settings_name_the_key(extra: dict[str, Any], message: str) -> None:
    assert error_for(**extra).startswith(message)


# -- rate limits ---------------------------------------------------------------------------------


def test_rc_media_create_and_rc_media_upload_are_read() -> None:
    config = media(
        rc_media_create={"per_second": 0.5, "burst_count": 3},
        rc_media_upload={"per_second": 2, "burst_count": 100},
    )
    assert config.create_limit == RateLimitConfig(per_second=0.5, burst_count=3)
    assert config.upload_limit == RateLimitConfig(per_second=2.0, burst_count=100)


def test_a_media_rate_limit_keeps_the_default_of_a_key_left_out() -> None:
    config = media(rc_media_create={"burst_count": 7}, rc_media_upload={"per_second": 0.25})
    assert config.create_limit == RateLimitConfig(per_second=10, burst_count=7)
    assert config.upload_limit == RateLimitConfig(per_second=0.25, burst_count=20)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"rc_media_create": {"per_second": -1}}, "rc_media_create.per_second: must be at least 0"),
        ({"rc_media_upload": {"burst": 5}}, "rc_media_upload.burst: unknown key"),
        (
            {"rc_media_upload": {"per_second": "fast"}},
            "rc_media_upload.per_second: expected a number",
        ),
        ({"rc_media_create": 5}, "rc_media_create: expected a mapping"),
    ],
)
def test_bad_media_rate_limits_name_the_key(extra: dict[str, Any], message: str) -> None:
    assert error_for(**extra).startswith(message)


# -- several problems -------------------------------------------------------------------------


def test_every_media_problem_is_reported_at_once() -> None:
    message = error_for(
        thumbnail_sizes=[{"width": 0, "height": 1}],
        media_upload_limits=[{"time_period": "1h"}],
        url_preview_ip_range_blacklist=["nope"],
        media_retention={"local_media_lifetime": 0},
        rc_media_create={"per_second": -1},
    )
    assert [line.split(":")[0] for line in message.splitlines()] == [
        "media_retention.local_media_lifetime",
        "thumbnail_sizes[0].width",
        "media_upload_limits[0].max_size",
        "url_preview_ip_range_blacklist",
        "rc_media_create.per_second",
    ]
