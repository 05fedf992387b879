"""UrlPreviewStore on both engines."""

from __future__ import annotations

import pytest
import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.url_previews import CachedPreview, UrlPreviewStore

PAGE = "https://example.org/page"
PREVIEW = {
    "og:title": "Ünïcode \x00 title",
    "og:image": "mxc://hs/abc",
    "og:image:width": 64,
    "matrix:image:size": 1234,
}
ERROR = {"status": 502, "errcode": "M_UNKNOWN", "error": "Could not fetch the URL"}


@pytest_twisted.ensureDeferred
async def test_a_preview_is_returned_until_it_expires(db: Database) -> None:
    store = UrlPreviewStore(db)
    assert await store.get(PAGE, 1000) is None
    await store.put(PAGE, 1000, 2000, PREVIEW, None)
    expected = CachedPreview(PAGE, 1000, 2000, PREVIEW, None)
    assert await store.get(PAGE, 1000) == expected
    assert await store.get(PAGE, 1999) == expected
    assert await store.get(PAGE, 2000) is None
    # Another URL (even one differing only in case or a fragment) is another row.
    assert await store.get(PAGE.upper(), 1000) is None
    assert await store.get(PAGE + "#top", 1000) is None


@pytest_twisted.ensureDeferred
async def test_an_error_is_stored_like_a_preview(db: Database) -> None:
    store = UrlPreviewStore(db)
    await store.put(PAGE, 1000, 1300, None, ERROR)
    assert await store.get(PAGE, 1100) == CachedPreview(PAGE, 1000, 1300, None, ERROR)


@pytest_twisted.ensureDeferred
async def test_put_replaces_the_earlier_result(db: Database) -> None:
    store = UrlPreviewStore(db)
    await store.put(PAGE, 1000, 1300, None, ERROR)
    await store.put(PAGE, 5000, 9000, PREVIEW, None)
    assert await store.get(PAGE, 5000) == CachedPreview(PAGE, 5000, 9000, PREVIEW, None)
    await store.put(PAGE, 9500, 9800, None, ERROR)
    assert await store.get(PAGE, 9500) == CachedPreview(PAGE, 9500, 9800, None, ERROR)
    assert await db.execute("count", "SELECT COUNT(*) FROM url_previews") == [(1,)]


@pytest_twisted.ensureDeferred
async def test_exactly_one_of_preview_and_error(db: Database) -> None:
    store = UrlPreviewStore(db)
    with pytest.raises(ValueError):
        await store.put(PAGE, 1, 2, None, None)
    with pytest.raises(ValueError):
        await store.put(PAGE, 1, 2, PREVIEW, ERROR)


@pytest_twisted.ensureDeferred
async def test_an_empty_preview_is_a_preview(db: Database) -> None:
    store = UrlPreviewStore(db)
    await store.put(PAGE, 1, 10, {}, None)
    assert await store.get(PAGE, 5) == CachedPreview(PAGE, 1, 10, {}, None)


@pytest_twisted.ensureDeferred
async def test_delete_expired(db: Database) -> None:
    store = UrlPreviewStore(db)
    await store.put("https://a.example/", 0, 100, PREVIEW, None)
    await store.put("https://b.example/", 0, 200, None, ERROR)
    await store.put("https://c.example/", 0, 300, {}, None)
    assert await store.delete_expired(200) == 2
    assert await store.delete_expired(200) == 0
    assert await store.get("https://c.example/", 200) is not None
    assert await db.execute("urls", "SELECT url FROM url_previews") == [("https://c.example/",)]
