"""The mails this server writes, from the templates beside this module.

Jinja2 with autoescaping for ``.html`` templates (room names, display names and
message bodies are user-controlled) and a strict undefined, so a template naming a
missing value fails loudly in tests instead of rendering blank.  HTML mails come
with a plain-text part (``multipart/alternative``), light and dark colours
(``color-scheme`` and a ``prefers-color-scheme: dark`` block) and read fine with
their CSS stripped.  The pages the server renders (homeserver/http/pages/) extend
the same frame, ``_base.html`` with ``_style.html``, and pin a ``theme`` on it; mails
never do.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import attrs
import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("homeserver.pushers.email", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


@attrs.frozen
class DigestMessage:
    sender: str
    time: str
    body: str


@attrs.frozen
class DigestRoom:
    name: str
    link: str
    messages: list[DigestMessage]
    #: Unread notifications in the room beyond those shown.
    more: int = 0


def render(name: str, **values: Any) -> str:
    return _ENV.get_template(name).render(**values)


def multipart(*, to: str, subject: str, template: str, **values: Any) -> EmailMessage:
    """A ``multipart/alternative`` mail: ``template``.txt, then ``template``.html."""
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = _one_line(subject)
    message.set_content(render(f"{template}.txt", subject=subject, **values))
    message.add_alternative(render(f"{template}.html", subject=subject, **values), subtype="html")
    return message


def _one_line(text: str) -> str:
    """Header values never carry line breaks (header injection), and stay short."""
    flat = " ".join(text.split())
    return flat if len(flat) <= 200 else flat[:199] + "…"
