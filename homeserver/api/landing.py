"""``GET /``: a page that tells a person who opens the server's address what it is.

Until the web client is served at ``/``, this says which server this is and how to
reach it with a Matrix client, instead of a bare 404.
"""

from __future__ import annotations

import html
from typing import Any

from homeserver import __version__
from homeserver.http.request import MatrixRequest
from homeserver.http.server import HtmlPage, Router

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Matrix homeserver {server_name}</title>
<style>body {{ font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto;
padding: 0 1em; line-height: 1.5 }} code {{ font-size: 1.05em }}</style>
</head>
<body>
<h1>Matrix homeserver <code>{server_name}</code></h1>
<p>This server is running (version {version}).  To chat, open any Matrix client and
sign in with the homeserver address <code>{base_url}</code>.</p>
<p>Operators: the server answers on <code>/_matrix/client/versions</code>; health checks
use <code>/health</code>.</p>
</body>
</html>
"""


def register(router: Router, *, server_name: str, public_baseurl: str) -> None:
    page = HtmlPage(
        _PAGE.format(
            server_name=html.escape(server_name),
            version=html.escape(__version__),
            base_url=html.escape(public_baseurl),
        )
    )

    async def landing(request: MatrixRequest) -> tuple[int, Any]:
        return 200, page

    router.register("GET", "/", landing)
