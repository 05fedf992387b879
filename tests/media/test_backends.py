"""The media backends on real files and a real S3 server (moto, over HTTP).

The behaviour every backend promises runs against both; the S3 backend's own
concerns (its bucket, its bounded cache, an unreachable store) run against S3.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from botocore.exceptions import ClientError
from twisted.internet import defer

from homeserver.config.media import MediaConfig, S3StorageConfig, parse_media
from homeserver.config.reader import Section
from homeserver.media import keys
from homeserver.media.backends.base import MediaBackend
from homeserver.media.backends.errors import MediaBackendError
from homeserver.media.backends.factory import build_backend
from homeserver.media.backends.filesystem import FilesystemBackend
from homeserver.media.backends.s3 import S3Backend
from homeserver.media.threads import MediaThreads
from homeserver.reactor import installed_reactor
from tests.support.s3 import S3Server, media_storage_config, unique_bucket_name
from tests.support.server_process import free_port

KEY = keys.local_content("abcdefghijklmnopqrstuvwx")
OTHER_KEY = keys.remote_content("example.org", "zyxwvutsrqponmlkjihgfedc")
THUMBNAIL_KEY = keys.local_thumbnail("abcdefghijklmnopqrstuvwx", 32, 32, "image/png", "crop")
ESCAPING_KEYS = [
    "",
    ".",
    "..",
    "../outside",
    "local_content/../../outside",
    "local_content/ab/../../../outside",
    "/etc/passwd",
    "local_content//ab",
    "local_content/ab/",
    "./local_content/ab",
    "tmp/upload",
    "local_content/ab\0",
]


@pytest.fixture(scope="session")
def threads() -> MediaThreads:
    # One pool for the session, stopped with the reactor (MediaThreads registers
    # that); a pool per test would leave its idle threads behind.
    return MediaThreads(installed_reactor())


@attrs.frozen
class S3Bucket:
    server: S3Server
    name: str

    def client(self) -> Any:
        return self.server.client()

    def config(self, **overrides: Any) -> S3StorageConfig:
        return S3StorageConfig(
            bucket=self.name,
            endpoint_url=self.server.endpoint_url,
            region_name=self.server.region_name,
            access_key_id=self.server.access_key_id,
            secret_access_key=self.server.secret_access_key,
            **overrides,
        )

    def has_object(self, key: str) -> bool:
        try:
            self.client().head_object(Bucket=self.name, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey"):
                return False
            raise
        return True


@pytest.fixture
def bucket(s3_server: S3Server) -> S3Bucket:
    """A fresh, empty bucket on the session's S3 server."""
    name = unique_bucket_name()
    s3_server.create_bucket(name)
    return S3Bucket(s3_server, name)


@attrs.frozen
class Subject:
    """A backend under test and where it keeps its local files."""

    backend: MediaBackend
    #: The filesystem backend's root; the S3 backend's cache.
    local_root: Path
    bucket: S3Bucket | None = None


@pytest.fixture(params=["filesystem", "s3"])
def subject(request: pytest.FixtureRequest, tmp_path: Path, threads: MediaThreads) -> Subject:
    if request.param == "filesystem":
        root = tmp_path / "media"
        return Subject(FilesystemBackend(root, threads), root)
    bucket: S3Bucket = request.getfixturevalue("bucket")
    cache = tmp_path / "s3_cache"
    return Subject(S3Backend(bucket.config(), cache, 10 * 1024 * 1024, threads), cache, bucket)


def s3_backend(
    bucket: S3Bucket, cache: Path, threads: MediaThreads, max_size: int, **overrides: Any
) -> S3Backend:
    return S3Backend(bucket.config(**overrides), cache, max_size, threads)


def temp_file(backend: MediaBackend, data: bytes) -> Path:
    """A finished upload in ``backend``'s temporary directory, as the repository
    writes them."""
    path = backend.temp_dir() / f"upload-{os.urandom(8).hex()}"
    path.write_bytes(data)
    return path


async def store(backend: MediaBackend, key: str, data: bytes) -> None:
    await backend.store(key, temp_file(backend, data))


async def served(backend: MediaBackend, key: str) -> bytes | None:
    path = await backend.local_file(key)
    return None if path is None else path.read_bytes()


def set_age(path: Path, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def cached_files(cache: Path) -> dict[str, int]:
    """Relative path -> size of every cached file (not the temporary ones)."""
    return {
        str(path.relative_to(cache)): path.stat().st_size
        for path in cache.rglob("*")
        if path.is_file() and path.relative_to(cache).parts[0] != "tmp"
    }


# What every backend promises --------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_stored_bytes_are_served(subject: Subject) -> None:
    data = os.urandom(300_000)
    source = temp_file(subject.backend, data)
    await subject.backend.store(KEY, source)
    assert not source.exists()  # moved, not copied
    path = await subject.backend.local_file(KEY)
    assert path is not None
    assert path.read_bytes() == data
    assert subject.local_root in path.parents
    await store(subject.backend, THUMBNAIL_KEY, b"thumbnail")
    assert await served(subject.backend, THUMBNAIL_KEY) == b"thumbnail"
    assert await served(subject.backend, KEY) == data


@pytest_twisted.ensureDeferred
async def test_the_temp_dir_is_beside_the_files(subject: Subject) -> None:
    temp = subject.backend.temp_dir()
    assert temp.is_dir()
    assert subject.local_root in temp.parents
    assert os.stat(temp).st_dev == os.stat(subject.local_root).st_dev


@pytest_twisted.ensureDeferred
async def test_storing_again_replaces(subject: Subject) -> None:
    await store(subject.backend, KEY, b"first")
    await store(subject.backend, KEY, b"second")
    assert await served(subject.backend, KEY) == b"second"


@pytest_twisted.ensureDeferred
async def test_an_absent_key_has_no_file(subject: Subject) -> None:
    assert await subject.backend.local_file(KEY) is None
    await store(subject.backend, KEY, b"bytes")
    assert await subject.backend.local_file(OTHER_KEY) is None
    # A directory on the way to a key is not a file either.
    assert await subject.backend.local_file("local_content") is None


@pytest_twisted.ensureDeferred
async def test_delete_removes_the_bytes_and_empty_directories(subject: Subject) -> None:
    await store(subject.backend, KEY, b"doomed")
    await store(subject.backend, OTHER_KEY, b"survivor")
    await subject.backend.delete(KEY)
    assert await subject.backend.local_file(KEY) is None
    assert not (subject.local_root / KEY).exists()
    assert not (subject.local_root / "local_content").exists()
    assert subject.backend.temp_dir().is_dir()
    assert await served(subject.backend, OTHER_KEY) == b"survivor"
    # Deleting what is not there is fine.
    await subject.backend.delete(KEY)
    await subject.backend.delete(keys.local_content("neverstoredanything"))
    if subject.bucket is not None:
        assert not subject.bucket.has_object(KEY)
        assert subject.bucket.has_object(OTHER_KEY)


@pytest.mark.parametrize("key", ESCAPING_KEYS)
@pytest_twisted.ensureDeferred
async def test_a_key_that_leaves_the_root_is_refused(
    subject: Subject, tmp_path: Path, key: str
) -> None:
    source = temp_file(subject.backend, b"intruder")
    with pytest.raises(ValueError):
        await subject.backend.store(key, source)
    with pytest.raises(ValueError):
        await subject.backend.local_file(key)
    with pytest.raises(ValueError):
        await subject.backend.delete(key)
    assert source.read_bytes() == b"intruder"
    assert os.listdir(tmp_path) == [subject.local_root.name]
    if subject.bucket is not None:
        listing = subject.bucket.client().list_objects_v2(Bucket=subject.bucket.name)
        assert listing.get("KeyCount", 0) == 0


@pytest_twisted.ensureDeferred
async def test_concurrent_reads_get_the_right_bytes(subject: Subject) -> None:
    data = os.urandom(2 * 1024 * 1024)
    await store(subject.backend, KEY, data)
    if subject.bucket is not None:
        # A miss: downloaded once, however many ask at the same time.
        (subject.local_root / KEY).unlink()
    paths = await defer.gatherResults(
        [defer.ensureDeferred(subject.backend.local_file(KEY)) for _ in range(6)]
    )
    for path in paths:
        assert path is not None
        assert path.read_bytes() == data


# The S3 backend ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_s3_uploads_under_the_prefix_and_keeps_a_cached_copy(
    bucket: S3Bucket, tmp_path: Path, threads: MediaThreads
) -> None:
    backend = s3_backend(bucket, tmp_path / "cache", threads, 1024 * 1024, prefix="server-a/")
    await store(backend, KEY, b"fresh upload")
    assert bucket.has_object("server-a/" + KEY)
    assert not bucket.has_object(KEY)
    # Served from the cache without asking the store: it is there already.
    assert (tmp_path / "cache" / KEY).read_bytes() == b"fresh upload"
    # Another server sharing the bucket under another prefix sees none of it.
    other = s3_backend(bucket, tmp_path / "other", threads, 1024 * 1024, prefix="server-b/")
    assert await other.local_file(KEY) is None


@pytest_twisted.ensureDeferred
async def test_s3_a_large_upload_goes_in_parts(
    bucket: S3Bucket, tmp_path: Path, threads: MediaThreads
) -> None:
    backend = s3_backend(bucket, tmp_path / "cache", threads, 64 * 1024 * 1024)
    data = os.urandom(9 * 1024 * 1024)  # past boto3's 8 MiB multipart threshold
    await store(backend, KEY, data)
    head = bucket.client().head_object(Bucket=bucket.name, Key=KEY)
    assert head["ContentLength"] == len(data)
    assert "-" in head["ETag"]  # a multipart upload's ETag counts its parts
    (tmp_path / "cache" / KEY).unlink()
    assert await served(backend, KEY) == data


@pytest_twisted.ensureDeferred
async def test_s3_a_miss_downloads_the_object(
    bucket: S3Bucket, tmp_path: Path, threads: MediaThreads
) -> None:
    backend = s3_backend(bucket, tmp_path / "cache", threads, 1024 * 1024)
    data = os.urandom(100_000)
    await store(backend, KEY, data)
    (tmp_path / "cache" / KEY).unlink()
    assert await served(backend, KEY) == data
    assert (tmp_path / "cache" / KEY).read_bytes() == data
    # Objects written by someone else (a migration, another server) are served too.
    bucket.client().put_object(Bucket=bucket.name, Key=OTHER_KEY, Body=b"migrated")
    assert await served(backend, OTHER_KEY) == b"migrated"
    # No download leaves a temporary file behind.
    assert list(backend.temp_dir().iterdir()) == []


@pytest_twisted.ensureDeferred
async def test_s3_delete_removes_the_object_and_the_cached_copy(
    bucket: S3Bucket, tmp_path: Path, threads: MediaThreads
) -> None:
    backend = s3_backend(bucket, tmp_path / "cache", threads, 1024 * 1024)
    await store(backend, KEY, b"doomed")
    await backend.delete(KEY)
    assert not bucket.has_object(KEY)
    assert not (tmp_path / "cache" / KEY).exists()
    assert await backend.local_file(KEY) is None
    # A second server with its own cache of the same bucket: its copy is stale
    # until it deletes too, which it may do when the object is already gone.
    other = s3_backend(bucket, tmp_path / "other", threads, 1024 * 1024)
    await store(backend, KEY, b"again")
    assert await served(other, KEY) == b"again"
    await backend.delete(KEY)
    await other.delete(KEY)
    assert await other.local_file(KEY) is None


@pytest_twisted.ensureDeferred
async def test_s3_concurrent_misses_from_two_servers_sharing_a_cache(
    bucket: S3Bucket, tmp_path: Path, threads: MediaThreads
) -> None:
    data = os.urandom(3 * 1024 * 1024)
    bucket.client().put_object(Bucket=bucket.name, Key=KEY, Body=data)
    cache = tmp_path / "cache"
    first = s3_backend(bucket, cache, threads, 64 * 1024 * 1024)
    second = s3_backend(bucket, cache, threads, 64 * 1024 * 1024)
    calls = [
        defer.ensureDeferred(backend.local_file(KEY))
        for _ in range(4)
        for backend in (first, second)
    ]
    paths = await defer.gatherResults(calls)
    assert set(paths) == {cache / KEY}
    assert (cache / KEY).read_bytes() == data
    assert list(first.temp_dir().iterdir()) == []


@pytest_twisted.ensureDeferred
async def test_s3_cache_evicts_least_recently_used_files(
    bucket: S3Bucket, tmp_path: Path, threads: MediaThreads
) -> None:
    cache = tmp_path / "cache"
    backend = s3_backend(bucket, cache, threads, 10_000)
    names = [keys.local_content(f"media{index}xxxxxxxxxxxxxxxxxxx") for index in range(4)]
    contents = [bytes([index]) * 3_000 for index in range(4)]
    for name, content in zip(names[:3], contents[:3], strict=True):
        await store(backend, name, content)
    assert sum(cached_files(cache).values()) == 9_000
    # Oldest first: 0, 1, 2; then a hit makes 0 the most recently used.
    for age, name in zip((300, 200, 100), names[:3], strict=True):
        set_age(cache / name, age)
    assert await served(backend, names[0]) == contents[0]
    await store(backend, names[3], contents[3])
    # 12,000 bytes passed the bound; evicted down to 90% of it: only 1 had to go.
    assert set(cached_files(cache)) == {names[0], names[2], names[3]}
    # Evicted is not lost: it comes back from the store, and the bound holds.
    assert await served(backend, names[1]) == contents[1]
    assert sum(cached_files(cache).values()) <= 10_000
    assert set(cached_files(cache)) >= {names[1], names[3]}
    # The directories of evicted files do not pile up either.
    directories = [path for path in cache.rglob("*") if path.is_dir() and path != cache / "tmp"]
    assert all(any(path.iterdir()) for path in directories)


@pytest_twisted.ensureDeferred
async def test_s3_cache_counts_what_is_on_disk_at_start(
    bucket: S3Bucket, tmp_path: Path, threads: MediaThreads
) -> None:
    cache = tmp_path / "cache"
    for index in range(5):
        old = cache / keys.remote_content("example.org", f"old{index}xxxxxxxxxxxxxxxxxxxx")
        old.parent.mkdir(parents=True, exist_ok=True)
        old.write_bytes(b"o" * 4_000)
        set_age(old, 1_000 - index)
    (cache / "tmp").mkdir()
    (cache / "tmp" / "upload-in-progress").write_bytes(b"u" * 50_000)
    backend = s3_backend(bucket, cache, threads, 10_000)
    await store(backend, KEY, b"n" * 1_000)
    # 21,000 bytes of cached files: the oldest go until at most 9,000 are left.
    remaining = cached_files(cache)
    assert sum(remaining.values()) <= 9_000
    assert KEY in remaining
    assert set(remaining) - {KEY} == {
        keys.remote_content("example.org", f"old{index}xxxxxxxxxxxxxxxxxxxx") for index in (3, 4)
    }
    # Temporary files are not the cache's to evict.
    assert (cache / "tmp" / "upload-in-progress").exists()


@pytest_twisted.ensureDeferred
async def test_s3_a_file_larger_than_the_cache_is_still_served(
    bucket: S3Bucket, tmp_path: Path, threads: MediaThreads
) -> None:
    cache = tmp_path / "cache"
    backend = s3_backend(bucket, cache, threads, 1_000)
    await store(backend, OTHER_KEY, b"s" * 500)
    big = os.urandom(5_000)
    await store(backend, KEY, big)
    # Everything else goes; the new file stays, as its caller is about to open it.
    assert set(cached_files(cache)) == {KEY}
    assert await served(backend, KEY) == big
    # Until something else is added.
    assert await served(backend, OTHER_KEY) == b"s" * 500
    assert set(cached_files(cache)) == {OTHER_KEY}
    assert await served(backend, KEY) == big


@pytest_twisted.ensureDeferred
async def test_s3_a_missing_bucket_is_an_error_not_missing_media(
    s3_server: S3Server, tmp_path: Path, threads: MediaThreads
) -> None:
    bucket = S3Bucket(s3_server, unique_bucket_name())  # never created
    backend = s3_backend(bucket, tmp_path / "cache", threads, 1024 * 1024)
    with pytest.raises(MediaBackendError):
        await backend.local_file(KEY)
    source = temp_file(backend, b"kept")
    with pytest.raises(MediaBackendError):
        await backend.store(KEY, source)
    # A failed store leaves the upload to its caller.
    assert source.read_bytes() == b"kept"


@pytest_twisted.ensureDeferred
async def test_s3_an_unreachable_store_fails_quickly(tmp_path: Path, threads: MediaThreads) -> None:
    config = S3StorageConfig(
        bucket="media",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id="key",
        secret_access_key="secret",
    )
    backend = S3Backend(
        config, tmp_path / "cache", 1024 * 1024, threads, connect_timeout=1, read_timeout=1
    )
    started = time.monotonic()
    source = temp_file(backend, b"kept")
    with pytest.raises(MediaBackendError):
        await backend.store(KEY, source)
    assert source.exists()
    with pytest.raises(MediaBackendError):
        await backend.local_file(KEY)
    with pytest.raises(MediaBackendError):
        await backend.delete(KEY)
    # Retries and backoff included, nowhere near a hung request.
    assert time.monotonic() - started < 30


# Choosing a backend -----------------------------------------------------------------


def test_the_filesystem_is_the_default(tmp_path: Path, threads: MediaThreads) -> None:
    backend = build_backend(tmp_path / "media", MediaConfig(), threads)
    assert isinstance(backend, FilesystemBackend)
    assert backend.temp_dir() == tmp_path / "media" / "tmp"


@pytest_twisted.ensureDeferred
async def test_the_test_config_for_s3_builds_a_working_backend(
    bucket: S3Bucket, tmp_path: Path, threads: MediaThreads
) -> None:
    section = Section(
        {"media_storage": media_storage_config(bucket.server, bucket.name)},
        "",
        warnings=[],
        base_dir=tmp_path,
    )
    media = parse_media(section)
    assert media.s3 == bucket.config()
    backend = build_backend(tmp_path / "media", media, threads)
    assert isinstance(backend, S3Backend)
    assert backend.temp_dir() == tmp_path / "media" / "s3_cache" / "tmp"
    await store(backend, KEY, b"through the config")
    assert bucket.has_object(KEY)
    assert await served(backend, KEY) == b"through the config"
