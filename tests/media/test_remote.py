"""Remote media: fetched once through the source (however many ask at once), then
served from the cache; quarantine hides it; purging the cache removes rows and
files; without federation every fetch is a clear 502.

In-process on both engines, with a real filesystem backend and media threads.
The source is :class:`tests.media.harness.DictSource`, standing in at the
federation boundary (the federation media client is not built yet).

spec: client-server-api/modules/content_repo.md, server-server-api.md#content-repository
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.python.failure import Failure

from homeserver.clock import Clock
from homeserver.errors import Codes, MatrixError
from homeserver.media import keys
from homeserver.media.records import RemoteMedia
from homeserver.media.remote import NoFederation, RemoteMediaCache
from homeserver.media.repository import MediaFile
from homeserver.media.threads import MediaThreads
from homeserver.storage.database import Database
from homeserver.storage.media import MediaStore
from tests.media.harness import (
    ADMIN,
    REMOTE,
    Media,
    build_media,
    png,
    shared_threads,
    stored_files,
)

OTHER = "other.example"
DAY = 24 * 3_600_000
CONTENT = b"remote bytes " * 100


class LookupBarrier(MediaStore):
    """A real store whose first ``count`` remote-media lookups all answer together,
    once the last of them has been answered by the database: the callers are then
    truly concurrent, each having found nothing cached, with no sleeping."""

    def __init__(self, database: Database, count: int) -> None:
        super().__init__(database)
        self._count = count
        self._held: list[defer.Deferred[None]] = []

    async def get_remote(self, origin: str, media_id: str) -> RemoteMedia | None:
        answer = await super().get_remote(origin, media_id)
        if self._count > 0:
            self._count -= 1
            if self._count:
                held: defer.Deferred[None] = defer.Deferred()
                self._held.append(held)
                await held
            else:
                held_back, self._held = self._held, []
                for waiting in held_back:
                    waiting.callback(None)
        return answer


@pytest.fixture(scope="module")
def threads() -> MediaThreads:
    return shared_threads()


@pytest.fixture
def media(db: Database, threads: MediaThreads, tmp_path: Path) -> Media:
    return build_media(db, threads, tmp_path / "media")


def content_path(media: Media, origin: str, media_id: str) -> Path:
    return media.root / keys.remote_content(origin, media_id)


def assert_serves(file: MediaFile, data: bytes) -> None:
    assert file.path.read_bytes() == data
    assert file.size == len(data)
    assert file.sha256 == hashlib.sha256(data).hexdigest()


async def matrix_error(work: Awaitable[object]) -> MatrixError:
    with pytest.raises(MatrixError) as raised:
        await work
    return raised.value


# -- fetching once ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_the_first_open_fetches_and_the_second_is_served_from_the_cache(
    media: Media,
) -> None:
    media.source.add(REMOTE, "abcdef", CONTENT, "text/plain", "notes.txt")
    first = await media.remote.open(REMOTE, "abcdef")
    assert media.source.fetches[(REMOTE, "abcdef")] == 1
    assert_serves(first, CONTENT)
    assert (first.content_type, first.upload_name) == ("text/plain", "notes.txt")
    assert first.path == content_path(media, REMOTE, "abcdef")

    second = await media.remote.open(REMOTE, "abcdef")
    assert media.source.fetches[(REMOTE, "abcdef")] == 1
    assert second == first


@pytest_twisted.ensureDeferred
async def test_a_fetch_is_recorded_with_what_the_bytes_are_and_when(media: Media) -> None:
    media.source.add(REMOTE, "webpage", b"<html><body>hi</body></html>", "image/png", "x.png")
    media.source.add(REMOTE, "image", png(), None, None)
    media.advance_ms(1234)
    page = await media.remote.get_media(REMOTE, "webpage")
    image = await media.remote.get_media(REMOTE, "image")
    assert page == RemoteMedia(
        origin=REMOTE,
        media_id="webpage",
        content_type="application/octet-stream",
        upload_name="x.png",
        size=28,
        sha256=hashlib.sha256(b"<html><body>hi</body></html>").hexdigest(),
        width=None,
        height=None,
        created_ts=media.now_ms(),
        last_access_ts=media.now_ms(),
        quarantined_by=None,
    )
    assert (image.content_type, image.upload_name) == ("image/png", None)
    assert await media.store.get_remote(REMOTE, "image") == image


@pytest_twisted.ensureDeferred
async def test_the_same_media_id_on_two_servers_is_two_files(media: Media) -> None:
    media.source.add(REMOTE, "same-id", b"from remote")
    media.source.add(OTHER, "same-id", b"from other")
    assert_serves(await media.remote.open(REMOTE, "same-id"), b"from remote")
    assert_serves(await media.remote.open(OTHER, "same-id"), b"from other")
    assert_serves(await media.remote.open(REMOTE, "same-id"), b"from remote")
    assert sum(media.source.fetches.values()) == 2


@pytest_twisted.ensureDeferred
async def test_concurrent_opens_of_uncached_media_fetch_it_once(
    db: Database, threads: MediaThreads, tmp_path: Path
) -> None:
    media = build_media(db, threads, tmp_path / "media", store=LookupBarrier(db, count=5))
    media.source.add(REMOTE, "popular", CONTENT, "text/plain")
    opened = await defer.gatherResults(
        [defer.ensureDeferred(media.remote.open(REMOTE, "popular")) for _ in range(5)]
    )
    assert media.source.fetches[(REMOTE, "popular")] == 1
    for file in opened:
        assert_serves(file, CONTENT)
    assert stored_files(media.root) == [keys.remote_content(REMOTE, "popular")]


@pytest_twisted.ensureDeferred
async def test_concurrent_opens_share_one_failed_fetch_and_nothing_is_cached(
    db: Database, threads: MediaThreads, tmp_path: Path
) -> None:
    media = build_media(db, threads, tmp_path / "media", store=LookupBarrier(db, count=3))
    results = await defer.DeferredList(
        [defer.ensureDeferred(media.remote.open(REMOTE, "missing")) for _ in range(3)],
        consumeErrors=True,
    )
    assert media.source.fetches[(REMOTE, "missing")] == 1
    for succeeded, failure in results:
        assert not succeeded and isinstance(failure, Failure)
        assert isinstance(failure.value, MatrixError) and failure.value.status == 404
    assert await media.store.get_remote(REMOTE, "missing") is None


@pytest_twisted.ensureDeferred
async def test_a_failed_fetch_is_tried_again_on_the_next_open(media: Media) -> None:
    error = await matrix_error(media.remote.open(REMOTE, "later"))
    assert (error.status, error.errcode) == (404, Codes.NOT_FOUND)
    media.source.add(REMOTE, "later", CONTENT)
    assert_serves(await media.remote.open(REMOTE, "later"), CONTENT)
    assert media.source.fetches[(REMOTE, "later")] == 2


@pytest_twisted.ensureDeferred
async def test_remote_media_over_the_size_limit_is_refused_and_not_cached(
    db: Database, threads: MediaThreads, tmp_path: Path
) -> None:
    media = build_media(db, threads, tmp_path / "media", max_size=len(CONTENT) - 1)
    media.source.add(REMOTE, "too-big", CONTENT)
    error = await matrix_error(media.remote.open(REMOTE, "too-big"))
    assert (error.status, error.errcode) == (502, Codes.TOO_LARGE)
    assert await media.store.get_remote(REMOTE, "too-big") is None
    assert stored_files(media.root) == []


@pytest_twisted.ensureDeferred
async def test_media_whose_file_was_removed_by_hand_is_fetched_again(media: Media) -> None:
    media.source.add(REMOTE, "evicted", CONTENT)
    await media.remote.open(REMOTE, "evicted")
    await media.backend.delete(keys.remote_content(REMOTE, "evicted"))
    assert_serves(await media.remote.open(REMOTE, "evicted"), CONTENT)
    assert media.source.fetches[(REMOTE, "evicted")] == 2


@pytest.mark.parametrize(
    "media_id",
    [
        "a",
        "ab",
        "abc",
        "abcd",
        "abcde",
        "x" * 255,
    ],
)
@pytest_twisted.ensureDeferred
async def test_remote_media_ids_of_any_valid_length_are_cached(media: Media, media_id: str) -> None:
    # Another server chooses its media IDs: any of 1 to 255 of A-Za-z0-9_- is valid.
    media.source.add(REMOTE, media_id, CONTENT)
    assert_serves(await media.remote.open(REMOTE, media_id), CONTENT)
    assert_serves(await media.remote.open(REMOTE, media_id), CONTENT)
    assert media.source.fetches[(REMOTE, media_id)] == 1


# -- quarantine ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_quarantined_remote_media_is_not_found_and_not_fetched_again(
    media: Media,
) -> None:
    media.source.add(REMOTE, "bad-media", CONTENT)
    await media.remote.open(REMOTE, "bad-media")
    await media.maintenance.quarantine(REMOTE, "bad-media", ADMIN)
    error = await matrix_error(media.remote.open(REMOTE, "bad-media"))
    assert (error.status, error.errcode) == (404, Codes.NOT_FOUND)
    assert media.source.fetches[(REMOTE, "bad-media")] == 1

    await media.maintenance.quarantine(REMOTE, "bad-media", None)
    assert_serves(await media.remote.open(REMOTE, "bad-media"), CONTENT)
    assert media.source.fetches[(REMOTE, "bad-media")] == 1


@pytest_twisted.ensureDeferred
async def test_quarantining_uncached_remote_media_is_not_found(media: Media) -> None:
    with pytest.raises(MatrixError) as raised:
        await media.maintenance.quarantine(REMOTE, "never-fetched", ADMIN)
    assert raised.value.status == 404


# -- purging the cache ----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_purge_remote_cache_deletes_the_rows_and_files_of_media_unused_since(
    media: Media,
) -> None:
    for media_id in ["old-media", "older", "recent", "quarantined"]:
        media.source.add(REMOTE, media_id, media_id.encode() * 10)
    await media.remote.open(REMOTE, "older")
    media.advance_ms(1000)
    await media.remote.open(REMOTE, "old-media")
    await media.remote.open(REMOTE, "quarantined")
    await media.maintenance.quarantine(REMOTE, "quarantined", ADMIN)
    media.advance_ms(1000)
    cutoff = media.now_ms()
    await media.remote.open(REMOTE, "recent")

    assert await media.maintenance.purge_remote_cache(cutoff) == 2
    assert await media.store.get_remote(REMOTE, "old-media") is None
    assert await media.store.get_remote(REMOTE, "older") is None
    assert not content_path(media, REMOTE, "old-media").exists()
    assert not content_path(media, REMOTE, "older").exists()
    # The quarantine outlives the cache: its record stays.
    assert await media.store.get_remote(REMOTE, "quarantined") is not None
    assert stored_files(media.root) == [
        keys.remote_content(REMOTE, "quarantined"),
        keys.remote_content(REMOTE, "recent"),
    ]
    assert await media.maintenance.purge_remote_cache(cutoff) == 0


@pytest_twisted.ensureDeferred
async def test_purged_remote_media_is_fetched_again_when_asked_for(media: Media) -> None:
    media.source.add(REMOTE, "again", CONTENT)
    await media.remote.open(REMOTE, "again")
    media.advance_ms(10)
    assert await media.maintenance.purge_remote_cache(media.now_ms()) == 1
    assert_serves(await media.remote.open(REMOTE, "again"), CONTENT)
    assert media.source.fetches[(REMOTE, "again")] == 2


@pytest_twisted.ensureDeferred
async def test_purge_remote_cache_goes_by_the_last_access_noted(media: Media) -> None:
    media.source.add(REMOTE, "used-media", CONTENT)
    media.source.add(REMOTE, "unused", CONTENT)
    await media.remote.open(REMOTE, "used-media")
    await media.remote.open(REMOTE, "unused")
    media.advance_ms(DAY)
    media.maintenance.note_access(REMOTE, "used-media")
    await media.maintenance.flush_access()
    media.advance_ms(1)
    assert await media.maintenance.purge_remote_cache(media.now_ms() - 1) == 1
    assert await media.store.get_remote(REMOTE, "used-media") is not None
    assert await media.store.get_remote(REMOTE, "unused") is None


@pytest_twisted.ensureDeferred
async def test_purging_remote_media_deletes_its_thumbnails_too(media: Media) -> None:
    media.source.add(REMOTE, "picture", png(100, 80), "image/png")
    source = await media.remote_thumbnail_source(REMOTE, "picture")
    await media.thumbnails.make_presets(source)
    thumbnails = await media.store.get_thumbnails(REMOTE, "picture")
    assert thumbnails
    thumbnail_keys = media.thumbnails.thumbnail_keys(REMOTE, "picture", thumbnails)
    assert all(key.startswith(f"remote_thumbnail/{REMOTE}/") for key in thumbnail_keys)
    assert stored_files(media.root) == sorted(
        [keys.remote_content(REMOTE, "picture"), *thumbnail_keys]
    )

    media.advance_ms(1)
    assert await media.maintenance.purge_remote_cache(media.now_ms()) == 1
    assert await media.store.get_thumbnails(REMOTE, "picture") == []
    assert stored_files(media.root) == []


@pytest_twisted.ensureDeferred
async def test_a_thumbnail_of_remote_media_is_made_from_the_cached_file(media: Media) -> None:
    media.source.add(REMOTE, "picture", png(100, 80), "image/png")
    source = await media.remote_thumbnail_source(REMOTE, "picture")
    thumbnail = await media.thumbnails.thumbnail(source, 32, 32, "crop", animated=False)
    assert thumbnail.content_type == "image/jpeg"
    assert thumbnail.path.relative_to(media.root).parts[:2] == ("remote_thumbnail", REMOTE)
    assert thumbnail.size == thumbnail.path.stat().st_size
    assert media.source.fetches[(REMOTE, "picture")] == 1


@pytest_twisted.ensureDeferred
async def test_refetching_evicted_media_leaves_no_thumbnail_files_behind(media: Media) -> None:
    media.source.add(REMOTE, "picture", png(100, 80), "image/png")
    await media.thumbnails.make_presets(await media.remote_thumbnail_source(REMOTE, "picture"))
    await media.backend.delete(keys.remote_content(REMOTE, "picture"))
    await media.remote.open(REMOTE, "picture")
    await media.maintenance.delete(REMOTE, "picture")
    assert stored_files(media.root) == []


# -- without federation -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_without_federation_remote_media_is_a_502_saying_so(media: Media) -> None:
    cache = RemoteMediaCache(
        clock=Clock(media.clock),
        store=media.store,
        backend=media.backend,
        source=NoFederation(),
        max_size=1024,
    )
    error = await matrix_error(cache.open(REMOTE, "abcdef"))
    assert (error.status, error.errcode) == (502, Codes.UNKNOWN)
    assert REMOTE in error.message
    assert "does not federate" in error.message
    assert await media.store.get_remote(REMOTE, "abcdef") is None
    assert stored_files(media.root) == []


@pytest_twisted.ensureDeferred
async def test_without_federation_media_cached_earlier_is_still_served(media: Media) -> None:
    media.source.add(REMOTE, "cached", CONTENT)
    await media.remote.open(REMOTE, "cached")
    cache = RemoteMediaCache(
        clock=Clock(media.clock),
        store=media.store,
        backend=media.backend,
        source=NoFederation(),
        max_size=1024,
    )
    assert_serves(await cache.open(REMOTE, "cached"), CONTENT)
