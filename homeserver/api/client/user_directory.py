"""``POST /user_directory/search``.

spec: client-server-api/_index.md#post_matrixclientv3user_directorysearch
(data/api/client-server/users.yaml)
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.auth.tokens import AccessTokenHandler
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import parse_json_object, require_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, cancel_on_disconnect, client_paths
from homeserver.userdir.handler import UserDirectoryHandler

#: spec: "Defaults to 10."
DEFAULT_LIMIT = 10
#: Larger limits are served as this many (Synapse caps at 50 too); a client asking
#: for more sees ``limited`` and can narrow its search.
MAX_LIMIT = 50


def register(router: Router, tokens: AccessTokenHandler, directory: UserDirectoryHandler) -> None:
    authenticator = RequestAuthenticator(tokens)

    # The search only reads, but for the catch-up of new accounts, whose writes are
    # each one transaction (finished by its thread if cancelled) and idempotent.
    @cancel_on_disconnect
    async def search(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        term = require_str(body, "search_term")
        limit = body.get("limit", DEFAULT_LIMIT)
        # bool is an int in Python, not in JSON.
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise errors.bad_json("'limit' must be an integer")
        if limit < 0:
            raise errors.invalid_param("'limit' must not be negative")
        found = await directory.search(requester.user_id, term, min(limit, MAX_LIMIT))
        results = []
        for hit in found.results:
            result = {"user_id": hit.user_id}
            if hit.display_name is not None:
                result["display_name"] = hit.display_name
            if hit.avatar_url is not None:
                result["avatar_url"] = hit.avatar_url
            results.append(result)
        return 200, {"results": results, "limited": found.limited}

    for path in client_paths("/user_directory/search"):
        router.register("POST", path, search)
