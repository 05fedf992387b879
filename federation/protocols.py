"""What federation modules need of each other, named once.

Each module takes its collaborators through these ``Protocol`` types (see
docs/architecture.md, layering), so tests can hand over the real objects built
differently and no module imports another's implementation just for a type.  The
implementations are named in each docstring.  Also :func:`server_of`, the one way
federation code reads the server of a user ID.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from homeserver.identifiers import UserID


class SignatureVerifier(Protocol):
    """The keyring (``federation.keys.keyring.Keyring``)."""

    async def verify_json_for_server(
        self, server_name: str, json_object: Mapping[str, Any], valid_at_ts: int
    ) -> None:
        """Return if ``json_object`` carries a valid signature of ``server_name`` by a
        key valid at ``valid_at_ts``; raise ``KeyVerificationError`` otherwise."""


class ServerAclCheck(Protocol):
    """A room's server ACL (``federation.acl.ServerAcl``): for requests, 403
    ``M_FORBIDDEN`` when ``m.room.server_acl`` denies ``origin``."""

    async def check(self, origin: str, room_id: str) -> None: ...


class ServerAclFilter(Protocol):
    """A room's server ACL (``federation.acl.ServerAcl``) as a yes/no, for what is
    dropped rather than refused (PDUs and EDUs of a transaction)."""

    async def allows(self, origin: str, room_id: str) -> bool: ...


class FederationGetter(Protocol):
    """GET requests to other servers, the answer's JSON body
    (``federation.client.http.FederationHttpClient``); what reading history needs
    (``/backfill``, ``/timestamp_to_event``, ``/event``)."""

    async def get_json(
        self,
        destination: str,
        path: str,
        *,
        args: Mapping[str, str | Sequence[str]] | None = None,
        timeout: float = ...,  # noqa: ASYNC109 (a Twisted coroutine)
        max_size: int = ...,
    ) -> Any: ...


class FederationReader(FederationGetter, Protocol):
    """Reads from other servers (``federation.client.http.FederationHttpClient``),
    some of which are POSTs: ``/get_missing_events`` carries its lists in a body
    (spec: server-server-api.md#post_matrixfederationv1get_missing_eventsroomid)."""

    async def post_json(
        self,
        destination: str,
        path: str,
        body: object,
        *,
        args: Mapping[str, str | Sequence[str]] | None = None,
        timeout: float = ...,  # noqa: ASYNC109 (a Twisted coroutine)
        max_size: int = ...,
    ) -> Any: ...


class JoinedServers(Protocol):
    """The servers with a member joined to a room in its current state
    (``homeserver.storage.event_graph.EventGraphStore``)."""

    async def get_joined_servers(self, room_id: str) -> Collection[str]: ...


def server_of(user_id: str) -> str | None:
    """The server of a valid user ID, None if ``user_id`` is not one (a bare
    ``domain_of`` would take anything after a colon)."""
    try:
        return UserID.parse(user_id).domain
    except ValueError:
        return None
