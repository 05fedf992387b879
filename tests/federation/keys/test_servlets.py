"""The key API of real servers over TLS: our key server, the notary's answers and
refusals, and two servers fetching each other's keys through it.

spec: server-server-api.md#retrieving-server-keys
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import verify_signed_json
from signedjson.types import SigningKey

from tests.support.federation import (
    FederatedServer,
    TestCA,
    database_section,
    federated_server,
    federation_request,
)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA.create(tmp_path / "ca")


#: A key the server signed with before (Synapse's ``old_signing_keys`` format).
OLD_KEY = encode_verify_key_base64(get_verify_key(generate_signing_key("old")))
OLD_KEY_EXPIRED_TS = 1_600_000_000_000


@pytest.fixture
def server(tmp_path: Path, engine: str, ca: TestCA) -> Iterator[FederatedServer]:
    old_keys = {"ed25519:old": {"key": OLD_KEY, "expired_ts": OLD_KEY_EXPIRED_TS}}
    with (
        database_section(engine, tmp_path / "db") as database,
        federated_server(tmp_path, database, ca, old_signing_keys=old_keys) as server,
    ):
        yield server


def get(ca: TestCA, server: FederatedServer, path: str) -> Any:
    response = federation_request(ca, server, "GET", path)
    assert response.status == 200, response.body
    return response.json()


def assert_signed_by(response: dict[str, Any], server: FederatedServer) -> None:
    verify_signed_json(response, server.server_name, get_verify_key(server.signing_key()))


def test_the_key_server_publishes_our_signed_key(ca: TestCA, server: FederatedServer) -> None:
    key = server.signing_key()
    response = get(ca, server, "/_matrix/key/v2/server")
    assert response["server_name"] == server.server_name
    assert response["verify_keys"] == {
        f"ed25519:{key.version}": {"key": encode_verify_key_base64(get_verify_key(key))}
    }
    assert response["old_verify_keys"] == {
        "ed25519:old": {"key": OLD_KEY, "expired_ts": OLD_KEY_EXPIRED_TS}
    }
    assert isinstance(response["valid_until_ts"], int)
    assert_signed_by(response, server)
    # The deprecated form with a key ID gets the same answer.
    assert get(ca, server, f"/_matrix/key/v2/server/ed25519:{key.version}") == response
    # As notary, it answers for itself with the same response.
    name = urllib.parse.quote(server.server_name, safe="")
    assert get(ca, server, f"/_matrix/key/v2/query/{name}")["server_keys"] == [response]
    assert get(ca, server, f"/_matrix/key/v2/query/{name}/ed25519:{key.version}") == {
        "server_keys": [response]
    }
    answer = federation_request(
        ca,
        server,
        "POST",
        "/_matrix/key/v2/query",
        body={"server_keys": {server.server_name: {}}},
    )
    assert answer.status == 200
    assert answer.json() == {"server_keys": [response]}


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"server_keys": ["localhost"]}, "M_BAD_JSON"),
        ({"server_keys": {"bad name!": {}}}, "M_INVALID_PARAM"),
        ({}, "M_MISSING_PARAM"),
    ],
)
def test_malformed_key_queries_are_refused(
    ca: TestCA, server: FederatedServer, body: dict[str, Any], errcode: str
) -> None:
    answer = federation_request(ca, server, "POST", "/_matrix/key/v2/query", body=body)
    assert answer.status == 400
    assert answer.json()["errcode"] == errcode
    for path in (
        "/_matrix/key/v2/query/localhost?minimum_valid_until_ts=soon",
        "/_matrix/key/v2/query/bad%20name",
    ):
        answer = federation_request(ca, server, "GET", path)
        assert (answer.status, answer.json()["errcode"]) == (400, "M_INVALID_PARAM")


def test_two_servers_fetch_each_others_keys(tmp_path: Path, engine: str, ca: TestCA) -> None:
    with (
        database_section(engine, tmp_path / "db1") as first_db,
        database_section(engine, tmp_path / "db2") as second_db,
        federated_server(tmp_path, first_db, ca, name="first") as first,
        federated_server(tmp_path, second_db, ca, name="second") as second,
    ):
        for notary, origin in ((first, second), (second, first)):
            answer = federation_request(
                ca,
                notary,
                "POST",
                "/_matrix/key/v2/query",
                body={"server_keys": {origin.server_name: {}}},
            )
            assert answer.status == 200, answer.body
            [response] = answer.json()["server_keys"]
            assert response["server_name"] == origin.server_name
            assert_signed_by(response, origin)
            assert_signed_by(response, notary)
            # Stored: asked again, the notary answers from its database.
            name = urllib.parse.quote(origin.server_name, safe="")
            again = get(ca, notary, f"/_matrix/key/v2/query/{name}")["server_keys"]
            assert again == [response]


def test_a_signed_request_is_checked_with_keys_fetched_from_its_origin(
    tmp_path: Path, engine: str, ca: TestCA
) -> None:
    with (
        database_section(engine, tmp_path / "db1") as first_db,
        database_section(engine, tmp_path / "db2") as second_db,
        federated_server(tmp_path, first_db, ca, name="first") as first,
        federated_server(tmp_path, second_db, ca, name="second") as second,
    ):
        key = first.signing_key()
        body = {
            "origin": first.server_name,
            "origin_server_ts": int(time.time() * 1000),
            "pdus": [],
        }

        def send(txn: str, signing_key: SigningKey) -> int:
            return federation_request(
                ca,
                second,
                "PUT",
                f"/_matrix/federation/v1/send/{txn}",
                body=body,
                origin=first.server_name,
                signing_key=signing_key,
            ).status

        assert send("t1", key) == 200
        # Same key ID, another key: the key second fetched from first refutes it.
        assert send("t2", generate_signing_key(key.version)) == 401


def test_key_queries_that_make_the_notary_fetch_are_rate_limited(
    tmp_path: Path, engine: str, ca: TestCA
) -> None:
    limit = {"per_second": 0.001, "burst_count": 2}
    with (
        database_section(engine, tmp_path / "db") as database,
        federated_server(tmp_path, database, ca, rc_key_query=limit) as server,
    ):
        # Servers the notary has no keys of: each query makes it ask (nothing listens
        # on these ports, so the answers are empty).
        first = federation_request(
            ca, server, "POST", "/_matrix/key/v2/query", body={"server_keys": {"localhost:1": {}}}
        )
        assert (first.status, first.json()) == (200, {"server_keys": []})
        assert get(ca, server, "/_matrix/key/v2/query/localhost:2") == {"server_keys": []}
        refused = federation_request(ca, server, "GET", "/_matrix/key/v2/query/localhost:3")
        assert refused.status == 429, refused.body
        assert refused.json()["errcode"] == "M_LIMIT_EXCEEDED"
        assert refused.json()["retry_after_ms"] > 0
        refused = federation_request(
            ca, server, "POST", "/_matrix/key/v2/query", body={"server_keys": {"localhost:4": {}}}
        )
        assert refused.status == 429, refused.body
        # Our own keys need no request elsewhere: still answered.
        name = urllib.parse.quote(server.server_name, safe="")
        [ours] = get(ca, server, f"/_matrix/key/v2/query/{name}")["server_keys"]
        assert_signed_by(ours, server)
