"""The ``web_client`` section (ours) and Synapse's ``web_client_location``.

The browser app in ``web-client/`` is served at ``/`` of every client listener once
it is built (docs/architecture.md, "Web client").  Synapse's ``web_client_location``
is accepted: a URL there means "redirect ``/`` to that client" and turns our own
client off.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from homeserver.config.reader import ConfigError, Section

#: ``build``: ``auto`` builds a missing or stale app before listening; ``never`` does not.
BUILD_MODES = ("auto", "never")


def checkout_dist() -> Path | None:
    """``web-client/dist`` of the source checkout this package runs from, if it is one."""
    sources = Path(__file__).resolve().parents[2] / "web-client"
    return sources / "dist" if (sources / "package.json").is_file() else None


@attrs.frozen
class WebClientConfig:
    enabled: bool = True
    #: The built app (``index.html`` and ``assets/``); None: there is none to serve.
    directory: Path | None = attrs.field(factory=checkout_dist)
    build: str = "auto"
    #: Synapse's ``web_client_location``: ``/`` redirects there instead.
    location: str | None = None

    @property
    def sources(self) -> Path | None:
        """The folder with ``package.json`` the app is built from: the directory's
        parent when it is a checkout's ``web-client/dist``."""
        if self.directory is None:
            return None
        parent = self.directory.parent
        return parent if (parent / "package.json").is_file() else None


def parse_web_client(root: Section) -> WebClientConfig:
    defaults = WebClientConfig()
    location = root.get_str("web_client_location", None)
    if location is not None and not str(location).startswith(("http://", "https://")):
        raise ConfigError("web_client_location", "must be a URL starting with http:// or https://")
    section = root.section("web_client")
    config = WebClientConfig(
        enabled=section.get_bool("enabled", defaults.enabled) and location is None,
        directory=section.get_path("directory", defaults.directory),
        build=section.get_choice("build", BUILD_MODES, defaults.build),
        location=location,
    )
    section.finish()
    return config
