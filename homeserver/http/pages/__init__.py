"""The HTML pages this server renders for people (not mails): the landing page, the
UIA fallback pages and the pages email links open.

Templates are beside this module; they extend the HTML frame the mails use
(``_base.html`` and its ``_style.html`` in homeserver/pushers/email/templates), so
one loader looks in both folders, this one first.  Jinja2 with autoescaping (names
and addresses in pages are user-controlled) and a strict undefined, like the mails.
Every page takes the web client's theme from the request's cookie
(homeserver/http/theme.py): ``<html data-theme=…>``, which the frame's dark rules
follow.  Pages come out as :class:`HtmlPage`, which the server sends with its
security headers and a policy that runs no scripts unless the page names one.
"""

from __future__ import annotations

from typing import Any

import jinja2
from twisted.web import server

from homeserver.http.server import PAGE_POLICY, HtmlPage
from homeserver.http.theme import page_theme

_ENV = jinja2.Environment(
    loader=jinja2.ChoiceLoader(
        [
            jinja2.PackageLoader("homeserver.http.pages", "templates"),
            # The shared frame: _base.html and _style.html.
            jinja2.PackageLoader("homeserver.pushers.email", "templates"),
        ]
    ),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render_page(
    request: server.Request, template: str, *, policy: str = PAGE_POLICY, **values: Any
) -> HtmlPage:
    """``template`` rendered with ``values`` in the theme the request's cookie asks
    for; ``policy``: the Content-Security-Policy (a page with a script names it)."""
    html = _ENV.get_template(template).render(theme=page_theme(request), **values)
    return HtmlPage(html, policy=policy)


def message_page(
    request: server.Request,
    title: str,
    message: str,
    *,
    form_action: str = "",
    form_button: str = "",
) -> HtmlPage:
    """A page with ``message``; with ``form_action``, a button that POSTs there."""
    return render_page(
        request,
        "message.html",
        title=title,
        message=message,
        form_action=form_action,
        form_button=form_button,
    )
