"""The fallback web page of user-interactive authentication.

``GET /_matrix/client/{v3,r0}/auth/{authType}/fallback/web?session=...`` shows a
form for one stage of a UIA session; its ``POST`` completes that stage (through
:meth:`UserInteractiveAuth.complete_stage`, with the same checks as the API) and
answers a page that tells the opener (``window.onAuthDone()`` or
``postMessage("authDone")``); the client then retries its request with just the
session.  Stages: ``m.login.password`` (for the user who started the session),
``m.login.registration_token`` and ``m.login.dummy``.  Password failures count
against ``rc_login.failed_attempts`` like a login.  Passwords and tokens are read
from the form's body only, never from the URL.  A stage that none of the session's
flows has next gets no form; one already completed gets the "done" page again.

These are pages for people, so every failure is an HTML page with the error's
status (an unknown stage type: 404, an unknown session or a stage not asked for:
400, a failure of the server itself: 500), in the web client's theme
(homeserver/http/theme.py), not a JSON error.

spec: client-server-api/_index.md#fallback
"""

from __future__ import annotations

import base64
import hashlib
import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from twisted.internet import defer

from homeserver import errors
from homeserver.auth.uia import (
    DUMMY,
    PASSWORD,
    REGISTRATION_TOKEN,
    UiaSession,
    UserInteractiveAuth,
    comes_next,
)
from homeserver.errors import MatrixError
from homeserver.http.pages import render_page
from homeserver.http.parsing import param_text, query_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import PAGE_POLICY, HtmlPage, Router, client_paths

logger = logging.getLogger(__name__)

PATH = "/auth/{auth_type}/fallback/web"
STAGES = {
    PASSWORD: "Confirm your identity",
    REGISTRATION_TOKEN: "Enter your registration token",
    DUMMY: "Continue",
}
#: The spec's snippet, verbatim: what a client waits for.
DONE_SCRIPT = (
    "if (window.onAuthDone) {\n"
    "    window.onAuthDone();\n"
    "} else if (window.opener && window.opener.postMessage) {\n"
    '    window.opener.postMessage("authDone", "*");\n'
    "}"
)
_DONE_POLICY = (
    f"{PAGE_POLICY}; script-src "
    f"'sha256-{base64.b64encode(hashlib.sha256(DONE_SCRIPT.encode()).digest()).decode()}'"
)
_FORM_TYPE = "application/x-www-form-urlencoded"

Page = tuple[int, HtmlPage]


def form_field(request: MatrixRequest, name: str) -> str | None:
    """A field of the posted form's body, never of the query string: a password in
    a URL would land in access logs and browser history."""
    content_type = request.getHeader("content-type") or ""
    if content_type.split(";")[0].strip().lower() != _FORM_TYPE:
        return None
    assert request.content is not None
    values = parse_qs(request.content.getvalue(), keep_blank_values=True).get(name.encode())
    if not values:
        return None
    return param_text(values[-1], f"Form field {name!r}")


def register(router: Router, *, uia: UserInteractiveAuth) -> None:
    def page(request: MatrixRequest, status: int, **values: Any) -> Page:
        defaults: dict[str, Any] = {
            "title": "Authentication",
            "error": "",
            "done": False,
            "form": False,
            "message": "",
            "stage": "",
            "session": "",
            "user_id": "",
            "action": "",
            "done_script": DONE_SCRIPT,
        }
        policy = _DONE_POLICY if values.get("done") else PAGE_POLICY
        return status, render_page(
            request, "auth_fallback.html", policy=policy, **{**defaults, **values}
        )

    def done(request: MatrixRequest) -> Page:
        return page(request, HTTPStatus.OK, title="Done", done=True)

    def form(
        request: MatrixRequest,
        auth_type: str,
        session: UiaSession,
        error: str = "",
        status: int = HTTPStatus.OK,
    ) -> Page:
        return page(
            request,
            status,
            title=STAGES[auth_type],
            form=True,
            stage=auth_type,
            session=session.session_id,
            user_id=session.user_id or "",
            action=request.uri.decode("utf-8", "replace"),
            error=error,
        )

    def session_for(request: MatrixRequest, auth_type: str) -> UiaSession | Page:
        """The session whose next stage the page is for, or the page saying why not."""
        if auth_type not in STAGES:
            return page(
                request,
                HTTPStatus.NOT_FOUND,
                title="Unknown authentication stage",
                message=f"This server has no web page for {auth_type!r}.",
            )
        try:
            session_id = query_str(request, "session")
        except MatrixError as bad:
            session_id, problem = None, bad.message
        else:
            problem = "The link has no session; open it from your app."
        if session_id is None:
            return page(request, HTTPStatus.BAD_REQUEST, title="Link incomplete", message=problem)
        session = uia.live_session(session_id)
        if session is None:
            return page(
                request,
                HTTPStatus.BAD_REQUEST,
                title="Session expired",
                message="This authentication session is unknown or has expired; "
                "start again from your app.",
            )
        if auth_type in session.completed:
            return done(request)
        if not comes_next(session, auth_type):
            # The same answer as the API's for a stage no offered flow has next.
            return page(
                request,
                HTTPStatus.BAD_REQUEST,
                title="Step not needed",
                message="This authentication does not ask for this step now; return to your app.",
            )
        return session

    async def show(request: MatrixRequest, auth_type: str) -> tuple[int, Any]:
        checked = session_for(request, auth_type)
        if not isinstance(checked, UiaSession):
            return checked
        return form(request, auth_type, checked)

    async def submit(request: MatrixRequest, auth_type: str) -> tuple[int, Any]:
        checked = session_for(request, auth_type)
        if not isinstance(checked, UiaSession):
            return checked
        session = checked
        try:
            auth = stage_auth(request, auth_type, session)
            failure = await uia.complete_stage(
                session.session_id, auth_type, auth, client_ip=request.client_ip()
            )
        except MatrixError as refused:
            # A malformed form: say so on the page, with its status.
            for name, value in refused.headers.items():
                request.responseHeaders.setRawHeaders(name.encode(), [value.encode()])
            return form(request, auth_type, session, refused.message, refused.status)
        except defer.CancelledError:
            raise
        except Exception:
            # A page for people: a bug still answers HTML, and the traceback is logged.
            logger.exception("UIA fallback page: stage %s failed", auth_type)
            return page(
                request,
                HTTPStatus.INTERNAL_SERVER_ERROR,
                title="Something went wrong",
                message="The server could not check this step; try again later.",
            )
        if failure is not None:
            # Rate limiting answers Retry-After, like the API.
            for name, value in failure.headers.items():
                request.responseHeaders.setRawHeaders(name.encode(), [value.encode()])
            return form(request, auth_type, session, failure.message, failure.status)
        return done(request)

    def stage_auth(request: MatrixRequest, auth_type: str, session: UiaSession) -> dict[str, Any]:
        """The ``auth`` dict the API would get for this stage, from the form."""
        auth: dict[str, Any] = {"type": auth_type, "session": session.session_id}
        if auth_type == PASSWORD:
            user = session.user_id or form_field(request, "user")
            if not user:
                raise errors.missing_param("user")
            auth["identifier"] = {"type": "m.id.user", "user": user}
            auth["password"] = form_field(request, "password") or ""
        elif auth_type == REGISTRATION_TOKEN:
            auth["token"] = form_field(request, "token") or ""
        return auth

    for path in client_paths(PATH):
        router.register("GET", path, show)
        router.register("POST", path, submit)
