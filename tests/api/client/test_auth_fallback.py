"""The fallback web page of user-interactive authentication, over HTTP: a client
that cannot do a stage sends its user to the page, then retries with the session.

spec: client-server-api/_index.md#fallback
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address

from homeserver import errors
from homeserver.api.client import auth_fallback
from homeserver.auth.uia import REGISTRATION_TOKEN, StageContext, UiaRequired, UserInteractiveAuth
from homeserver.clock import Clock
from homeserver.http.request import MatrixSite
from homeserver.http.server import JsonResource, Router
from tests.support.http import Response
from tests.support.matrix import PASSWORD, RELAXED_LIMITS, call, login, register, running_server
from tests.support.server_process import ServerProcess

PAGE = "/_matrix/client/v3/auth/m.login.password/fallback/web"


def form_post(server: ServerProcess, path: str, fields: dict[str, str], **headers: str) -> Response:
    return server.request(
        "POST",
        path,
        body=urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )


def start_device_deletion(server: ServerProcess, user: str) -> tuple[str, str]:
    """A user's token and the UIA session of deleting their other device."""
    token = register(server, user, device_id="MAIN")["access_token"]
    login(server, user, device_id="OLD")
    first = call(server, "DELETE", "/devices/OLD", token=token)
    assert first.status == 401
    return token, first.json()["session"]


def retry(server: ServerProcess, token: str, session: str) -> Response:
    return call(server, "DELETE", "/devices/OLD", token=token, body={"auth": {"session": session}})


def test_the_password_page_completes_the_stage_and_the_retry_succeeds(
    open_server: ServerProcess,
) -> None:
    token, session = start_device_deletion(open_server, "fern")
    page = open_server.request("GET", f"{PAGE}?session={session}")
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    text = page.body.decode()
    assert "@fern:localhost" in text
    assert 'type="password"' in text
    done = form_post(open_server, f"{PAGE}?session={session}", {"password": PASSWORD})
    assert done.status == 200, done.body
    script = re.search(r"<script>(.*?)</script>", done.body.decode(), re.DOTALL)
    assert script is not None
    assert "window.onAuthDone()" in script.group(1)
    assert 'window.opener.postMessage("authDone", "*")' in script.group(1)
    # The page's policy lets exactly that script run.
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in done.headers["content-security-policy"]
    retried = retry(open_server, token, session)
    assert retried.status == 200, retried.body
    assert call(open_server, "GET", "/devices/OLD", token=token).status == 404


def test_a_wrong_password_shows_the_error_and_completes_nothing(
    open_server: ServerProcess,
) -> None:
    token, session = start_device_deletion(open_server, "gale")
    wrong = form_post(open_server, f"{PAGE}?session={session}", {"password": "not it"})
    assert wrong.status == 403
    assert wrong.headers["content-type"] == "text/html; charset=utf-8"
    assert "Invalid username or password" in wrong.body.decode()
    assert "<script>" not in wrong.body.decode()
    still = retry(open_server, token, session)
    assert still.status == 401
    assert still.json()["completed"] == []


def test_a_password_in_the_query_string_completes_nothing(open_server: ServerProcess) -> None:
    # A password in a URL lands in access logs and browser history: only the body counts.
    token, session = start_device_deletion(open_server, "kit")
    url = f"{PAGE}?{urlencode({'session': session, 'password': PASSWORD})}"
    posted = form_post(open_server, url, {})
    assert posted.status == 403
    assert "<script>" not in posted.body.decode()
    assert retry(open_server, token, session).status == 401


def test_the_pages_cannot_be_framed_and_send_no_referrer(open_server: ServerProcess) -> None:
    _, session = start_device_deletion(open_server, "lark")
    url = f"{PAGE}?session={session}"
    for response in (
        open_server.request("GET", url),
        form_post(open_server, url, {"password": PASSWORD}),
        open_server.request("GET", "/_matrix/client/v3/auth/m.login.recaptcha/fallback/web"),
    ):
        directives = response.headers["content-security-policy"].split("; ")
        for directive in ("frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"):
            assert directive in directives, (response.status, directive)
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_a_stage_the_session_does_not_ask_for_gets_no_form(open_server: ServerProcess) -> None:
    # Deleting a device offers only m.login.password.
    _, session = start_device_deletion(open_server, "moss")
    for stage in ("m.login.dummy", "m.login.registration_token"):
        path = f"/_matrix/client/v3/auth/{stage}/fallback/web?session={session}"
        page = open_server.request("GET", path)
        assert page.status == 400, stage
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "does not ask for this step" in page.body.decode()
        assert "<form" not in page.body.decode()
        assert form_post(open_server, path, {"token": "x"}).status == 400


def test_a_completed_stage_shows_the_done_page_again(open_server: ServerProcess) -> None:
    token, session = start_device_deletion(open_server, "nell")
    url = f"{PAGE}?session={session}"
    assert form_post(open_server, url, {"password": PASSWORD}).status == 200
    again = open_server.request("GET", url)
    assert again.status == 200
    assert "window.onAuthDone()" in again.body.decode()
    assert "<form" not in again.body.decode()
    assert retry(open_server, token, session).status == 200


def test_the_r0_path_works_too(open_server: ServerProcess) -> None:
    token, session = start_device_deletion(open_server, "hale")
    path = f"/_matrix/client/r0/auth/m.login.password/fallback/web?session={session}"
    assert form_post(open_server, path, {"password": PASSWORD}).status == 200
    assert retry(open_server, token, session).status == 200


def test_unknown_stages_and_sessions_get_html_error_pages(open_server: ServerProcess) -> None:
    unknown = open_server.request(
        "GET", "/_matrix/client/v3/auth/m.login.recaptcha/fallback/web?session=x"
    )
    assert unknown.status == 404
    assert unknown.headers["content-type"] == "text/html; charset=utf-8"
    no_session = open_server.request("GET", PAGE)
    assert no_session.status == 400
    expired = open_server.request("GET", f"{PAGE}?session=never-issued")
    assert expired.status == 400
    assert "expired" in expired.body.decode()
    posted = form_post(open_server, f"{PAGE}?session=never-issued", {"password": PASSWORD})
    assert posted.status == 400


def test_the_pages_follow_the_theme_cookie(open_server: ServerProcess) -> None:
    _, session = start_device_deletion(open_server, "ivy")
    url = f"{PAGE}?session={session}"
    dark = open_server.request("GET", url, headers={"Cookie": "hs_theme=dark"}).body.decode()
    assert '<html lang="en" data-theme="dark">' in dark
    light = open_server.request("GET", url, headers={"Cookie": "hs_theme=light"}).body.decode()
    assert '<html lang="en" data-theme="light">' in light
    for cookie in ("hs_theme=system", "hs_theme=<script>", "other=dark"):
        page = open_server.request("GET", url, headers={"Cookie": cookie}).body.decode()
        assert '<html lang="en">' in page, cookie


def test_guessing_on_the_page_is_rate_limited_like_login(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    limits = {
        **RELAXED_LIMITS["rc_login"],
        "failed_attempts": {"per_second": 0.01, "burst_count": 2},
    }
    with running_server(tmp_path, database_config, rc_login=limits) as server:
        token, session = start_device_deletion(server, "jay")
        url = f"{PAGE}?session={session}"
        statuses = [form_post(server, url, {"password": "guess"}).status for _ in range(2)]
        assert statuses == [403, 403]
        limited = form_post(server, url, {"password": PASSWORD})
        assert limited.status == 429
        assert limited.headers["content-type"] == "text/html; charset=utf-8"
        assert int(limited.headers["retry-after"]) > 0
        assert retry(server, token, session).status == 401


@pytest_twisted.async_yield_fixture
async def broken_stages() -> AsyncIterator[tuple[str, UserInteractiveAuth]]:
    """The fallback pages in this process, over a socket, for a UIA whose
    registration-token stage fails as the test's ``failure`` says."""
    uia = UserInteractiveAuth(Clock(reactor))
    router = Router()
    auth_fallback.register(router, uia=uia)
    site = MatrixSite(JsonResource(router), max_body_size=1024, reactor=reactor)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[arg-type]
    address = port.getHost()
    assert isinstance(address, IPv4Address)
    yield f"http://127.0.0.1:{address.port}", uia
    await defer.maybeDeferred(port.stopListening)


async def post_token_page(base: str, uia: UserInteractiveAuth, failure: Exception) -> Any:
    async def failing(auth: dict[str, Any], context: StageContext) -> Any:
        raise failure

    uia.register_stage(REGISTRATION_TOKEN, failing)
    with pytest.raises(UiaRequired) as required:
        await uia.authenticate({}, operation="register", flows=[[REGISTRATION_TOKEN]])
    session = required.value.to_json()["session"]
    return await treq.post(
        f"{base}/_matrix/client/v3/auth/{REGISTRATION_TOKEN}/fallback/web?session={session}",
        data={"token": "t"},
    )


@pytest_twisted.ensureDeferred
async def test_a_stage_that_crashes_answers_an_html_500_page(
    broken_stages: tuple[str, UserInteractiveAuth], caplog: pytest.LogCaptureFixture
) -> None:
    response = await post_token_page(*broken_stages, RuntimeError("a bug"))
    assert response.code == 500
    assert response.headers.getRawHeaders(b"content-type") == [b"text/html; charset=utf-8"]
    assert "Something went wrong" in (await response.text())
    assert any(record.exc_info is not None for record in caplog.records)


@pytest_twisted.ensureDeferred
async def test_any_matrix_error_of_a_stage_is_a_page_with_its_status(
    broken_stages: tuple[str, UserInteractiveAuth],
) -> None:
    response = await post_token_page(*broken_stages, errors.invalid_param("Token is malformed"))
    assert response.code == 400
    assert response.headers.getRawHeaders(b"content-type") == [b"text/html; charset=utf-8"]
    text = await response.text()
    assert "Token is malformed" in text
    assert "<form" in text
