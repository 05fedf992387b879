"""The key API (unauthenticated): our own keys, and other servers' keys as a notary.

- ``GET /_matrix/key/v2/server`` (and the deprecated ``/server/{keyId}``, which
  gets the same answer): our signed key response.
- ``GET /_matrix/key/v2/query/{serverName}`` (``minimum_valid_until_ts``; the
  deprecated ``/query/{serverName}/{keyId}`` form too) and
  ``POST /_matrix/key/v2/query``: other servers' key responses, countersigned.
  Rate limited per client address (``rc_key_query``) when answering makes us
  fetch keys from other servers (``federation/keys/notary.py``).

spec: server-server-api.md#retrieving-server-keys,
data/api/server-server/keys_server.yaml, keys_query.yaml
"""

from __future__ import annotations

from typing import Any

from federation.keys.local import LocalServerKeys
from federation.keys.notary import KeyNotary, KeyQuery
from homeserver import errors
from homeserver.http.parsing import parse_json_object, query_int
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router
from homeserver.identifiers import is_valid_server_name

#: Servers one query may name.  Synapse asks a notary for every server of a room it
#: joins at once, so this is generous; each may cost an outbound request.
MAX_SERVERS_PER_QUERY = 500
#: Key IDs asked of one server (real servers have one or two current keys).
MAX_KEY_IDS_PER_SERVER = 50
_MAX_KEY_ID_LENGTH = 255


def register(router: Router, *, local_keys: LocalServerKeys, notary: KeyNotary) -> None:
    async def server_keys(request: MatrixRequest, key_id: str | None = None) -> tuple[int, Any]:
        # The key ID was never honoured by servers (spec v1.6 removed it): every key.
        return 200, local_keys.server_keys_response()

    async def query_server(
        request: MatrixRequest, server_name: str, key_id: str | None = None
    ) -> tuple[int, Any]:
        _check_server_name(server_name)
        minimum = query_int(request, "minimum_valid_until_ts")
        if key_id is not None:
            _check_key_id(key_id)
            query = KeyQuery(server_name, {key_id: minimum})
        else:
            query = KeyQuery(server_name, {}, minimum)
        return 200, {"server_keys": await notary.query([query], requester=request.client_ip())}

    async def query_servers(request: MatrixRequest) -> tuple[int, Any]:
        queries = parse_key_queries(parse_json_object(request))
        return 200, {"server_keys": await notary.query(queries, requester=request.client_ip())}

    router.register("GET", "/_matrix/key/v2/server", server_keys)
    router.register("GET", "/_matrix/key/v2/server/{key_id}", server_keys)
    router.register("GET", "/_matrix/key/v2/query/{server_name}", query_server)
    router.register("GET", "/_matrix/key/v2/query/{server_name}/{key_id}", query_server)
    router.register("POST", "/_matrix/key/v2/query", query_servers)


def parse_key_queries(body: dict[str, Any]) -> list[KeyQuery]:
    """The queries of a ``POST /_matrix/key/v2/query`` body (400 if malformed)."""
    if "server_keys" not in body:
        raise errors.missing_param("server_keys")
    server_keys = body["server_keys"]
    if not isinstance(server_keys, dict):
        raise errors.bad_json("'server_keys' must be an object")
    if len(server_keys) > MAX_SERVERS_PER_QUERY:
        raise errors.invalid_param(
            f"At most {MAX_SERVERS_PER_QUERY} servers may be queried at once"
        )
    queries = []
    for server_name, criteria_by_key in server_keys.items():
        _check_server_name(server_name)
        if not isinstance(criteria_by_key, dict):
            raise errors.bad_json(f"server_keys[{server_name!r}] must be an object")
        if len(criteria_by_key) > MAX_KEY_IDS_PER_SERVER:
            raise errors.invalid_param(
                f"At most {MAX_KEY_IDS_PER_SERVER} key IDs may be queried per server"
            )
        key_ids: dict[str, int | None] = {}
        for key_id, criteria in criteria_by_key.items():
            _check_key_id(key_id)
            if not isinstance(criteria, dict):
                raise errors.bad_json(f"server_keys[{server_name!r}][{key_id!r}] must be an object")
            minimum = criteria.get("minimum_valid_until_ts")
            if minimum is not None and (isinstance(minimum, bool) or not isinstance(minimum, int)):
                raise errors.bad_json("'minimum_valid_until_ts' must be an integer")
            key_ids[key_id] = minimum
        queries.append(KeyQuery(server_name, key_ids))
    return queries


def _check_server_name(server_name: str) -> None:
    if not is_valid_server_name(server_name):
        raise errors.invalid_param(f"{server_name!r} is not a valid server name")


def _check_key_id(key_id: str) -> None:
    if not key_id or len(key_id) > _MAX_KEY_ID_LENGTH:
        raise errors.invalid_param("Key IDs must be 1 to 255 characters long")
