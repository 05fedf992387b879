"""Building queries and media over federation (``federation/assembly.py`` calls
:func:`build_queries`): the asking side is handed to the homeserver handlers that
name it (profiles, directory, space hierarchy, remote media), the serving side
registers its servlets.
"""

from __future__ import annotations

import attrs

from federation.client.assembly import FederationClient
from federation.protocols import JoinedServers, ServerAclCheck
from federation.queries.directory import RemoteDirectoryQuery
from federation.queries.hierarchy import RemoteHierarchyQuery
from federation.queries.media import FederationMediaSource
from federation.queries.profiles import RemoteProfileQuery
from federation.queries.serving import QueryServing
from federation.servlets import media as media_servlets
from federation.servlets import queries as query_servlets
from federation.transport.server import FederationRequestAuthenticator
from homeserver.api.client import openid as openid_servlet
from homeserver.auth.openid import OpenIdTokens
from homeserver.auth.tokens import AccessTokenHandler
from homeserver.clock import Clock
from homeserver.config.model import HomeServerConfig
from homeserver.directory.handler import DirectoryHandler
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.server import Router
from homeserver.media.assembly import MediaServices
from homeserver.profile.handler import ProfileHandler
from homeserver.rooms.hierarchy import SpaceHierarchyHandler
from homeserver.storage.database import Database
from homeserver.storage.openid_tokens import OpenIdTokenStore

#: Listener resources that serve the queries and media (``/_matrix/federation/...``).
FEDERATION_RESOURCES = frozenset({"federation"})
#: ``/openid/userinfo`` is also served alone, on an ``openid`` listener (as Synapse).
OPENID_RESOURCES = frozenset({"federation", "openid"})


@attrs.define
class QueryServices:
    serving: QueryServing
    openid: OpenIdTokens
    authenticator: FederationRequestAuthenticator
    client_authenticator: RequestAuthenticator
    media: MediaServices
    server_name: str
    serve_media: bool

    def register_servlets(self, router: Router, resources: frozenset[str]) -> None:
        if resources & FEDERATION_RESOURCES:
            query_servlets.register(router, authenticator=self.authenticator, serving=self.serving)
            if self.serve_media:
                media_servlets.register(
                    router,
                    authenticator=self.authenticator,
                    media=self.media,
                    server_name=self.server_name,
                )
        if resources & OPENID_RESOURCES:
            query_servlets.register_openid(router, openid_user=self.openid.user_of)
        if "client" in resources:
            openid_servlet.register(
                router, authenticator=self.client_authenticator, tokens=self.openid
            )


def build_queries(
    *,
    config: HomeServerConfig,
    clock: Clock,
    client: FederationClient,
    authenticator: FederationRequestAuthenticator,
    joined_servers: JoinedServers,
    acl: ServerAclCheck,
    profiles: ProfileHandler,
    directory: DirectoryHandler,
    hierarchy: SpaceHierarchyHandler,
    media: MediaServices,
    tokens: AccessTokenHandler,
    database: Database,
) -> QueryServices:
    server_name = config.server_name
    if config.federation.enabled:
        # Only a server that federates asks others; otherwise the handlers keep
        # answering 404 (or 502 for media) for remote things.
        profiles.use_remote_profiles(RemoteProfileQuery(client=client.http, clock=clock))
        directory.use_remote_directory(RemoteDirectoryQuery(client=client.http))
        hierarchy.use_remote_hierarchy(
            RemoteHierarchyQuery(server_name=server_name, client=client.http, clock=clock)
        )
        media.remote.use_remote_source(
            FederationMediaSource(
                client=client.http,
                http=client.well_known_http,
                threads=media.threads,
                temp_dir=media.repository.temp_dir,
            )
        )
    serving = QueryServing(
        server_name=server_name,
        profiles=profiles,
        directory=directory,
        hierarchy=hierarchy,
        joined_servers=joined_servers,
        acl=acl,
        allow_public_rooms=config.federation.allow_public_rooms_over_federation,
    )
    return QueryServices(
        serving=serving,
        openid=OpenIdTokens(server_name=server_name, clock=clock, store=OpenIdTokenStore(database)),
        authenticator=authenticator,
        client_authenticator=RequestAuthenticator(tokens),
        media=media,
        server_name=server_name,
        serve_media=config.media.enabled,
    )
