"""Where the keyring gets other servers' keys: from trusted notaries
(``POST /_matrix/key/v2/query``) and from the servers themselves
(``GET /_matrix/key/v2/server``).

Each fetcher returns only responses it has checked: the shape, the origin's own
signature with a key it lists and, from a notary, the notary's signature with one of
the keys configured for it.  Anything else — the remote unreachable, an error
status, a malformed or forged answer — is a :class:`KeyFetchError` naming the
source, which the keyring treats as "this source does not know".

They talk through :class:`KeyTransport`: the methods of the outbound federation
client (``federation.client.http.FederationHttpClient``) that they use, so a test
can serve key responses from a small transport of its own.

spec: server-server-api.md#retrieving-server-keys
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any, Protocol

import attrs
from signedjson.types import VerifyKey

from federation.client.errors import FederationRequestError, FederationUnreachable
from federation.keys.errors import KeyFetchError
from federation.keys.responses import (
    ServerKeyResponse,
    check_self_signed,
    decode_public_key,
    parse_key_response,
    verify_signature,
)

logger = logging.getLogger(__name__)

SERVER_KEYS_PATH = "/_matrix/key/v2/server"
KEY_QUERY_PATH = "/_matrix/key/v2/query"
#: A key response is a few hundred bytes; a server that sends more is not serving keys.
MAX_KEY_RESPONSE_BYTES = 256 * 1024
#: A notary answers about one server per request here: a few responses at most.
MAX_NOTARY_RESPONSE_BYTES = 1024 * 1024
MAX_NOTARY_ENTRIES = 50
#: Fetching keys is cheap for the remote: one that takes longer is unlikely to answer,
#: and a notary asking on someone's behalf cannot wait long (Synapse waits 10 s too).
DIRECT_TIMEOUT_SECONDS = 10.0
#: A notary may have to ask the origin itself first.
NOTARY_TIMEOUT_SECONDS = 30.0


class KeyTransport(Protocol):
    """What the fetchers use of the outbound federation client."""

    async def get_json(
        self,
        destination: str,
        path: str,
        *,
        timeout: float = ...,  # noqa: ASYNC109 - the client's own deadline
        ignore_backoff: bool = ...,
        authenticated: bool = ...,
        max_size: int = ...,
    ) -> Any: ...

    async def post_json(
        self,
        destination: str,
        path: str,
        body: object,
        *,
        timeout: float = ...,  # noqa: ASYNC109 - the client's own deadline
        max_size: int = ...,
    ) -> Any: ...


@attrs.frozen
class FetchedKeys:
    """A checked key response and the server that gave it to us."""

    from_server: str
    response: ServerKeyResponse


class KeyFetcher(Protocol):
    #: For messages: "notary matrix.org", "the server itself".
    @property
    def description(self) -> str: ...

    async def fetch(
        self, server_name: str, key_ids: Collection[str], minimum_valid_until_ts: int
    ) -> list[FetchedKeys]:
        """Checked responses about ``server_name``; :class:`KeyFetchError` if none."""
        ...


class DirectKeyFetcher:
    """Asks the server itself, whose response must be signed by itself."""

    description = "the server itself"

    def __init__(self, transport: KeyTransport, *, timeout: float = DIRECT_TIMEOUT_SECONDS) -> None:
        self._transport = transport
        self._timeout = timeout

    async def fetch(
        self, server_name: str, key_ids: Collection[str], minimum_valid_until_ts: int
    ) -> list[FetchedKeys]:
        # One request returns every current key, whichever were asked for.
        answer = await _ask(
            server_name,
            self._transport.get_json(
                server_name,
                SERVER_KEYS_PATH,
                timeout=self._timeout,
                # A server whose key we need has usually just contacted us: it is up,
                # whatever the backoff of our sending to it says.  The keyring's own
                # negative cache keeps this to one attempt a minute.
                ignore_backoff=True,
                authenticated=False,
                max_size=MAX_KEY_RESPONSE_BYTES,
            ),
        )
        response = parse_key_response(answer, expected_server=server_name)
        check_self_signed(response)
        return [FetchedKeys(server_name, response)]


class NotaryKeyFetcher:
    """Asks a trusted notary, whose answers must carry its signature with one of the
    keys configured for it besides the origin's own (with no keys configured: one of
    the keys the notary itself publishes)."""

    def __init__(
        self,
        transport: KeyTransport,
        *,
        notary_name: str,
        notary_keys: Mapping[str, VerifyKey],
        timeout: float = NOTARY_TIMEOUT_SECONDS,
    ) -> None:
        self._transport = transport
        self._notary = notary_name
        self._notary_keys = dict(notary_keys)
        self._timeout = timeout

    @classmethod
    def from_config(
        cls, transport: KeyTransport, trusted: TrustedKeyServerConfig
    ) -> NotaryKeyFetcher:
        """From a ``trusted_key_servers`` entry; ``ValueError`` for an invalid key."""
        return cls(
            transport,
            notary_name=trusted.server_name,
            notary_keys={
                key_id: decode_public_key(key_id, key)
                for key_id, key in trusted.verify_keys.items()
            },
        )

    @property
    def notary_name(self) -> str:
        return self._notary

    @property
    def description(self) -> str:
        return f"notary {self._notary}"

    async def fetch(
        self, server_name: str, key_ids: Collection[str], minimum_valid_until_ts: int
    ) -> list[FetchedKeys]:
        criteria = {
            key_id: {"minimum_valid_until_ts": minimum_valid_until_ts} for key_id in key_ids
        }
        answer = await _ask(
            self._notary,
            self._transport.post_json(
                self._notary,
                KEY_QUERY_PATH,
                {"server_keys": {server_name: criteria}},
                timeout=self._timeout,
                max_size=MAX_NOTARY_RESPONSE_BYTES,
            ),
        )
        entries = answer.get("server_keys") if isinstance(answer, dict) else None
        if not isinstance(entries, list):
            raise KeyFetchError(f"notary {self._notary} answered without a server_keys list")
        if len(entries) > MAX_NOTARY_ENTRIES:
            raise KeyFetchError(f"notary {self._notary} answered with {len(entries)} responses")
        notary_keys = await self._trusted_notary_keys()
        fetched: list[FetchedKeys] = []
        problems: list[str] = []
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("server_name") != server_name:
                # Keys of servers we did not ask about are not taken from a notary.
                continue
            try:
                self._check_notary_signature(entry, notary_keys)
                response = parse_key_response(entry, expected_server=server_name)
                check_self_signed(response)
            except KeyFetchError as error:
                problems.append(error.reason)
                continue
            fetched.append(FetchedKeys(self._notary, response))
        if not fetched:
            found = "; ".join(problems[:3]) if problems else f"no keys of {server_name}"
            raise KeyFetchError(f"notary {self._notary}: {found}")
        if problems:
            logger.warning(
                "notary %s sent unusable key responses for %s: %s",
                self._notary,
                server_name,
                "; ".join(problems[:3]),
            )
        return fetched

    async def _trusted_notary_keys(self) -> Mapping[str, VerifyKey]:
        """The configured keys of the notary; without any, its current keys as it
        publishes them itself (trusted on the strength of TLS, as Synapse does)."""
        if self._notary_keys:
            return self._notary_keys
        own = await DirectKeyFetcher(self._transport).fetch(self._notary, (), 0)
        return {
            key_id: key.verify_key
            for fetched in own
            for key_id, key in fetched.response.keys.items()
            if not key.old
        }

    def _check_notary_signature(
        self, entry: Mapping[str, Any], notary_keys: Mapping[str, VerifyKey]
    ) -> None:
        signatures = entry.get("signatures")
        by_notary = signatures.get(self._notary) if isinstance(signatures, dict) else None
        known = [key_id for key_id in by_notary or () if key_id in notary_keys]
        if not known:
            raise KeyFetchError(
                f"response is not signed by notary {self._notary} with a key we trust"
            )
        for key_id in known:
            verify_signature(entry, self._notary, notary_keys[key_id])


class TrustedKeyServerConfig(Protocol):
    """One ``trusted_key_servers`` entry (``homeserver.config.federation.TrustedKeyServer``)."""

    @property
    def server_name(self) -> str: ...
    @property
    def verify_keys(self) -> Mapping[str, str]: ...


async def _ask(source: str, answer: Any) -> Any:
    """The awaited ``answer`` of a transport call; a failure to get one (the remote
    unreachable, or answering with an error) as a :class:`KeyFetchError`."""
    try:
        return await answer
    except (FederationRequestError, FederationUnreachable) as error:
        raise KeyFetchError(str(error)) from None
