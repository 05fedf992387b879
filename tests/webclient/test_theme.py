"""The pages the server renders follow the web client's ``hs_theme`` cookie."""

from __future__ import annotations

from twisted.web.server import Request
from twisted.web.test.requesthelper import DummyChannel

from homeserver.http.pages import message_page, render_page
from homeserver.http.theme import page_theme
from homeserver.pushers.email.render import multipart


def request_with(cookie: bytes | None) -> Request:
    """A request with this Cookie header, parsed as twisted.web parses it."""
    request = Request(DummyChannel())
    if cookie is not None:
        request.requestHeaders.setRawHeaders(b"cookie", [cookie])
    request.parseCookies()
    return request


def test_the_cookie_pins_light_or_dark_and_anything_else_follows_the_system() -> None:
    assert page_theme(request_with(b"hs_theme=dark")) == "dark"
    assert page_theme(request_with(b"hs_theme=light")) == "light"
    for cookie in (
        None,
        b"hs_theme=system",
        b"hs_theme=DARK",
        b"hs_theme=\xff",
        b"x=dark",
        b"hs_theme",
    ):
        assert page_theme(request_with(cookie)) is None, cookie


def message(cookie: bytes | None) -> str:
    return message_page(request_with(cookie), "Title", "Message").html


def landing(cookie: bytes | None) -> str:
    page = render_page(
        request_with(cookie),
        "landing.html",
        server_name="example.com",
        version="1.0",
        base_url="https://example.com/",
        web_client=True,
    )
    return page.html


def test_pages_render_the_theme_of_the_requests_cookie() -> None:
    for render in (message, landing):
        assert '<html lang="en" data-theme="dark">' in render(b"hs_theme=dark")
        assert '<html lang="en" data-theme="light">' in render(b"hs_theme=light")
        system = render(b"hs_theme=system")
        assert '<html lang="en">' in system
        assert render(None) == system
        # One set of dark colours, used by the system preference and by the cookie.
        assert "@media (prefers-color-scheme: dark)" in system
        assert ":root:not([data-theme=light]) body { background: #15191e;" in system
        assert ":root[data-theme=dark] body { background: #15191e;" in system


def test_page_values_are_escaped() -> None:
    page = message_page(request_with(None), "<b>Title</b>", "<script>alert(1)</script>")
    assert "<script>" not in page.html
    assert "&lt;b&gt;Title&lt;/b&gt;" in page.html


def test_mails_carry_no_theme_attribute() -> None:
    message = multipart(
        to="a@example.com",
        subject="Confirm",
        template="validation",
        address="a@example.com",
        server_name="example.com",
        link="https://example.com/x",
    )
    html = message.get_body(("html",))
    assert html is not None
    assert '<html lang="en">' in html.get_content()
