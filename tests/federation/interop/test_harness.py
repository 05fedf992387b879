"""The harness itself: every server serves federation over TLS with a certificate of
the test CA, and each fetches the other's signing keys.

spec: server-server-api.md#tls, server-server-api.md#retrieving-server-keys
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import verify_signed_json
from unpaddedbase64 import decode_base64

from tests.federation.interop.clients import ServerPair
from tests.support.federation import FederatedServer, TestCA, federation_request
from tests.support.http import Response
from tests.support.synapse_server import SynapseServer, synapse_server

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-interop-harness")]


@pytest.fixture(scope="module")
def lone_synapse(ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    with synapse_server(tmp_path_factory.mktemp("lone-synapse"), ca) as server:
        yield server


def assert_valid_server_keys(response: Response, server: FederatedServer) -> None:
    """``response`` is ``server``'s own key document, signed by its key."""
    assert response.status == 200, (response.status, response.body)
    keys = response.json()
    assert keys["server_name"] == server.server_name
    expected = server.signing_key()
    key_id = f"{expected.alg}:{expected.version}"
    assert key_id in keys["verify_keys"]
    public = keys["verify_keys"][key_id]["key"]
    verify_key = decode_verify_key_bytes(key_id, decode_base64(public))
    assert verify_key.encode() == expected.verify_key.encode()
    verify_signed_json(keys, server.server_name, verify_key)


def test_synapse_starts_quickly_and_serves_its_keys_over_tls(
    lone_synapse: SynapseServer, ca: TestCA
) -> None:
    response = federation_request(ca, lone_synapse, "GET", "/_matrix/key/v2/server")
    assert_valid_server_keys(response, lone_synapse)
    # Start-up is paid by every module of the suite: keep it an order below a minute.
    assert lone_synapse.process.startup_seconds < 30


def test_a_certificate_of_another_ca_is_not_trusted(
    lone_synapse: SynapseServer, tmp_path: Path
) -> None:
    """The CA is what makes the connection trusted (the harness does check TLS)."""
    stranger = TestCA.create(tmp_path / "stranger")
    with pytest.raises(ssl.SSLCertVerificationError):
        federation_request(stranger, lone_synapse, "GET", "/_matrix/key/v2/server")


def test_both_servers_serve_their_keys_over_tls(servers: ServerPair) -> None:
    for server in (servers.ours, servers.other):
        response = federation_request(servers.ca, server, "GET", "/_matrix/key/v2/server")
        assert_valid_server_keys(response, server)


def test_each_server_fetches_the_others_keys(servers: ServerPair) -> None:
    """Asked as a notary for the other server's keys, each server fetches them from
    it over TLS and answers them, signed by the other server.

    spec: server-server-api.md#querying-keys-through-another-server
    """
    for asked, about in servers.both_ways():
        expected = about.signing_key()
        key_id = f"{expected.alg}:{expected.version}"
        # Naming the key: a notary answers an open query from its cache only (Synapse),
        # and Synapse requires the criterion's minimum_valid_until_ts.
        criteria = {"minimum_valid_until_ts": int(time.time() * 1000)}
        query = {"server_keys": {about.server_name: {key_id: criteria}}}
        response = federation_request(
            servers.ca, asked, "POST", "/_matrix/key/v2/query", body=query
        )
        assert response.status == 200, (asked.server_name, response.status, response.body)
        documents = [
            keys
            for keys in response.json()["server_keys"]
            if keys["server_name"] == about.server_name
        ]
        assert documents, f"{asked.server_name} returned no keys of {about.server_name}"
        public = documents[0]["verify_keys"][key_id]["key"]
        verify_key = decode_verify_key_bytes(key_id, decode_base64(public))
        assert verify_key.encode() == expected.verify_key.encode()
        verify_signed_json(documents[0], about.server_name, verify_key)
