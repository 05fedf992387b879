"""Test peers for the keyring: remote servers with real ed25519 keys, and a transport
that answers key requests the way those servers (and notaries) would.

The transport implements the keyring's ``KeyTransport`` protocol over a table of
answers instead of the network: it is a stand-in for the remote servers, not for
any code of ours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json
from signedjson.types import SigningKey
from twisted.internet import defer

from federation.client.errors import FederationUnreachable

#: 2023-11-14, in milliseconds: the tests' "now".
NOW_MS = 1_700_000_000_000
DAY_MS = 86_400_000


@attrs.define
class RemoteServer:
    """A server with its own signing key, able to make its key response."""

    name: str
    signing_key: SigningKey = attrs.field(factory=lambda: generate_signing_key("a_key1"))
    #: key ID -> (signing key, expired_ts) of keys it used before.
    old_keys: dict[str, tuple[SigningKey, int]] = attrs.field(factory=dict)

    @property
    def key_id(self) -> str:
        return f"ed25519:{self.signing_key.version}"

    def key_response(self, valid_until_ts: int = NOW_MS + DAY_MS) -> dict[str, Any]:
        response: dict[str, Any] = {
            "server_name": self.name,
            "verify_keys": {
                self.key_id: {"key": encode_verify_key_base64(get_verify_key(self.signing_key))}
            },
            "old_verify_keys": {
                key_id: {
                    "key": encode_verify_key_base64(get_verify_key(key)),
                    "expired_ts": expired_ts,
                }
                for key_id, (key, expired_ts) in self.old_keys.items()
            },
            "valid_until_ts": valid_until_ts,
        }
        signed: dict[str, Any] = sign_json(response, self.name, self.signing_key)
        return signed

    def sign(self, value: dict[str, Any], key: SigningKey | None = None) -> dict[str, Any]:
        signed: dict[str, Any] = sign_json(value, self.name, key or self.signing_key)
        return signed

    def rotate(self, expired_ts: int, version: str = "a_key2") -> None:
        """Start signing with a new key; the current one becomes old."""
        self.old_keys[self.key_id] = (self.signing_key, expired_ts)
        self.signing_key = generate_signing_key(version)


@attrs.define
class KeyPeers:
    """Answers ``get_json``/``post_json`` from a table: (destination, path) -> JSON,
    an exception to raise, or (for POST) a function of the body."""

    answers: dict[tuple[str, str], Any] = attrs.field(factory=dict)
    #: Every request made: (method, destination, path, body or None).
    requests: list[tuple[str, str, str, Any]] = attrs.field(factory=list)
    #: While set, answers wait on a Deferred the test fires (concurrency tests).
    gate: defer.Deferred[None] | None = None

    def serve_keys(self, server: RemoteServer, **kwargs: Any) -> None:
        self.answers[(server.name, "/_matrix/key/v2/server")] = lambda: server.key_response(
            **kwargs
        )

    def serve_notary(self, notary: str, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.answers[(notary, "/_matrix/key/v2/query")] = answer

    def count(self, destination: str, path: str) -> int:
        return sum(1 for _, d, p, _ in self.requests if (d, p) == (destination, path))

    async def get_json(
        self,
        destination: str,
        path: str,
        *,
        timeout: float = 60.0,  # noqa: ASYNC109 - the transport protocol's signature
        ignore_backoff: bool = False,
        authenticated: bool = True,
        max_size: int = 1 << 20,
    ) -> Any:
        self.requests.append(("GET", destination, path, None))
        answer = await self._answer(destination, path)
        return answer() if callable(answer) else answer

    async def post_json(
        self,
        destination: str,
        path: str,
        body: object,
        *,
        timeout: float = 60.0,  # noqa: ASYNC109 - the transport protocol's signature
        max_size: int = 1 << 20,
    ) -> Any:
        self.requests.append(("POST", destination, path, body))
        answer = await self._answer(destination, path)
        return answer(body) if callable(answer) else answer

    async def _answer(self, destination: str, path: str) -> Any:
        if self.gate is not None:
            await self.gate
        answer = self.answers.get((destination, path))
        if answer is None:
            raise FederationUnreachable(destination, f"does not answer {path}")
        if isinstance(answer, Exception):
            raise answer
        return answer


def notary_answer(
    notary: RemoteServer, origins: Mapping[str, RemoteServer], **kwargs: Any
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A notary's ``/key/v2/query`` answer: each asked server's key response,
    countersigned by ``notary``."""

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        return {
            "server_keys": [
                notary.sign(origins[name].key_response(**kwargs))
                for name in body["server_keys"]
                if name in origins
            ]
        }

    return answer
