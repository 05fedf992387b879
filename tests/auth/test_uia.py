"""The user-interactive auth engine, with a fake clock and fake stages."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import task

from homeserver import errors
from homeserver.auth.uia import (
    DUMMY,
    StageContext,
    UiaRequired,
    UiaSession,
    UserInteractiveAuth,
)
from homeserver.clock import Clock
from homeserver.errors import MatrixError


def _uia() -> tuple[UserInteractiveAuth, task.Clock]:
    reactor = task.Clock()
    uia = UserInteractiveAuth(Clock(reactor), session_lifetime=60)

    async def secret_stage(auth: dict[str, Any], context: StageContext) -> str:
        if auth.get("secret") != "sesame":
            raise errors.forbidden("wrong secret")
        return "opened"

    async def limited_stage(auth: dict[str, Any], context: StageContext) -> str:
        raise errors.limit_exceeded(1.0)

    uia.register_stage("x.secret", secret_stage)
    uia.register_stage("x.limited", limited_stage)
    return uia, reactor


async def _required(
    uia: UserInteractiveAuth, body: dict[str, Any], flows: list[list[str]]
) -> UiaRequired:
    with pytest.raises(UiaRequired) as caught:
        await uia.authenticate(body, operation="op", flows=flows)
    return caught.value


@pytest_twisted.ensureDeferred
async def test_no_auth_gets_flows_and_a_session() -> None:
    uia, _ = _uia()
    required = await _required(uia, {"a": 1}, [["x.secret", DUMMY]])
    assert required.status == 401
    body = required.to_json()
    assert body["flows"] == [{"stages": ["x.secret", DUMMY]}]
    assert body["completed"] == [] and body["params"] == {}
    assert "errcode" not in body


@pytest_twisted.ensureDeferred
async def test_stages_complete_in_order_and_params_are_remembered() -> None:
    uia, _ = _uia()
    flows = [["x.secret", DUMMY]]
    session = (await _required(uia, {"a": 1}, flows)).to_json()["session"]
    out_of_order = await _required(uia, {"auth": {"type": DUMMY, "session": session}}, flows)
    assert out_of_order.to_json()["errcode"] == "M_UNKNOWN"
    failed = await _required(uia, {"auth": {"type": "x.secret", "session": session}}, flows)
    assert failed.to_json()["errcode"] == "M_FORBIDDEN"
    assert failed.to_json()["completed"] == []
    step = await _required(
        uia, {"auth": {"type": "x.secret", "secret": "sesame", "session": session}}, flows
    )
    assert step.to_json()["completed"] == ["x.secret"]
    assert "errcode" not in step.to_json()
    # Retrying a completed stage is harmless.
    again = await _required(uia, {"auth": {"type": "x.secret", "session": session}}, flows)
    assert again.to_json()["completed"] == ["x.secret"]
    result = await uia.authenticate(
        {"auth": {"type": DUMMY, "session": session}}, operation="op", flows=flows
    )
    assert result.params == {"a": 1}
    assert result.results == {"x.secret": "opened", DUMMY: True}


@pytest_twisted.ensureDeferred
async def test_a_single_request_can_complete_a_one_stage_flow() -> None:
    uia, _ = _uia()
    result = await uia.authenticate(
        {"auth": {"type": DUMMY}, "b": 2}, operation="op", flows=[[DUMMY]]
    )
    assert result.params == {"b": 2}


@pytest_twisted.ensureDeferred
async def test_sessions_expire_and_report_it() -> None:
    uia, reactor = _uia()
    expired: list[UiaSession] = []

    async def note(session: UiaSession) -> None:
        expired.append(session)

    uia.on_session_expired.append(note)
    session = (await _required(uia, {}, [[DUMMY]])).to_json()["session"]
    reactor.advance(61)
    with pytest.raises(MatrixError) as caught:
        await uia.authenticate(
            {"auth": {"type": DUMMY, "session": session}}, operation="op", flows=[[DUMMY]]
        )
    assert caught.value.status == 400
    assert [s.session_id for s in expired] == [session]


@pytest_twisted.ensureDeferred
async def test_session_is_bound_to_its_operation() -> None:
    uia, _ = _uia()
    session = (await _required(uia, {}, [[DUMMY]])).to_json()["session"]
    with pytest.raises(MatrixError) as caught:
        await uia.authenticate(
            {"auth": {"type": DUMMY, "session": session}}, operation="other", flows=[[DUMMY]]
        )
    assert caught.value.status == 403


@pytest_twisted.ensureDeferred
async def test_errors_other_than_auth_failures_pass_through() -> None:
    uia, _ = _uia()
    with pytest.raises(MatrixError) as caught:
        await uia.authenticate(
            {"auth": {"type": "x.limited"}}, operation="op", flows=[["x.limited"]]
        )
    assert caught.value.status == 429
    bad: dict[str, Any]
    for bad in ({"auth": []}, {"auth": {"type": 1}}, {"auth": {"session": 5}}):
        with pytest.raises(MatrixError) as caught:
            await uia.authenticate(bad, operation="op", flows=[[DUMMY]])
        assert caught.value.errcode == "M_BAD_JSON"
