"""``POST /search``: server-side search of room events.

spec: client-server-api/modules/search.md, data/api/client-server/search.yaml
"""

from __future__ import annotations

from typing import Any

from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import parse_json_object, query_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, cancel_on_disconnect, client_paths
from homeserver.search.criteria import parse_search_body
from homeserver.search.handler import SearchHandler


def register(router: Router, authenticator: RequestAuthenticator, search: SearchHandler) -> None:
    @cancel_on_disconnect
    async def post_search(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        criteria = parse_search_body(parse_json_object(request))
        return 200, await search.search(requester, criteria, query_str(request, "next_batch"))

    for path in client_paths("/search"):
        router.register("POST", path, post_search)
