"""The browser app (``web-client/``): built before the server listens
(:mod:`.build`) and served at ``/`` of every client listener (:mod:`.resource`).

See docs/architecture.md, "Web client".
"""

from __future__ import annotations

from twisted.web import resource

from homeserver.api import landing
from homeserver.api.client import auth_fallback
from homeserver.auth.uia import UserInteractiveAuth
from homeserver.config.model import HomeServerConfig
from homeserver.http.server import Router
from homeserver.webclient.assets import AppFiles
from homeserver.webclient.resource import WebClientRoot, server_prefixes


class WebClientSite:
    """One per process: its in-memory file cache is shared by every listener."""

    def __init__(self, config: HomeServerConfig) -> None:
        web_client = config.web_client
        self._app = (
            AppFiles(web_client.directory)
            if web_client.enabled and web_client.directory is not None
            else None
        )
        self._location = web_client.location
        self._homeserver_url = config.public_baseurl

    def wrap(self, inner: resource.Resource, routes: list[tuple[str, str]]) -> resource.Resource:
        """A client listener's root: the app, and ``inner`` for the server's paths
        (those of ``routes``, the listener's router)."""
        return WebClientRoot(
            inner,
            self._app,
            prefixes=server_prefixes(routes),
            homeserver_url=self._homeserver_url,
            location=self._location,
        )


def register_pages(router: Router, config: HomeServerConfig, uia: UserInteractiveAuth) -> None:
    """The pages a client listener renders itself: the landing page at ``/`` (the
    answer while no web client is built) and the UIA fallback pages."""
    landing.register(
        router,
        server_name=config.server_name,
        public_baseurl=config.public_baseurl,
        web_client=config.web_client.enabled,
    )
    auth_fallback.register(router, uia=uia)
