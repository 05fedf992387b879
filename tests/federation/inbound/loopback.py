"""Two of our servers' stores side by side in one test, joined by a loopback
"network": requests go straight to the other side's read handler (what its servlets
would call), with JSON round trips and errors shaped as the real client raises them.

For the handler-level tests of fetching missing events; the same paths over real
HTTP and TLS are what the federation harness (tests/support/federation.py) runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from federation.client.errors import FederationRequestError, FederationUnreachable
from federation.inbound.event_reads import EventReadHandler
from homeserver.errors import MatrixError

_V1 = "/_matrix/federation/v1/"


class LoopbackFederation:
    """The outbound client of ``origin``: it reaches the servers in ``servers``."""

    def __init__(self, origin: str, servers: Mapping[str, EventReadHandler]) -> None:
        self._origin = origin
        self._servers = servers
        self.requests: list[tuple[str, str]] = []

    async def get_json(
        self,
        destination: str,
        path: str,
        *,
        args: Mapping[str, str | Sequence[str]] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a Twisted coroutine)
        max_size: int = 0,
    ) -> Any:
        reads = self._reach(destination, path)
        parts = [unquote(p) for p in path[len(_V1) :].split("/")]
        event_id = str((args or {}).get("event_id", ""))
        try:
            if parts[0] == "event":
                answer = await reads.get_event(self._origin, parts[1])
            elif parts[0] == "state_ids":
                answer = await reads.get_state_ids(self._origin, parts[1], event_id)
            elif parts[0] == "state":
                answer = await reads.get_state(self._origin, parts[1], event_id)
            elif parts[0] == "event_auth":
                answer = await reads.get_event_auth(self._origin, parts[1], parts[2])
            else:
                raise FederationRequestError(destination, 404, errcode="M_UNRECOGNIZED")
        except MatrixError as error:
            raise FederationRequestError(
                destination, error.status, errcode=error.errcode, error=error.message
            ) from None
        return json.loads(json.dumps(answer))

    async def post_json(
        self,
        destination: str,
        path: str,
        body: object,
        *,
        args: Mapping[str, str | Sequence[str]] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a Twisted coroutine)
        max_size: int = 0,
    ) -> Any:
        reads = self._reach(destination, path)
        parts = [unquote(p) for p in path[len(_V1) :].split("/")]
        assert parts[0] == "get_missing_events" and isinstance(body, dict), path
        try:
            answer = await reads.get_missing_events(
                self._origin,
                parts[1],
                earliest=body["earliest_events"],
                latest=body["latest_events"],
                limit=body["limit"],
                min_depth=body["min_depth"],
            )
        except MatrixError as error:
            raise FederationRequestError(
                destination, error.status, errcode=error.errcode, error=error.message
            ) from None
        return json.loads(json.dumps(answer))

    def _reach(self, destination: str, path: str) -> EventReadHandler:
        self.requests.append((destination, path))
        reads = self._servers.get(destination)
        if reads is None:
            raise FederationUnreachable(destination, "no route to host")
        return reads
