"""Authenticating inbound federation requests (``FederationRequestAuthenticator``)
with the real keyring, on both database engines.

The origin's keys are the keyring's own (``LocalServerKeys``), so no request leaves
the test; an origin whose keys cannot be had stands for an unreachable server.

spec: server-server-api.md#request-authentication
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest
import pytest_twisted
from signedjson.key import generate_signing_key
from twisted.internet import reactor as global_reactor
from twisted.web.test.requesthelper import DummyChannel

from federation.keys.errors import KeyFetchError
from federation.keys.fetchers import FetchedKeys
from federation.keys.keyring import Keyring
from federation.keys.local import LocalServerKeys
from federation.transport.server import FederationRequestAuthenticator
from federation.transport.x_matrix import sign_request
from homeserver.clock import Clock
from homeserver.errors import MatrixError
from homeserver.http.request import MatrixRequest
from homeserver.storage.database import Database
from homeserver.storage.server_keys import ServerKeyStore

ORIGIN = "origin.example"
US = "us.example"
URI = "/_matrix/federation/v1/send/txn1?a=%20b"
BODY: dict[str, Any] = {"pdus": [], "edus": []}
ORIGIN_KEY = generate_signing_key("a_org")


class Unreachable:
    """Stands for the network: every other server is unreachable."""

    description = "the server itself"

    async def fetch(
        self, server_name: str, key_ids: Collection[str], minimum_valid_until_ts: int
    ) -> list[FetchedKeys]:
        raise KeyFetchError(f"{server_name} is unreachable in this test")


def authenticator(db: Database, **kwargs: Any) -> FederationRequestAuthenticator:
    clock = Clock(global_reactor)
    keyring = Keyring(
        local_keys=LocalServerKeys(
            server_name=ORIGIN,
            signing_key=ORIGIN_KEY,
            old_signing_keys=(),
            key_refresh_interval_ms=86_400_000,
            clock=clock,
        ),
        store=ServerKeyStore(db),
        notaries=[],
        direct=Unreachable(),
        clock=clock,
    )
    settings: dict[str, Any] = {"domain_whitelist": None, **kwargs}
    return FederationRequestAuthenticator(server_name=US, keyring=keyring, clock=clock, **settings)


def request(*authorizations: str, method: str = "PUT", uri: str = URI) -> MatrixRequest:
    made = MatrixRequest(DummyChannel())  # type: ignore[no-untyped-call]
    made.method = method.encode("ascii")
    made.uri = uri.encode("ascii")
    for value in authorizations:
        made.requestHeaders.addRawHeader(b"Authorization", value.encode("utf-8"))
    return made


def signed(*, destination: str = US, content: object | None = BODY, key: Any = ORIGIN_KEY) -> str:
    return sign_request(
        key, origin=ORIGIN, destination=destination, method="PUT", uri=URI, content=content
    )


async def refusal(
    auth: FederationRequestAuthenticator, made: MatrixRequest, content: object | None = BODY
) -> MatrixError:
    with pytest.raises(MatrixError) as raised:
        await auth.authenticate(made, content)
    return raised.value


@pytest_twisted.ensureDeferred
async def test_a_correctly_signed_request_yields_its_origin(db: Database) -> None:
    auth = authenticator(db)
    woken: list[str] = []
    auth.on_inbound_request.append(woken.append)
    made = request(signed())
    assert await auth.authenticate(made, BODY) == ORIGIN
    assert woken == [ORIGIN]  # the sender hears that the origin is up
    assert made.authenticated_user == ORIGIN


@pytest_twisted.ensureDeferred
async def test_a_request_without_a_body_is_signed_without_content(db: Database) -> None:
    header = sign_request(
        ORIGIN_KEY, origin=ORIGIN, destination=US, method="GET", uri="/x", content=None
    )
    assert await authenticator(db).authenticate(request(header, method="GET", uri="/x"), None) == (
        ORIGIN
    )


@pytest_twisted.ensureDeferred
async def test_a_missing_header_is_unauthorized(db: Database) -> None:
    error = await refusal(authenticator(db), request())
    assert (error.status, error.errcode) == (401, "M_UNAUTHORIZED")
    bearer = await refusal(authenticator(db), request("Bearer abc"))
    assert (bearer.status, bearer.errcode) == (401, "M_UNAUTHORIZED")


@pytest_twisted.ensureDeferred
async def test_a_forged_signature_is_refused(db: Database) -> None:
    forged = signed(key=generate_signing_key("a_org"))  # same key ID, another key
    error = await refusal(authenticator(db), request(forged))
    assert (error.status, error.errcode) == (401, "M_UNAUTHORIZED")
    assert "does not verify" in error.message


@pytest_twisted.ensureDeferred
async def test_a_body_other_than_the_signed_one_is_refused(db: Database) -> None:
    error = await refusal(authenticator(db), request(signed()), {"pdus": [{"x": 1}]})
    assert error.status == 401


@pytest_twisted.ensureDeferred
async def test_a_signature_for_another_target_is_refused(db: Database) -> None:
    error = await refusal(authenticator(db), request(signed(), uri=URI + "&c=d"))
    assert error.status == 401


@pytest_twisted.ensureDeferred
async def test_a_request_for_another_destination_is_refused(db: Database) -> None:
    error = await refusal(authenticator(db), request(signed(destination="other.example")))
    assert (error.status, error.errcode) == (401, "M_UNAUTHORIZED")
    assert "destination" in error.message


@pytest_twisted.ensureDeferred
async def test_a_header_without_destination_is_checked_against_our_name(db: Database) -> None:
    # Older servers leave the parameter out but sign with our name in the object.
    header = signed().replace(f',destination="{US}"', "")
    assert await authenticator(db).authenticate(request(header), BODY) == ORIGIN


@pytest_twisted.ensureDeferred
async def test_every_x_matrix_header_is_tried(db: Database) -> None:
    broken = 'X-Matrix origin="origin.example",key="ed25519:a_org",sig="AAAA"'
    made = request("Bearer token", "X-Matrix nonsense", broken, signed())
    assert await authenticator(db).authenticate(made, BODY) == ORIGIN


@pytest_twisted.ensureDeferred
async def test_a_malformed_header_is_unauthorized_with_the_reason(db: Database) -> None:
    error = await refusal(authenticator(db), request('X-Matrix origin="o.example",sig="s"'))
    assert (error.status, error.errcode) == (401, "M_UNAUTHORIZED")
    assert "lacks key" in error.message


@pytest_twisted.ensureDeferred
async def test_an_origin_whose_keys_cannot_be_had_is_unauthorized(db: Database) -> None:
    stranger = generate_signing_key("a_s")
    header = sign_request(
        stranger, origin="stranger.example", destination=US, method="PUT", uri=URI, content=BODY
    )
    error = await refusal(authenticator(db), request(header))
    assert (error.status, error.errcode) == (401, "M_UNAUTHORIZED")


@pytest_twisted.ensureDeferred
async def test_a_server_outside_the_domain_whitelist_is_forbidden(db: Database) -> None:
    auth = authenticator(db, domain_whitelist=frozenset({"friend.example"}))
    error = await refusal(auth, request(signed()))
    assert (error.status, error.errcode) == (403, "M_FORBIDDEN")
    allowed = authenticator(db, domain_whitelist=frozenset({ORIGIN}))
    assert await allowed.authenticate(request(signed()), BODY) == ORIGIN


@pytest_twisted.ensureDeferred
async def test_a_failing_callback_does_not_fail_the_request(db: Database) -> None:
    auth = authenticator(db)

    def broken(origin: str) -> None:
        raise RuntimeError("boom")

    auth.on_inbound_request.append(broken)
    assert await auth.authenticate(request(signed()), BODY) == ORIGIN
