"""Profiles of other servers' users: ``GET /_matrix/federation/v1/query/profile``,
remembered for a short while.

Profiles change rarely and clients ask for them often (every member list, every
mention), so an answer is kept :data:`CACHE_TTL_MS`; concurrent requests for one
user share one query.  What the remote server says is checked: only strings are
kept, display names are capped, and an avatar must be an ``mxc://`` URI.

spec: server-server-api.md#get_matrixfederationv1queryprofile (data/api/
server-server/query.yaml)
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from federation.client.errors import FederationRequestError, FederationUnreachable
from federation.client.http import FederationHttpClient
from federation.queries.remote_errors import bad_gateway, remote_failure
from homeserver import errors
from homeserver.clock import Clock
from homeserver.identifiers import UserID
from homeserver.profile.fields import Profile
from homeserver.profile.handler import MAX_AVATAR_URL_LENGTH, MAX_DISPLAYNAME_LENGTH
from homeserver.util.single_flight import SingleFlight

PROFILE_PATH = "/_matrix/federation/v1/query/profile"
#: How long a remote profile is reused (Synapse asks every time; a minute keeps
#: member lists cheap and changes visible soon enough).
CACHE_TTL_MS = 60_000
#: Most profiles remembered; the oldest go first.
CACHE_SIZE = 10_000
#: A profile is two short strings: anything much bigger is not one.
MAX_RESPONSE_SIZE = 64 * 1024
QUERY_TIMEOUT_S = 10.0


class RemoteProfileQuery:
    """Implements ``homeserver.profile.handler.RemoteProfiles``."""

    def __init__(self, *, client: FederationHttpClient, clock: Clock) -> None:
        self._client = client
        self._clock = clock
        #: user ID -> (fetched at ms, profile), oldest first.
        self._cache: OrderedDict[str, tuple[int, Profile]] = OrderedDict()
        self._queries: SingleFlight[str, Profile] = SingleFlight()

    async def get_remote_profile(self, user_id: str) -> Profile:
        try:
            server = UserID.parse(user_id).domain
        except ValueError:
            raise errors.invalid_param("Invalid user ID") from None
        now = self._clock.time_msec()
        cached = self._cache.get(user_id)
        if cached is not None and now - cached[0] < CACHE_TTL_MS:
            return cached[1]
        return await self._queries.run(user_id, lambda: self._query(server, user_id))

    async def _query(self, server: str, user_id: str) -> Profile:
        try:
            body = await self._client.get_json(
                server,
                PROFILE_PATH,
                args={"user_id": user_id},
                timeout=QUERY_TIMEOUT_S,
                max_size=MAX_RESPONSE_SIZE,
            )
        except (FederationRequestError, FederationUnreachable) as error:
            raise remote_failure(error, "Profile") from None
        if not isinstance(body, dict):
            raise bad_gateway(f"{server} answered the profile query with no JSON object")
        profile = parse_profile(body)
        self._cache[user_id] = (self._clock.time_msec(), profile)
        self._cache.move_to_end(user_id)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return profile


def parse_profile(body: dict[str, Any]) -> Profile:
    """The fields of a remote server's answer that make sense; others are dropped."""
    displayname = body.get("displayname")
    avatar_url = body.get("avatar_url")
    if not isinstance(displayname, str) or len(displayname) > MAX_DISPLAYNAME_LENGTH:
        displayname = None
    if (
        not isinstance(avatar_url, str)
        or len(avatar_url) > MAX_AVATAR_URL_LENGTH
        or not avatar_url.startswith("mxc://")
    ):
        avatar_url = None
    return Profile(displayname=displayname, avatar_url=avatar_url)
