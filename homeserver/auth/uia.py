"""User-interactive authentication: flows, stages and sessions (rules only, no SQL).

A request to a protected endpoint without ``auth`` gets a 401 listing the flows
and a new session.  The client completes stages by resending the request with an
``auth`` dict naming the session; when every stage of one flow is done (in order),
the endpoint runs.  Sessions remember the request's parameters, so a client may
resend only ``auth``, and they expire after a while.

Sessions are held in this process's memory: fine for one process; with several
workers, UIA endpoints must be routed to one of them (the ``auth`` role).

spec: client-server-api/_index.md#user-interactive-authentication-api
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import attrs

from homeserver import errors
from homeserver.clock import Clock
from homeserver.errors import Codes, MatrixError

logger = logging.getLogger(__name__)

DUMMY = "m.login.dummy"
PASSWORD = "m.login.password"
REGISTRATION_TOKEN = "m.login.registration_token"

#: How long an unfinished session is kept (Synapse keeps them for a similar time).
SESSION_LIFETIME_SECONDS = 30 * 60.0

Flows = list[list[str]]


@attrs.define
class UiaSession:
    session_id: str
    #: The endpoint the session was started for; it may not be reused for another.
    operation: str
    params: dict[str, Any]
    completed: list[str]
    #: What each completed stage established (the user ID for a password, the token...).
    results: dict[str, Any]
    expires_at: float
    #: The flows the endpoint offered, and the user it was started by (None for
    #: registration): what the fallback web page needs to complete a stage.
    flows: Flows = attrs.field(factory=list)
    user_id: str | None = None


def comes_next(session: UiaSession, stage_type: str) -> bool:
    """Whether ``stage_type`` is the next stage of one of the session's flows after
    those it completed (spec: a flow's stages must be completed in order)."""
    done = len(session.completed)
    return any(
        len(flow) > done and flow[:done] == session.completed and flow[done] == stage_type
        for flow in session.flows
    )


class StageRefused(MatrixError):
    """A stage that succeeded for the wrong account: the request is refused outright
    (403) instead of asking for the stage again (401).  Synapse answers a password
    of another user in UIA with 403 ``M_FORBIDDEN`` ("Invalid auth")."""

    def __init__(self, message: str) -> None:
        super().__init__(HTTPStatus.FORBIDDEN, Codes.FORBIDDEN, message)


@attrs.frozen
class StageContext:
    session: UiaSession
    #: The authenticated user making the request, if the endpoint has one.
    requester_user_id: str | None
    client_ip: str


#: Checks one stage's ``auth`` dict; returns what it established or raises MatrixError.
StageChecker = Callable[[dict[str, Any], StageContext], Awaitable[Any]]


@attrs.frozen
class UiaResult:
    #: The request's parameters: this request's, or those stored with the session.
    params: dict[str, Any]
    results: dict[str, Any]
    session_id: str


class UiaRequired(MatrixError):
    """The 401 answer: flows, params, session, completed stages and maybe an error."""

    def __init__(
        self, session: UiaSession, flows: Flows, params: dict[str, Any], failure: MatrixError | None
    ) -> None:
        message = failure.message if failure is not None else "Additional authentication required"
        errcode = failure.errcode if failure is not None else Codes.UNKNOWN
        super().__init__(HTTPStatus.UNAUTHORIZED, errcode, message)
        self.body: dict[str, Any] = {
            "flows": [{"stages": list(flow)} for flow in flows],
            "params": params,
            "session": session.session_id,
            "completed": list(session.completed),
        }
        if failure is not None:
            self.body["errcode"] = failure.errcode
            self.body["error"] = failure.message
        self.failed = failure is not None

    def to_json(self) -> dict[str, Any]:
        return dict(self.body)


async def _dummy_stage(auth: dict[str, Any], context: StageContext) -> Any:
    return True


class UserInteractiveAuth:
    def __init__(
        self,
        clock: Clock,
        *,
        session_lifetime: float = SESSION_LIFETIME_SECONDS,
        stages: Mapping[str, StageChecker] | None = None,
        on_session_expired: Sequence[Callable[[UiaSession], Awaitable[None]]] = (),
    ) -> None:
        """``stages``: checkers by stage type, besides ``m.login.dummy``."""
        self._clock = clock
        self._lifetime = session_lifetime
        self._sessions: dict[str, UiaSession] = {}
        self._last_sweep = 0.0
        self._stages: dict[str, StageChecker] = {DUMMY: _dummy_stage, **(stages or {})}
        #: Called with each session that expires unfinished (e.g. to release a
        #: registration token's pending use).
        self.on_session_expired: list[Callable[[UiaSession], Awaitable[None]]] = list(
            on_session_expired
        )

    def register_stage(self, stage_type: str, checker: StageChecker) -> None:
        self._stages[stage_type] = checker

    async def authenticate(
        self,
        body: dict[str, Any],
        *,
        operation: str,
        flows: Flows,
        requester_user_id: str | None = None,
        client_ip: str = "-",
        stage_params: dict[str, Any] | None = None,
    ) -> UiaResult:
        """Run one round of UIA for a request body; returns when a flow is complete.

        Raises :class:`UiaRequired` (401) while stages remain, and other Matrix errors
        (400, 429) for requests that are wrong in other ways.
        """
        await self._expire_sessions()
        params = {key: value for key, value in body.items() if key != "auth"}
        auth = body.get("auth")
        if auth is not None and not isinstance(auth, dict):
            raise errors.bad_json("'auth' must be an object")
        session = self._session_for(auth, operation, params)
        session.flows = flows
        if session.user_id is None:
            session.user_id = requester_user_id
        if params:
            # Clients may resend the parameters; the latest ones count.
            session.params = params
        stage_params = stage_params or {}
        stage_type = auth.get("type") if auth else None
        if stage_type is not None:
            if not isinstance(stage_type, str):
                raise errors.bad_json("'auth.type' must be a string")
            if stage_type not in session.completed:
                failure = await self._run_stage(
                    stage_type, auth or {}, session, requester_user_id, client_ip
                )
                if failure is not None:
                    raise UiaRequired(session, flows, stage_params, failure)
        if any(flow == session.completed for flow in flows):
            del self._sessions[session.session_id]
            return UiaResult(dict(session.params), dict(session.results), session.session_id)
        raise UiaRequired(session, flows, stage_params, None)

    def live_session(self, session_id: str) -> UiaSession | None:
        """The unexpired session ``session_id``, or None."""
        session = self._sessions.get(session_id)
        if session is None or session.expires_at <= self._clock.time():
            return None
        return session

    async def complete_stage(
        self, session_id: str, stage_type: str, auth: dict[str, Any], *, client_ip: str = "-"
    ) -> MatrixError | None:
        """Complete one stage of a session outside its endpoint: the fallback web page
        (spec: client-server-api/_index.md#fallback).  The client then retries its
        request with just the session.  Returns why the stage failed (any Matrix
        error of its checker, with its status), or None."""
        session = self.live_session(session_id)
        if session is None:
            return MatrixError(HTTPStatus.BAD_REQUEST, Codes.UNKNOWN, "Unknown or expired session")
        if stage_type in session.completed:
            return None
        try:
            return await self._run_stage(stage_type, auth, session, session.user_id, client_ip)
        except MatrixError as refused:
            return refused

    def _session_for(
        self, auth: dict[str, Any] | None, operation: str, params: dict[str, Any]
    ) -> UiaSession:
        session_id = auth.get("session") if auth else None
        if session_id is None:
            return self._new_session(operation, params)
        if not isinstance(session_id, str):
            raise errors.bad_json("'auth.session' must be a string")
        session = self._sessions.get(session_id)
        if session is not None and session.expires_at <= self._clock.time():
            session = None
        if session is None:
            raise MatrixError(HTTPStatus.BAD_REQUEST, Codes.UNKNOWN, "Unknown or expired session")
        if session.operation != operation:
            raise errors.forbidden("The session was started for a different request")
        return session

    def _new_session(self, operation: str, params: dict[str, Any]) -> UiaSession:
        session = UiaSession(
            session_id=secrets.token_urlsafe(18),
            operation=operation,
            params=params,
            completed=[],
            results={},
            expires_at=self._clock.time() + self._lifetime,
        )
        self._sessions[session.session_id] = session
        return session

    async def _run_stage(
        self,
        stage_type: str,
        auth: dict[str, Any],
        session: UiaSession,
        requester_user_id: str | None,
        client_ip: str,
    ) -> MatrixError | None:
        """Check one stage; the failure to report in the 401, or None on success."""
        checker = self._stages.get(stage_type)
        if not comes_next(session, stage_type) or checker is None:
            return MatrixError(
                HTTPStatus.BAD_REQUEST,
                Codes.UNKNOWN,
                f"Auth type {stage_type!r} is not expected here",
            )
        context = StageContext(session, requester_user_id, client_ip)
        try:
            result = await checker(auth, context)
        except (UiaRequired, StageRefused):
            raise
        except MatrixError as error:
            if error.status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
                return error
            raise
        session.completed.append(stage_type)
        session.results[stage_type] = result
        return None

    async def _expire_sessions(self) -> None:
        now = self._clock.time()
        # A sweep walks every session, so it runs at most once a minute, not per request.
        if now - self._last_sweep < 60.0:
            return
        self._last_sweep = now
        expired = [s for s in self._sessions.values() if s.expires_at <= now]
        for session in expired:
            del self._sessions[session.session_id]
            for callback in self.on_session_expired:
                try:
                    await callback(session)
                except Exception:
                    logger.warning("UIA session expiry callback failed", exc_info=True)
