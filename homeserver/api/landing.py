"""``GET /``: a page that tells a person who opens the server's address what it is.

Once the web client is built it answers ``/`` instead (homeserver/webclient/); until
then this says which server this is, how to reach it with a Matrix client, and how
to build the web client.  It follows the web client's theme cookie.
"""

from __future__ import annotations

from typing import Any

from homeserver import __version__
from homeserver.http.pages import render_page
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router


def register(
    router: Router, *, server_name: str, public_baseurl: str, web_client: bool = True
) -> None:
    """``web_client``: the web client is enabled (so the page says how to build it)."""

    async def landing(request: MatrixRequest) -> tuple[int, Any]:
        return 200, render_page(
            request,
            "landing.html",
            server_name=server_name,
            version=__version__,
            base_url=public_baseurl,
            web_client=web_client,
        )

    router.register("GET", "/", landing)
