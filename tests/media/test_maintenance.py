"""Keeping the media store in order, in-process on both engines with a real
filesystem backend and media threads, on a fake clock: expired ``/create``
reservations go, ``media_retention`` deletes media unused for longer than its
lifetime (recent use, once flushed, keeps it), and deleting media removes its
record, its bytes and its thumbnails' bytes.  Also the local media lifecycle these
jobs act on (uploads, reservations, quarantine) and thumbnails made on request.

spec: client-server-api/modules/content_repo.md
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, task

from homeserver.clock import Clock
from homeserver.config.media import MediaConfig, ThumbnailSize, UploadLimit
from homeserver.config.parse import parse_config
from homeserver.errors import Codes, MatrixError
from homeserver.media import assembly, keys
from homeserver.media.assembly import MediaServices
from homeserver.media.records import LocalMedia
from homeserver.media.spool import SpooledFile
from homeserver.media.threads import MediaThreads
from homeserver.reactor import installed_reactor
from homeserver.storage.database import Database
from homeserver.storage.media import MediaStore
from tests.media.harness import (
    ADMIN,
    ALICE,
    BOB,
    REMOTE,
    SERVER,
    START,
    Media,
    build_media,
    png,
    shared_threads,
    spooled_file,
    stored_files,
)

HOUR = 3_600_000
DAY = 24 * HOUR
RETENTION = MediaConfig(local_media_lifetime_ms=7 * DAY, remote_media_lifetime_ms=DAY)


@pytest.fixture(scope="module")
def threads() -> MediaThreads:
    return shared_threads()


@pytest.fixture
def media(db: Database, threads: MediaThreads, tmp_path: Path) -> Media:
    return build_media(db, threads, tmp_path / "media")


@pytest.fixture
def retained(db: Database, threads: MediaThreads, tmp_path: Path) -> Media:
    """Local media kept 7 days after its last use, remote media 1 day."""
    return build_media(db, threads, tmp_path / "media", RETENTION)


def spooled(media: Media, data: bytes) -> SpooledFile:
    return spooled_file(media.backend.temp_dir(), data)


async def matrix_error(work: Awaitable[object]) -> MatrixError:
    with pytest.raises(MatrixError) as raised:
        await work
    return raised.value


def local_key(media_id: str) -> str:
    return keys.local_content(media_id)


# -- expired reservations --------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_expire_reservations_removes_create_rows_past_their_expiry(
    db: Database, threads: MediaThreads, tmp_path: Path
) -> None:
    media = build_media(
        db, threads, tmp_path / "media", MediaConfig(unused_expiration_time_ms=HOUR)
    )
    early = await media.repository.create(ALICE)
    media.advance_ms(HOUR // 2)
    late = await media.repository.create(ALICE)
    uploaded = await media.upload(b"kept")
    assert early.unused_expires_at == late.unused_expires_at - HOUR // 2

    assert await media.maintenance.expire_reservations() == 0
    media.advance_ms(HOUR // 2)
    assert await media.maintenance.expire_reservations() == 1
    assert await media.store.get_local(early.media_id) is None
    assert await media.store.get_local(late.media_id) is not None
    media.advance_ms(HOUR // 2)
    assert await media.maintenance.expire_reservations() == 1
    assert await media.store.get_local(late.media_id) is None
    assert await media.store.get_local(uploaded) is not None
    assert await media.maintenance.expire_reservations() == 0


@pytest_twisted.ensureDeferred
async def test_an_expired_reservation_is_not_found_before_the_job_removes_it(
    db: Database, threads: MediaThreads, tmp_path: Path
) -> None:
    media = build_media(
        db, threads, tmp_path / "media", MediaConfig(unused_expiration_time_ms=HOUR)
    )
    created = await media.repository.create(ALICE)
    media.advance_ms(HOUR)
    download = await matrix_error(media.repository.get_media(created.media_id))
    assert (download.status, download.errcode) == (404, Codes.NOT_FOUND)
    upload = await matrix_error(
        defer.ensureDeferred(
            media.repository.upload_to(ALICE, created.media_id, spooled(media, b"x"), None, None)
        )
    )
    assert upload.status == 404


# -- retention ----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_apply_retention_deletes_media_unused_past_its_lifetime(retained: Media) -> None:
    media = retained
    local = await media.upload(b"local bytes")
    media.source.add(REMOTE, "remote-media", b"remote bytes")
    await media.remote.open(REMOTE, "remote-media")
    assert len(stored_files(media.root)) == 2

    media.advance_ms(DAY - 1)
    assert await media.maintenance.apply_retention() == 0
    media.advance_ms(2)
    assert await media.maintenance.apply_retention() == 1
    assert await media.store.get_remote(REMOTE, "remote-media") is None
    assert stored_files(media.root) == [local_key(local)]

    media.advance_ms(6 * DAY - 2)
    assert await media.maintenance.apply_retention() == 0
    media.advance_ms(2)
    assert await media.maintenance.apply_retention() == 1
    assert await media.store.get_local(local) is None
    assert stored_files(media.root) == []


@pytest_twisted.ensureDeferred
async def test_without_lifetimes_retention_keeps_everything(media: Media) -> None:
    local = await media.upload(b"local bytes")
    media.source.add(REMOTE, "remote-media", b"remote bytes")
    await media.remote.open(REMOTE, "remote-media")
    media.advance_ms(10_000 * DAY)
    assert await media.maintenance.apply_retention() == 0
    assert await media.store.get_local(local) is not None
    assert len(stored_files(media.root)) == 2


@pytest_twisted.ensureDeferred
async def test_retention_deletes_every_upload_past_its_lifetime(retained: Media) -> None:
    media = retained
    for index in range(7):
        await media.upload(f"upload {index}".encode())
    media.advance_ms(8 * DAY)
    assert await media.maintenance.apply_retention() == 7
    assert stored_files(media.root) == []
    assert await media.store.list_user_media(ALICE, offset=0, limit=10) == ([], 0)


@pytest_twisted.ensureDeferred
async def test_noted_and_flushed_access_protects_recently_used_media(retained: Media) -> None:
    media = retained
    used, unused = await media.upload(b"used"), await media.upload(b"unused")
    for media_id in ["remote-used", "remote-unused"]:
        media.source.add(REMOTE, media_id, media_id.encode())
        await media.remote.open(REMOTE, media_id)

    media.advance_ms(DAY // 2)
    media.maintenance.note_access(SERVER, used)
    media.maintenance.note_access(REMOTE, "remote-used")
    await media.maintenance.flush_access()
    accessed = await media.store.get_local(used)
    assert accessed is not None and accessed.last_access_ts == media.now_ms()

    media.advance_ms(DAY // 2 + 1)
    assert await media.maintenance.apply_retention() == 1
    assert await media.store.get_remote(REMOTE, "remote-unused") is None
    assert await media.store.get_remote(REMOTE, "remote-used") is not None

    media.advance_ms(6 * DAY)
    # The unused upload is 7 days old; the used one was used 6.5 days ago.
    assert await media.maintenance.apply_retention() == 2
    assert await media.store.get_local(unused) is None
    assert await media.store.get_local(used) is not None
    assert await media.store.get_remote(REMOTE, "remote-used") is None

    media.advance_ms(DAY // 2)
    assert await media.maintenance.apply_retention() == 1
    assert stored_files(media.root) == []


@pytest_twisted.ensureDeferred
async def test_flush_access_writes_each_access_once(retained: Media) -> None:
    media = retained
    media_id = await media.upload(b"bytes")
    media.advance_ms(1000)
    media.maintenance.note_access(SERVER, media_id)
    media.maintenance.note_access(SERVER, media_id)
    await media.maintenance.flush_access()
    first = media.now_ms()
    media.advance_ms(1000)
    await media.maintenance.flush_access()  # nothing new to write
    accessed = await media.store.get_local(media_id)
    assert accessed is not None and accessed.last_access_ts == first


@pytest_twisted.ensureDeferred
async def test_stopping_writes_the_access_times_noted_since_the_last_flush(
    retained: Media,
) -> None:
    media = retained
    media_id = await media.upload(b"bytes")
    media.advance_ms(1000)
    media.maintenance.note_access(SERVER, media_id)
    await media.maintenance.stop()
    accessed = await media.store.get_local(media_id)
    assert accessed is not None and accessed.last_access_ts == media.now_ms()


@pytest_twisted.ensureDeferred
async def test_retention_keeps_quarantined_local_media(retained: Media) -> None:
    media = retained
    evidence = await media.upload(b"evidence")
    await media.maintenance.quarantine(SERVER, evidence, ADMIN)
    media.advance_ms(30 * DAY)
    assert await media.maintenance.apply_retention() == 0
    assert await media.store.get_local(evidence) is not None


# -- deleting ----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_delete_removes_the_record_content_and_thumbnail_bytes(media: Media) -> None:
    picture = await media.upload(png(100, 80), "image/png")
    other = await media.upload(b"someone else's")
    await media.thumbnails.make_presets(await media.local_thumbnail_source(picture))
    thumbnails = await media.store.get_thumbnails(SERVER, picture)
    thumbnail_keys = media.thumbnails.thumbnail_keys(SERVER, picture, thumbnails)
    assert thumbnail_keys and all(key.startswith("local_thumbnails/") for key in thumbnail_keys)
    assert stored_files(media.root) == sorted(
        [local_key(picture), local_key(other), *thumbnail_keys]
    )

    await media.maintenance.delete(SERVER, picture)
    assert await media.store.get_local(picture) is None
    assert await media.store.get_thumbnails(SERVER, picture) == []
    assert stored_files(media.root) == [local_key(other)]
    error = await matrix_error(media.repository.open_local(picture))
    assert error.status == 404


@pytest_twisted.ensureDeferred
async def test_delete_removes_remote_media_and_its_thumbnails(media: Media) -> None:
    media.source.add(REMOTE, "remote-picture", png(64, 64), "image/png")
    source = await media.remote_thumbnail_source(REMOTE, "remote-picture")
    await media.thumbnails.make_presets(source)
    assert len(stored_files(media.root)) > 1
    await media.maintenance.delete(REMOTE, "remote-picture")
    assert await media.store.get_remote(REMOTE, "remote-picture") is None
    assert stored_files(media.root) == []


@pytest_twisted.ensureDeferred
async def test_deleting_unknown_media_is_not_found(media: Media) -> None:
    for origin in (SERVER, REMOTE):
        error = await matrix_error(media.maintenance.delete(origin, "nothing"))
        assert (error.status, error.errcode) == (404, Codes.NOT_FOUND)
    media_id = await media.upload(b"once")
    await media.maintenance.delete(SERVER, media_id)
    error = await matrix_error(media.maintenance.delete(SERVER, media_id))
    assert error.status == 404


# -- quarantine and admin reads ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_quarantined_local_media_is_not_served_until_released(media: Media) -> None:
    media_id = await media.upload(b"reported")
    await media.maintenance.quarantine(SERVER, media_id, ADMIN)
    error = await matrix_error(media.repository.open_local(media_id))
    assert (error.status, error.errcode) == (404, Codes.NOT_FOUND)
    # The admin still sees it, and who quarantined it.
    record = await media.maintenance.local_media(SERVER, media_id)
    assert record.quarantined_by == ADMIN

    await media.maintenance.quarantine(SERVER, media_id, None)
    assert (await media.repository.open_local(media_id)).path.read_bytes() == b"reported"


@pytest_twisted.ensureDeferred
async def test_quarantining_unknown_local_media_is_not_found(media: Media) -> None:
    error = await matrix_error(
        defer.ensureDeferred(media.maintenance.quarantine(SERVER, "nothing", ADMIN))
    )
    assert error.status == 404


@pytest_twisted.ensureDeferred
async def test_local_media_is_only_this_servers(media: Media) -> None:
    media_id = await media.upload(b"bytes")
    assert (await media.maintenance.local_media(SERVER, media_id)).media_id == media_id
    for server_name, wanted in [(REMOTE, media_id), (SERVER, "unknown")]:
        error = await matrix_error(
            defer.ensureDeferred(media.maintenance.local_media(server_name, wanted))
        )
        assert error.status == 404


@pytest_twisted.ensureDeferred
async def test_list_user_media_lists_a_users_uploads(media: Media) -> None:
    first = await media.upload(b"first")
    media.advance_ms(1)
    second = await media.upload(b"second")
    await media.upload(b"bob's", user=BOB)
    page, total = await media.maintenance.list_user_media(
        ALICE, offset=0, limit=10, newest_first=True
    )
    assert ([item.media_id for item in page], total) == ([second, first], 2)


# -- the local media the jobs act on ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_an_upload_is_stored_with_its_type_hash_and_dimensions(media: Media) -> None:
    data = png(30, 20)
    uri = await media.repository.upload(ALICE, spooled(media, data), "image/png", "pic.png")
    assert uri.startswith(f"mxc://{SERVER}/")
    media_id = uri.rsplit("/", 1)[1]
    record = await media.store.get_local(media_id)
    assert record is not None
    assert (record.user_id, record.content_type, record.upload_name) == (
        ALICE,
        "image/png",
        "pic.png",
    )
    assert (record.size, record.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert (record.width, record.height) == (30, 20)
    assert (record.created_ts, record.uploaded_ts) == (media.now_ms(), media.now_ms())
    file = await media.repository.open_local(media_id)
    assert file.path.read_bytes() == data
    # The spooled file was moved into place: nothing is left in the temporary folder.
    assert list(media.backend.temp_dir().iterdir()) == []


@pytest_twisted.ensureDeferred
async def test_an_upload_claiming_to_be_an_image_is_recorded_as_what_it_is(media: Media) -> None:
    media_id = await media.upload(b"<html><script>alert(1)</script></html>", "image/png")
    record = await media.store.get_local(media_id)
    assert record is not None
    assert (record.content_type, record.width, record.height) == (
        "application/octet-stream",
        None,
        None,
    )


@pytest_twisted.ensureDeferred
async def test_a_reservation_is_filled_once_by_its_creator(media: Media) -> None:
    created = await media.repository.create(ALICE)
    assert created.content_uri == f"mxc://{SERVER}/{created.media_id}"
    pending = await matrix_error(
        defer.ensureDeferred(media.repository.get_media(created.media_id, timeout_ms=0))
    )
    assert (pending.status, pending.errcode) == (504, Codes.NOT_YET_UPLOADED)

    forbidden = await matrix_error(
        defer.ensureDeferred(
            media.repository.upload_to(BOB, created.media_id, spooled(media, b"bob"), None, None)
        )
    )
    assert (forbidden.status, forbidden.errcode) == (403, Codes.FORBIDDEN)
    await media.repository.upload_to(
        ALICE, created.media_id, spooled(media, b"alice"), "text/plain", "a.txt"
    )
    again = await matrix_error(
        defer.ensureDeferred(
            media.repository.upload_to(ALICE, created.media_id, spooled(media, b"2"), None, None)
        )
    )
    assert (again.status, again.errcode) == (409, Codes.CANNOT_OVERWRITE_MEDIA)
    file = await media.repository.open_local(created.media_id)
    assert (file.path.read_bytes(), file.content_type, file.upload_name) == (
        b"alice",
        "text/plain",
        "a.txt",
    )


class PendingSeen(MediaStore):
    """A real store that says when a lookup has found a reservation still waiting for
    its upload: the download asking is then about to wait (the rest of its step
    runs before anything else can)."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.seen: defer.Deferred[None] = defer.Deferred()

    async def get_local(self, media_id: str) -> LocalMedia | None:
        record = await super().get_local(media_id)
        if record is not None and record.uploaded_ts is None and not self.seen.called:
            self.seen.callback(None)
        return record


@pytest_twisted.ensureDeferred
async def test_a_download_waiting_for_a_reservation_gets_the_upload(
    db: Database, threads: MediaThreads, tmp_path: Path
) -> None:
    store = PendingSeen(db)
    media = build_media(db, threads, tmp_path / "media", store=store)
    created = await media.repository.create(ALICE)
    waiting = defer.ensureDeferred(media.repository.open_local(created.media_id))
    await store.seen
    assert not waiting.called
    await media.repository.upload_to(ALICE, created.media_id, spooled(media, b"late"), None, None)
    file = await waiting
    assert file.path.read_bytes() == b"late"


@pytest_twisted.ensureDeferred
async def test_reservations_past_max_pending_are_refused(
    db: Database, threads: MediaThreads, tmp_path: Path
) -> None:
    media = build_media(db, threads, tmp_path / "media", MediaConfig(max_pending_media_uploads=2))
    await media.repository.create(ALICE)
    await media.repository.create(ALICE)
    error = await matrix_error(media.repository.create(ALICE))
    assert (error.status, error.errcode) == (429, Codes.LIMIT_EXCEEDED)
    await media.repository.create(BOB)


@pytest_twisted.ensureDeferred
async def test_the_upload_quota_counts_bytes_within_its_period(
    db: Database, threads: MediaThreads, tmp_path: Path
) -> None:
    config = MediaConfig(upload_limits=(UploadLimit(time_period_ms=HOUR, max_size=100),))
    media = build_media(db, threads, tmp_path / "media", config)
    await media.repository.check_upload_quota(ALICE, 100)
    await media.upload(b"x" * 60)
    await media.repository.check_upload_quota(ALICE, 40)
    error = await matrix_error(media.repository.check_upload_quota(ALICE, 41))
    assert (error.status, error.errcode) == (403, Codes.FORBIDDEN)
    assert "100 bytes per 3600 seconds" in error.message
    await media.repository.check_upload_quota(BOB, 100)
    media.advance_ms(HOUR)
    await media.repository.check_upload_quota(ALICE, 100)


# -- thumbnails on request -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_thumbnail_request_is_answered_by_the_best_preset(media: Media) -> None:
    picture = await media.upload(png(1000, 800), "image/png")
    source = await media.local_thumbnail_source(picture)
    thumbnail = await media.thumbnails.thumbnail(source, 300, 200, "scale", animated=False)
    # The 320x240 preset (scaled to keep 5:4) is the smallest at least as large.
    records = await media.store.get_thumbnails(SERVER, picture)
    assert [(r.width, r.height, r.method) for r in records] == [(300, 240, "scale")]
    assert thumbnail.path == media.root / keys.local_thumbnail(
        picture, 300, 240, "image/jpeg", "scale"
    )
    assert (thumbnail.content_type, thumbnail.size) == ("image/jpeg", records[0].size)
    # Asked again: served as made.
    again = await media.thumbnails.thumbnail(source, 300, 200, "scale", animated=False)
    assert again == thumbnail


@pytest_twisted.ensureDeferred
async def test_a_thumbnail_larger_than_the_image_is_the_image(media: Media) -> None:
    picture = await media.upload(png(20, 10), "image/png")
    source = await media.local_thumbnail_source(picture)
    assert await media.thumbnails.thumbnail(source, 32, 32, "crop", animated=False) == source.file
    assert await media.store.get_thumbnails(SERVER, picture) == []


@pytest_twisted.ensureDeferred
async def test_no_thumbnail_of_what_is_not_an_image(media: Media) -> None:
    text = await media.upload(b"just text", "text/plain")
    source = await media.local_thumbnail_source(text)
    error = await matrix_error(
        defer.ensureDeferred(media.thumbnails.thumbnail(source, 32, 32, "crop", animated=False))
    )
    assert error.status == 400


@pytest_twisted.ensureDeferred
async def test_dynamic_thumbnails_are_made_at_the_size_asked(
    db: Database, threads: MediaThreads, tmp_path: Path
) -> None:
    config = MediaConfig(dynamic_thumbnails=True, thumbnail_sizes=(ThumbnailSize(32, 32, "crop"),))
    media = build_media(db, threads, tmp_path / "media", config)
    picture = await media.upload(png(100, 80), "image/png")
    source = await media.local_thumbnail_source(picture)
    thumbnail = await media.thumbnails.thumbnail(source, 50, 50, "crop", animated=False)
    records = await media.store.get_thumbnails(SERVER, picture)
    assert [(r.width, r.height, r.method) for r in records] == [(50, 50, "crop")]
    assert thumbnail.size == records[0].size


@pytest_twisted.ensureDeferred
async def test_a_thumbnail_whose_file_was_lost_is_made_again(media: Media) -> None:
    picture = await media.upload(png(100, 80), "image/png")
    source = await media.local_thumbnail_source(picture)
    made = await media.thumbnails.thumbnail(source, 32, 32, "crop", animated=False)
    await media.backend.delete(keys.local_thumbnail(picture, 32, 32, "image/jpeg", "crop"))
    assert not made.path.exists()
    remade = await media.thumbnails.thumbnail(source, 32, 32, "crop", animated=False)
    assert remade.path.exists() and remade.size == remade.path.stat().st_size


# -- as the server assembles them ------------------------------------------------------------------


@pytest_twisted.async_yield_fixture
async def services(db: Database, tmp_path: Path) -> AsyncIterator[tuple[MediaServices, task.Clock]]:
    """The services :func:`homeserver.media.assembly.build_media` wires (with their
    own media threads, stopped afterwards), keeping local media 7 days."""
    clock = task.Clock()
    clock.advance(START)
    config, _ = parse_config(
        {
            "server_name": SERVER,
            "listeners": [{"port": 8008}],
            "media_store_path": str(tmp_path / "media"),
            "max_upload_size": "1M",
            "media_retention": {"local_media_lifetime": "7d"},
        },
        base_dir=tmp_path,
    )
    assert config.media.local_media_lifetime_ms == 7 * DAY
    built = assembly.build_media(
        config, reactor=installed_reactor(), clock=Clock(clock), database=db
    )
    yield built, clock
    await built.drain()
    built.threads.stop()


@pytest_twisted.ensureDeferred
async def test_an_uploaded_image_gets_its_preset_thumbnails_in_the_background(
    services: tuple[MediaServices, task.Clock],
) -> None:
    built, _ = services
    uri = await built.repository.upload(
        ALICE, spooled_file(built.backend.temp_dir(), png(100, 80)), "image/png", "p.png"
    )
    media_id = uri.rsplit("/", 1)[1]
    await built.drain()
    thumbnails = await built.store.get_thumbnails(SERVER, media_id)
    # 100x80: 32x32 and 80x80 crops, and one whole-image copy for the larger presets.
    assert sorted((t.width, t.height, t.method) for t in thumbnails) == [
        (32, 32, "crop"),
        (80, 80, "crop"),
        (100, 80, "scale"),
    ]
    for key in built.thumbnails.thumbnail_keys(SERVER, media_id, thumbnails):
        assert await built.backend.local_file(key) is not None


@pytest_twisted.ensureDeferred
async def test_media_served_is_kept_by_retention_and_media_not_served_is_not(
    services: tuple[MediaServices, task.Clock],
) -> None:
    built, clock = services
    served, unserved = [
        (
            await built.repository.upload(
                ALICE, spooled_file(built.backend.temp_dir(), data), None, None
            )
        ).rsplit("/", 1)[1]
        for data in (b"served", b"unserved")
    ]
    clock.advance(6 * DAY / 1000)
    file = await built.server.download(SERVER, served, timeout_ms=0)
    assert file.path.read_bytes() == b"served"
    await built.maintenance.flush_access()
    clock.advance(DAY / 1000 + 1)
    assert await built.maintenance.apply_retention() == 1
    assert await built.store.get_local(unserved) is None
    assert await built.store.get_local(served) is not None
