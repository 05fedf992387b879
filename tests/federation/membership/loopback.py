"""Two servers in one test process: each side's asking client reaches the other
side's serving handler directly, in place of HTTP (the transport is tested on its
own; here both sides of each handshake are ours and real).  Errors come back as
the outbound client raises them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from federation.client.errors import FederationRequestError, FederationUnreachable
from federation.membership.serving import Handshake, MembershipServing
from homeserver.errors import MatrixError


class LoopbackClient:
    """``FederationJsonClient`` answering from ``serving`` (set once both sides exist),
    for requests of ``origin``."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.serving: MembershipServing | None = None
        self.requests: list[tuple[str, str]] = []
        #: Every request fails as if the other server were down.
        self.unreachable = False
        #: The other server knows only ``/v1/invite`` (as servers before v2 did).
        self.v1_invites_only = False

    async def get_json(
        self,
        destination: str,
        path: str,
        *,
        args: Mapping[str, str | Sequence[str]] | None = None,
        max_size: int = 64 * 1024 * 1024,
    ) -> Any:
        self.requests.append(("GET", path))
        parts = [unquote(part) for part in path.split("/")]
        # /_matrix/federation/v1/make_<handshake>/<room>/<user>
        handshake = parts[4].removeprefix("make_")
        assert handshake in ("join", "leave", "knock"), path
        ver = (args or {}).get("ver")
        versions = [ver] if isinstance(ver, str) else (list(ver) if ver is not None else None)
        return await self._answer(
            destination,
            self._serving().make(self.origin, _handshake(handshake), parts[5], parts[6], versions),
        )

    async def put_json(
        self,
        destination: str,
        path: str,
        body: object,
        *,
        args: Mapping[str, str | Sequence[str]] | None = None,
        max_size: int = 0,
    ) -> Any:
        self.requests.append(("PUT", path))
        parts = [unquote(part) for part in path.split("/")]
        endpoint, room_id, event_id = parts[4], parts[5], parts[6]
        serving = self._serving()
        if endpoint == "send_join":
            return await self._answer(
                destination, serving.send_join(self.origin, room_id, event_id, body)
            )
        if endpoint == "send_leave":
            await self._answer(
                destination, serving.send_leave(self.origin, room_id, event_id, body)
            )
            return {}
        if endpoint == "send_knock":
            return await self._answer(
                destination, serving.send_knock(self.origin, room_id, event_id, body)
            )
        assert endpoint == "invite", path
        assert isinstance(body, dict)
        version = parts[3]
        if self.v1_invites_only:
            if version == "v2":
                raise FederationRequestError(
                    destination, 404, errcode="M_UNRECOGNIZED", error="Unrecognized request"
                )
            # v1: the PDU itself, its stripped state in unsigned; rooms of v1 or v2.
            unsigned = body.get("unsigned", {})
            event = {key: value for key, value in body.items() if key != "unsigned"}
            v2_body = {
                "room_version": "1",
                "event": event,
                "invite_room_state": unsigned.get("invite_room_state", []),
            }
            answer = await self._answer(
                destination, serving.invite(self.origin, room_id, event_id, v2_body)
            )
            return [200, answer]
        return await self._answer(destination, serving.invite(self.origin, room_id, event_id, body))

    def _serving(self) -> MembershipServing:
        assert self.serving is not None, "the other side is not built yet"
        if self.unreachable:
            raise FederationUnreachable(self.origin, "connection refused (test)")
        return self.serving

    async def _answer(self, destination: str, answer: Any) -> Any:
        try:
            return await answer
        except MatrixError as error:
            raise FederationRequestError(
                destination,
                error.status,
                errcode=error.errcode,
                error=error.message,
                body=error.to_json(),
            ) from None


def _handshake(name: str) -> Handshake:
    if name == "join":
        return "join"
    if name == "leave":
        return "leave"
    assert name == "knock"
    return "knock"
