"""URL previews: what ``GET /_matrix/client/v1/media/preview_url`` answers.

:mod:`.opengraph` reads a page's OpenGraph data (pure parsing, no I/O) and
:mod:`.previewer` fetches pages and their images through the outbound client, stores
the images as media and caches the results.

spec: client-server-api/modules/content_repo.md; data/api/client-server/
authed-content-repo.yaml (``/media/preview_url``); https://ogp.me/
"""
