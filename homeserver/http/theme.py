"""The theme of the pages the server renders itself, chosen in the web client.

The client keeps the person's choice in the ``hs_theme`` cookie (``light``,
``dark`` or ``system``).  A page renders ``<html data-theme="light|dark">`` for an
explicit choice; for ``system``, no cookie or anything malformed it renders no
attribute and its CSS follows ``prefers-color-scheme``.
"""

from __future__ import annotations

from twisted.web import server

THEME_COOKIE = b"hs_theme"
#: Values that pin a theme; "system" (the default) pins none.
PINNED_THEMES = ("light", "dark")


def page_theme(request: server.Request) -> str | None:
    """``light`` or ``dark`` as the request's cookie asks; None to follow the system."""
    value = request.received_cookies.get(THEME_COOKIE)
    if value is None:
        return None
    theme = value.decode("ascii", "replace")
    return theme if theme in PINNED_THEMES else None
