"""Media metadata on both engines: ``/create`` reservations (their cap, expiry and
first-come completion), uploads, a user's listing and quota, quarantine, deletion
with thumbnails, the remote media cache, and the queries retention runs on.

spec: client-server-api/modules/content_repo.md
"""

from __future__ import annotations

import attrs
import pytest_twisted
from twisted.internet import defer

from homeserver.media.records import LocalMedia, RemoteMedia, ThumbnailRecord, UploadedFile
from homeserver.storage.database import Database
from homeserver.storage.media import MediaStore

SERVER = "example.org"
REMOTE = "remote.example"
ALICE = "@alice:example.org"
BOB = "@bob:example.org"
ADMIN = "@admin:example.org"
NOW = 1_700_000_000_000
HOUR = 3_600_000

UPLOAD = UploadedFile(
    content_type="image/png",
    upload_name="cat.png",
    size=1234,
    sha256="a" * 64,
    width=64,
    height=48,
)
OTHER_UPLOAD = UploadedFile(
    content_type="text/plain", upload_name=None, size=7, sha256="b" * 64, width=None, height=None
)

SMALL = ThumbnailRecord(32, 32, "crop", "image/jpeg", 500, False)
LARGE = ThumbnailRecord(320, 240, "scale", "image/jpeg", 9000, False)
ANIMATED = ThumbnailRecord(320, 240, "scale", "image/webp", 20000, True)


def upload(size: int, sha: str = "c") -> UploadedFile:
    return UploadedFile(
        content_type="application/octet-stream", upload_name=None, size=size, sha256=sha * 64
    )


def remote(media_id: str, last_access_ts: int, origin: str = REMOTE) -> RemoteMedia:
    return RemoteMedia(
        origin=origin,
        media_id=media_id,
        content_type="image/png",
        upload_name="remote.png",
        size=4096,
        sha256="d" * 64,
        width=10,
        height=20,
        created_ts=last_access_ts,
        last_access_ts=last_access_ts,
        quarantined_by=None,
    )


# -- /create reservations -------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_create_pending_refuses_past_max_pending_and_stores_nothing(db: Database) -> None:
    store = MediaStore(db)
    assert await store.create_pending("first", ALICE, NOW, NOW + HOUR, max_pending=2)
    assert await store.create_pending("second", ALICE, NOW, NOW + HOUR, max_pending=2)
    assert not await store.create_pending("third", ALICE, NOW, NOW + HOUR, max_pending=2)
    assert await store.get_local("third") is None
    # The cap is per user.
    assert await store.create_pending("bobs", BOB, NOW, NOW + HOUR, max_pending=2)


@pytest_twisted.ensureDeferred
async def test_create_pending_records_a_reservation_without_bytes(db: Database) -> None:
    store = MediaStore(db)
    assert await store.create_pending("reserved", ALICE, NOW, NOW + HOUR, max_pending=5)
    assert await store.get_local("reserved") == LocalMedia(
        media_id="reserved",
        user_id=ALICE,
        created_ts=NOW,
        uploaded_ts=None,
        expires_ts=NOW + HOUR,
        content_type=None,
        upload_name=None,
        size=None,
        sha256=None,
        width=None,
        height=None,
        quarantined_by=None,
        url_cache=None,
    )


@pytest_twisted.ensureDeferred
async def test_expired_and_completed_reservations_do_not_count_towards_max_pending(
    db: Database,
) -> None:
    store = MediaStore(db)
    assert await store.create_pending("expiring", ALICE, NOW, NOW + 10, max_pending=2)
    assert await store.create_pending("completed", ALICE, NOW, NOW + HOUR, max_pending=2)
    assert not await store.create_pending("refused", ALICE, NOW + 9, NOW + HOUR, max_pending=2)
    # At its expiry time a reservation no longer counts.
    assert await store.create_pending("after-expiry", ALICE, NOW + 10, NOW + HOUR, max_pending=2)
    assert not await store.create_pending("full-again", ALICE, NOW + 10, NOW + HOUR, 2)
    assert await store.complete_pending("completed", ALICE, NOW + 11, UPLOAD)
    assert await store.create_pending("after-upload", ALICE, NOW + 12, NOW + HOUR, max_pending=2)


@pytest_twisted.ensureDeferred
async def test_complete_pending_fills_in_the_reservation(db: Database) -> None:
    store = MediaStore(db)
    await store.create_pending("reserved", ALICE, NOW, NOW + HOUR, max_pending=5)
    assert await store.complete_pending("reserved", ALICE, NOW + 5, UPLOAD)
    assert await store.get_local("reserved") == LocalMedia(
        media_id="reserved",
        user_id=ALICE,
        created_ts=NOW,
        uploaded_ts=NOW + 5,
        expires_ts=None,
        content_type="image/png",
        upload_name="cat.png",
        size=1234,
        sha256="a" * 64,
        width=64,
        height=48,
        quarantined_by=None,
        url_cache=None,
    )


@pytest_twisted.ensureDeferred
async def test_only_the_creator_can_complete_a_reservation(db: Database) -> None:
    store = MediaStore(db)
    await store.create_pending("reserved", ALICE, NOW, NOW + HOUR, max_pending=5)
    assert not await store.complete_pending("reserved", BOB, NOW + 1, UPLOAD)
    media = await store.get_local("reserved")
    assert media is not None
    assert (media.uploaded_ts, media.size, media.user_id) == (None, None, ALICE)


@pytest_twisted.ensureDeferred
async def test_a_reservation_is_completed_only_once(db: Database) -> None:
    store = MediaStore(db)
    await store.create_pending("reserved", ALICE, NOW, NOW + HOUR, max_pending=5)
    assert await store.complete_pending("reserved", ALICE, NOW + 1, UPLOAD)
    assert not await store.complete_pending("reserved", ALICE, NOW + 2, OTHER_UPLOAD)
    media = await store.get_local("reserved")
    assert media is not None
    assert (media.uploaded_ts, media.sha256, media.content_type) == (NOW + 1, "a" * 64, "image/png")


@pytest_twisted.ensureDeferred
async def test_an_expired_reservation_cannot_be_completed(db: Database) -> None:
    store = MediaStore(db)
    await store.create_pending("in-time", ALICE, NOW, NOW + HOUR, max_pending=5)
    await store.create_pending("at-expiry", ALICE, NOW, NOW + HOUR, max_pending=5)
    await store.create_pending("late", ALICE, NOW, NOW + HOUR, max_pending=5)
    assert await store.complete_pending("in-time", ALICE, NOW + HOUR - 1, UPLOAD)
    assert not await store.complete_pending("at-expiry", ALICE, NOW + HOUR, UPLOAD)
    assert not await store.complete_pending("late", ALICE, NOW + HOUR + 1, UPLOAD)
    late = await store.get_local("late")
    assert late is not None and late.uploaded_ts is None


@pytest_twisted.ensureDeferred
async def test_unknown_or_directly_uploaded_media_cannot_be_completed(db: Database) -> None:
    store = MediaStore(db)
    await store.store_uploaded("direct", ALICE, NOW, UPLOAD)
    assert not await store.complete_pending("direct", ALICE, NOW + 1, OTHER_UPLOAD)
    assert not await store.complete_pending("unknown", ALICE, NOW + 1, OTHER_UPLOAD)
    direct = await store.get_local("direct")
    assert direct is not None and direct.sha256 == UPLOAD.sha256
    assert await store.get_local("unknown") is None


@pytest_twisted.ensureDeferred
async def test_concurrent_completions_of_one_reservation_have_exactly_one_winner(
    db: Database,
) -> None:
    store = MediaStore(db)
    uploads = [upload(100 + index, sha) for index, sha in enumerate("0123456789")]
    for round_ in range(3):
        media_id = f"raced-{round_}"
        await store.create_pending(media_id, ALICE, NOW, NOW + HOUR, max_pending=100)
        results = await defer.gatherResults(
            [
                defer.ensureDeferred(store.complete_pending(media_id, ALICE, NOW + 1, attempt))
                for attempt in uploads
            ]
        )
        assert sum(results) == 1
        winner = uploads[results.index(True)]
        media = await store.get_local(media_id)
        assert media is not None
        assert (media.sha256, media.size) == (winner.sha256, winner.size)


# -- uploads, listing, quota ----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_store_uploaded_round_trips_through_get_local(db: Database) -> None:
    store = MediaStore(db)
    await store.store_uploaded("uploaded", ALICE, NOW, UPLOAD)
    await store.store_uploaded("preview", BOB, NOW + 1, OTHER_UPLOAD, url_cache="https://x.org/")
    assert await store.get_local("uploaded") == LocalMedia(
        media_id="uploaded",
        user_id=ALICE,
        created_ts=NOW,
        uploaded_ts=NOW,
        expires_ts=None,
        content_type="image/png",
        upload_name="cat.png",
        size=1234,
        sha256="a" * 64,
        width=64,
        height=48,
        quarantined_by=None,
        url_cache=None,
        last_access_ts=None,
    )
    preview = await store.get_local("preview")
    assert preview is not None
    assert (preview.url_cache, preview.upload_name, preview.width) == ("https://x.org/", None, None)
    assert await store.get_local("unknown") is None


@pytest_twisted.ensureDeferred
async def test_the_playing_time_of_audio_is_stored_by_upload_and_by_completion(
    db: Database,
) -> None:
    store = MediaStore(db)
    voice = attrs.evolve(OTHER_UPLOAD, content_type="audio/ogg", duration_ms=4321)
    await store.store_uploaded("direct", ALICE, NOW, voice)
    await store.create_pending("reserved", ALICE, NOW, NOW + HOUR, max_pending=5)
    await store.complete_pending("reserved", ALICE, NOW + 1, attrs.evolve(voice, duration_ms=9))
    direct, completed = await store.get_local("direct"), await store.get_local("reserved")
    assert direct is not None and completed is not None
    assert (direct.duration_ms, completed.duration_ms) == (4321, 9)
    await store.store_uploaded("silent", ALICE, NOW, UPLOAD)
    silent = await store.get_local("silent")
    assert silent is not None and silent.duration_ms is None


@pytest_twisted.ensureDeferred
async def test_list_user_media_pages_newest_or_oldest_first_with_the_total(db: Database) -> None:
    store = MediaStore(db)
    for index in range(5):
        await store.store_uploaded(f"m{index}", ALICE, NOW + index * 1000, upload(index + 1))
    newest = ["m4", "m3", "m2", "m1", "m0"]

    page, total = await store.list_user_media(ALICE, offset=0, limit=2)
    assert ([media.media_id for media in page], total) == (newest[:2], 5)
    page, total = await store.list_user_media(ALICE, offset=2, limit=2)
    assert ([media.media_id for media in page], total) == (newest[2:4], 5)
    page, total = await store.list_user_media(ALICE, offset=4, limit=2)
    assert ([media.media_id for media in page], total) == (newest[4:], 5)
    page, total = await store.list_user_media(ALICE, offset=5, limit=2)
    assert (page, total) == ([], 5)

    page, total = await store.list_user_media(ALICE, offset=1, limit=3, newest_first=False)
    assert ([media.media_id for media in page], total) == (["m1", "m2", "m3"], 5)
    assert page[0] == await store.get_local("m1")


@pytest_twisted.ensureDeferred
async def test_list_user_media_breaks_ties_by_media_id(db: Database) -> None:
    store = MediaStore(db)
    for media_id in ["b", "c", "a"]:
        await store.store_uploaded(media_id, ALICE, NOW, upload(1))
    page, _ = await store.list_user_media(ALICE, offset=0, limit=10)
    assert [media.media_id for media in page] == ["c", "b", "a"]
    page, _ = await store.list_user_media(ALICE, offset=0, limit=10, newest_first=False)
    assert [media.media_id for media in page] == ["a", "b", "c"]


@pytest_twisted.ensureDeferred
async def test_list_user_media_leaves_out_url_previews_pending_ids_and_other_users(
    db: Database,
) -> None:
    store = MediaStore(db)
    await store.store_uploaded("mine", ALICE, NOW, UPLOAD)
    await store.store_uploaded("preview", ALICE, NOW + 1, UPLOAD, url_cache="https://x.org/")
    await store.create_pending("reserved", ALICE, NOW + 2, NOW + HOUR, max_pending=5)
    await store.store_uploaded("bobs", BOB, NOW + 3, UPLOAD)
    page, total = await store.list_user_media(ALICE, offset=0, limit=10)
    assert ([media.media_id for media in page], total) == (["mine"], 1)
    assert await store.list_user_media("@nobody:example.org", offset=0, limit=10) == ([], 0)


@pytest_twisted.ensureDeferred
async def test_bytes_uploaded_since_sums_the_users_uploads_after_the_time(db: Database) -> None:
    store = MediaStore(db)
    assert await store.bytes_uploaded_since(ALICE, NOW - HOUR) == 0
    await store.store_uploaded("old", ALICE, NOW - HOUR, upload(1000))
    await store.store_uploaded("recent", ALICE, NOW, upload(200))
    await store.store_uploaded("newer", ALICE, NOW + 1, upload(30))
    await store.store_uploaded("preview", ALICE, NOW, upload(4), url_cache="https://x.org/")
    await store.store_uploaded("bobs", BOB, NOW, upload(5))
    await store.create_pending("reserved", ALICE, NOW, NOW + HOUR, max_pending=5)
    assert await store.bytes_uploaded_since(ALICE, NOW - HOUR - 1) == 1230
    # Strictly after: media made at exactly the time is not counted.
    assert await store.bytes_uploaded_since(ALICE, NOW - HOUR) == 230
    assert await store.bytes_uploaded_since(ALICE, NOW) == 30
    assert await store.bytes_uploaded_since(BOB, NOW - 1) == 5


# -- quarantine and deletion -----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_local_quarantine_is_set_and_lifted(db: Database) -> None:
    store = MediaStore(db)
    await store.store_uploaded("media", ALICE, NOW, UPLOAD)
    assert await store.set_local_quarantine("media", ADMIN)
    media = await store.get_local("media")
    assert media is not None and media.quarantined_by == ADMIN
    assert await store.set_local_quarantine("media", None)
    media = await store.get_local("media")
    assert media is not None and media.quarantined_by is None
    assert not await store.set_local_quarantine("unknown", ADMIN)


@pytest_twisted.ensureDeferred
async def test_remote_quarantine_is_set_and_lifted(db: Database) -> None:
    store = MediaStore(db)
    await store.store_remote(remote("media", NOW))
    assert await store.set_remote_quarantine(REMOTE, "media", ADMIN)
    cached = await store.get_remote(REMOTE, "media")
    assert cached is not None and cached.quarantined_by == ADMIN
    assert await store.set_remote_quarantine(REMOTE, "media", None)
    cached = await store.get_remote(REMOTE, "media")
    assert cached is not None and cached.quarantined_by is None
    assert not await store.set_remote_quarantine("elsewhere.example", "media", ADMIN)
    assert not await store.set_remote_quarantine(REMOTE, "unknown", ADMIN)


@pytest_twisted.ensureDeferred
async def test_delete_local_returns_and_removes_only_its_own_thumbnails(db: Database) -> None:
    store = MediaStore(db)
    await store.store_uploaded("doomed", ALICE, NOW, UPLOAD)
    await store.store_uploaded("kept", ALICE, NOW, UPLOAD)
    await store.store_remote(remote("doomed", NOW))
    for thumbnail in (SMALL, LARGE, ANIMATED):
        await store.store_thumbnail(SERVER, "doomed", thumbnail)
    await store.store_thumbnail(SERVER, "kept", SMALL)
    # A remote file with the same media ID is someone else's.
    await store.store_thumbnail(REMOTE, "doomed", LARGE)

    deleted = await store.delete_local(SERVER, "doomed")
    assert deleted is not None
    assert sorted(deleted, key=attrs.astuple) == sorted([SMALL, LARGE, ANIMATED], key=attrs.astuple)
    assert await store.get_local("doomed") is None
    assert await store.get_thumbnails(SERVER, "doomed") == []
    assert await store.get_thumbnails(SERVER, "kept") == [SMALL]
    assert await store.get_thumbnails(REMOTE, "doomed") == [LARGE]
    assert await store.get_remote(REMOTE, "doomed") is not None


@pytest_twisted.ensureDeferred
async def test_delete_local_of_unknown_media_is_none_and_touches_no_thumbnails(
    db: Database,
) -> None:
    store = MediaStore(db)
    await store.store_thumbnail(SERVER, "ghost", SMALL)
    assert await store.delete_local(SERVER, "ghost") is None
    assert await store.get_thumbnails(SERVER, "ghost") == [SMALL]

    await store.store_uploaded("once", ALICE, NOW, UPLOAD)
    assert await store.delete_local(SERVER, "once") == []
    assert await store.delete_local(SERVER, "once") is None


@pytest_twisted.ensureDeferred
async def test_delete_local_removes_an_unfinished_reservation(db: Database) -> None:
    store = MediaStore(db)
    await store.create_pending("reserved", ALICE, NOW, NOW + HOUR, max_pending=5)
    assert await store.delete_local(SERVER, "reserved") == []
    assert await store.get_local("reserved") is None


# -- the remote media cache ----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_remote_media_round_trips_and_a_second_store_keeps_the_first(db: Database) -> None:
    store = MediaStore(db)
    first = remote("media", NOW)
    await store.store_remote(first)
    assert await store.get_remote(REMOTE, "media") == first
    # Two fetches racing: the first one recorded stays.
    await store.store_remote(attrs.evolve(first, size=1, sha256="e" * 64, created_ts=NOW + 5))
    assert await store.get_remote(REMOTE, "media") == first
    assert await store.get_remote("elsewhere.example", "media") is None
    assert await store.get_remote(REMOTE, "unknown") is None


@pytest_twisted.ensureDeferred
async def test_touch_remote_updates_only_the_named_media(db: Database) -> None:
    store = MediaStore(db)
    await store.store_remote(remote("a", NOW))
    await store.store_remote(remote("b", NOW))
    await store.store_remote(remote("a", NOW, origin="elsewhere.example"))
    await store.touch_remote([(REMOTE, "a"), (REMOTE, "unknown")], NOW + 500)
    await store.touch_remote([], NOW + 900)
    touched = await store.get_remote(REMOTE, "a")
    assert touched is not None and (touched.last_access_ts, touched.created_ts) == (NOW + 500, NOW)
    untouched = [
        await store.get_remote(REMOTE, "b"),
        await store.get_remote("elsewhere.example", "a"),
    ]
    assert [media.last_access_ts if media else None for media in untouched] == [NOW, NOW]


@pytest_twisted.ensureDeferred
async def test_remote_media_before_lists_unused_unquarantined_media_oldest_first(
    db: Database,
) -> None:
    store = MediaStore(db)
    await store.store_remote(remote("newest-old", NOW - 10))
    await store.store_remote(remote("oldest", NOW - 30))
    await store.store_remote(remote("middle", NOW - 20))
    await store.store_remote(remote("quarantined", NOW - 40))
    await store.store_remote(remote("at-the-limit", NOW))
    await store.store_remote(remote("used-recently", NOW - 50))
    await store.set_remote_quarantine(REMOTE, "quarantined", ADMIN)
    await store.touch_remote([(REMOTE, "used-recently")], NOW + 1)

    before = await store.remote_media_before(NOW)
    assert [media.media_id for media in before] == ["oldest", "middle", "newest-old"]
    assert before[0] == remote("oldest", NOW - 30)
    limited = await store.remote_media_before(NOW, limit=2)
    assert [media.media_id for media in limited] == ["oldest", "middle"]


@pytest_twisted.ensureDeferred
async def test_delete_remote_returns_its_thumbnails_or_none_when_unknown(db: Database) -> None:
    store = MediaStore(db)
    await store.store_remote(remote("media", NOW))
    await store.store_uploaded("media", ALICE, NOW, UPLOAD)
    await store.store_thumbnail(REMOTE, "media", SMALL)
    await store.store_thumbnail(SERVER, "media", LARGE)

    assert await store.delete_remote(REMOTE, "media") == [SMALL]
    assert await store.get_remote(REMOTE, "media") is None
    assert await store.get_thumbnails(REMOTE, "media") == []
    assert await store.get_thumbnails(SERVER, "media") == [LARGE]
    assert await store.get_local("media") is not None
    assert await store.delete_remote(REMOTE, "media") is None


# -- thumbnails -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_storing_a_thumbnail_again_replaces_its_size(db: Database) -> None:
    store = MediaStore(db)
    await store.store_thumbnail(SERVER, "media", SMALL)
    await store.store_thumbnail(SERVER, "media", LARGE)
    await store.store_thumbnail(SERVER, "media", attrs.evolve(SMALL, size=777))
    thumbnails = await store.get_thumbnails(SERVER, "media")
    assert sorted(thumbnails, key=attrs.astuple) == sorted(
        [attrs.evolve(SMALL, size=777), LARGE], key=attrs.astuple
    )


@pytest_twisted.ensureDeferred
async def test_thumbnails_differing_in_type_method_or_animation_are_separate(
    db: Database,
) -> None:
    store = MediaStore(db)
    variants = [
        LARGE,
        ANIMATED,
        attrs.evolve(LARGE, animated=True),
        attrs.evolve(LARGE, method="crop"),
        attrs.evolve(LARGE, content_type="image/png"),
    ]
    for thumbnail in variants:
        await store.store_thumbnail(SERVER, "media", thumbnail)
    thumbnails = await store.get_thumbnails(SERVER, "media")
    assert sorted(thumbnails, key=attrs.astuple) == sorted(variants, key=attrs.astuple)
    assert all(isinstance(thumbnail.animated, bool) for thumbnail in thumbnails)
    assert await store.get_thumbnails(REMOTE, "media") == []


# -- what the periodic jobs read ---------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_expired_pending_lists_reservations_past_their_expiry(db: Database) -> None:
    store = MediaStore(db)
    await store.create_pending("expired", ALICE, NOW - HOUR, NOW - 1, max_pending=10)
    await store.create_pending("expires-now", ALICE, NOW - HOUR, NOW, max_pending=10)
    await store.create_pending("later", ALICE, NOW - HOUR, NOW + 1, max_pending=10)
    await store.create_pending("completed", ALICE, NOW - HOUR, NOW - 1, max_pending=10)
    await store.complete_pending("completed", ALICE, NOW - 2, UPLOAD)
    await store.store_uploaded("uploaded", ALICE, NOW - HOUR, UPLOAD)

    assert sorted(await store.expired_pending(NOW)) == ["expired", "expires-now"]
    assert len(await store.expired_pending(NOW, limit=1)) == 1
    assert await store.expired_pending(NOW - HOUR) == []


@pytest_twisted.ensureDeferred
async def test_local_media_older_than_uses_last_access_else_creation_time(db: Database) -> None:
    store = MediaStore(db)
    await store.store_uploaded("old-unused", ALICE, NOW - 3 * HOUR, upload(1))
    await store.store_uploaded("old-used-recently", ALICE, NOW - 3 * HOUR, upload(1))
    await store.store_uploaded("old-used-long-ago", ALICE, NOW - 3 * HOUR, upload(1))
    await store.store_uploaded("new", ALICE, NOW - HOUR, upload(1))
    await store.store_uploaded("old-quarantined", ALICE, NOW - 3 * HOUR, upload(1))
    await store.store_uploaded("old-preview", ALICE, NOW - 3 * HOUR, upload(1), url_cache="u")
    await store.create_pending("old-reservation", ALICE, NOW - 3 * HOUR, NOW + HOUR, 10)
    await store.set_local_quarantine("old-quarantined", ADMIN)
    await store.touch_local(["old-used-recently"], NOW - HOUR)
    await store.touch_local(["old-used-long-ago"], NOW - 2 * HOUR - 1)
    await store.touch_local([], NOW)

    used = await store.get_local("old-used-recently")
    assert used is not None and used.last_access_ts == NOW - HOUR
    assert sorted(await store.local_media_older_than(NOW - 2 * HOUR)) == [
        "old-preview",
        "old-unused",
        "old-used-long-ago",
    ]
    assert len(await store.local_media_older_than(NOW - 2 * HOUR, limit=2)) == 2
    # Strictly before: media last used at exactly the time is kept.
    assert "new" not in await store.local_media_older_than(NOW - HOUR)
    assert "new" in await store.local_media_older_than(NOW - HOUR + 1)
