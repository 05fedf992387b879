"""A federation listener serving HTTPS with the certificate ``generate-config
--self-signed-tls`` writes, and the federation front door's unauthenticated
endpoints (``/version``, ``/.well-known/matrix/server``).

spec: server-server-api.md#tls, #get_matrixfederationv1version,
#getwell-knownmatrixserver
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from federation.transport.x_matrix import sign_request
from homeserver.crypto.keys import read_signing_key, write_new_signing_key
from tests.support.server_process import ServerProcess, free_port, run_command, server_config


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The config ``generate-config --self-signed-tls`` writes for ``localhost``."""
    folder = tmp_path_factory.mktemp("generated")
    result = run_command(
        ["generate-config", "--server-name", "localhost", "--self-signed-tls"], cwd=folder
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load((folder / "homeserver.yaml").read_text())
    config["_folder"] = folder
    return config


def test_generated_config_has_a_tls_federation_listener_on_8448(
    generated: dict[str, Any],
) -> None:
    federation = [
        listener
        for listener in generated["listeners"]
        if any("federation" in res["names"] for res in listener["resources"])
    ]
    assert [(listener["port"], listener["tls"]) for listener in federation] == [(8448, True)]
    folder: Path = generated["_folder"]
    assert (folder / generated["tls_certificate_path"]).is_file()
    key = folder / generated["tls_private_key_path"]
    assert key.stat().st_mode & 0o077 == 0  # the private key is the owner's alone


@pytest.fixture(scope="module")
def tls_server(
    generated: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, int, Path]]:
    """A server with a client listener and an HTTPS federation listener using the
    generated certificate: the server, the federation port and the certificate."""
    tmp_path = tmp_path_factory.mktemp("server")
    folder: Path = generated["_folder"]
    client_port, federation_port = free_port(), free_port()
    database = {"name": "sqlite3", "args": {"database": str(tmp_path / "homeserver.db")}}
    config = server_config(
        tmp_path,
        database,
        client_port,
        tls_certificate_path=str(folder / generated["tls_certificate_path"]),
        tls_private_key_path=str(folder / generated["tls_private_key_path"]),
        serve_server_wellknown=True,
        # No notary: a signature of an unknown server fails without leaving the host.
        trusted_key_servers=[],
    )
    config["listeners"].append(
        {
            "port": federation_port,
            "tls": True,
            "bind_addresses": ["127.0.0.1"],
            "resources": [{"names": ["federation"]}],
        }
    )
    server = ServerProcess(tmp_path, config)
    server.start()
    try:
        yield server, federation_port, folder / generated["tls_certificate_path"]
    finally:
        server.stop()


def https_request(
    port: int,
    method: str,
    path: str,
    context: ssl.SSLContext,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    # "localhost": the name the certificate is for (the listener is on 127.0.0.1,
    # which the connection reaches whichever address "localhost" resolves to first).
    connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def https_get(port: int, path: str, context: ssl.SSLContext) -> tuple[int, Any]:
    return https_request(port, "GET", path, context)


def test_version_is_served_over_https_verified_against_the_generated_certificate(
    tls_server: tuple[ServerProcess, int, Path],
) -> None:
    _, port, certificate = tls_server
    context = ssl.create_default_context(cafile=str(certificate))
    status, body = https_get(port, "/_matrix/federation/v1/version", context)
    assert status == 200
    assert body["server"]["name"] == "homeserver"
    assert isinstance(body["server"]["version"], str)


def test_the_certificate_is_refused_by_a_client_that_does_not_trust_it(
    tls_server: tuple[ServerProcess, int, Path],
) -> None:
    _, port, _ = tls_server
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(port, "/_matrix/federation/v1/version", ssl.create_default_context())


def test_unknown_federation_paths_are_unrecognized(
    tls_server: tuple[ServerProcess, int, Path],
) -> None:
    _, port, certificate = tls_server
    context = ssl.create_default_context(cafile=str(certificate))
    status, body = https_get(port, "/_matrix/federation/v1/no_such_thing", context)
    assert (status, body["errcode"]) == (404, "M_UNRECOGNIZED")


def test_the_client_listener_does_not_serve_the_federation_api(
    tls_server: tuple[ServerProcess, int, Path],
) -> None:
    server, _, _ = tls_server
    response = server.request("GET", "/_matrix/federation/v1/version")
    assert response.status == 404


def test_server_well_known_points_at_port_443_of_the_server_name(
    tls_server: tuple[ServerProcess, int, Path],
) -> None:
    server, _, _ = tls_server
    response = server.request("GET", "/.well-known/matrix/server")
    assert response.status == 200
    assert response.json() == {"m.server": "localhost:443"}


def test_an_unusable_certificate_stops_start_up_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "tls.crt").write_text("not a certificate\n")
    (tmp_path / "tls.key").write_text("not a key\n")
    database = {"name": "sqlite3", "args": {"database": str(tmp_path / "homeserver.db")}}
    config = server_config(
        tmp_path,
        database,
        free_port(),
        tls_certificate_path=str(tmp_path / "tls.crt"),
        tls_private_key_path=str(tmp_path / "tls.key"),
    )
    config["listeners"][0]["tls"] = True
    (tmp_path / "homeserver.yaml").write_text(yaml.safe_dump(config))
    write_new_signing_key(Path(config["signing_key_path"]))
    result = run_command(["-c", str(tmp_path / "homeserver.yaml")], cwd=tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("homeserver: TLS listener: ") and "tls.crt" in last, result.stderr
    assert "Traceback" not in result.stderr


def test_a_federation_request_body_must_be_json(
    tls_server: tuple[ServerProcess, int, Path],
) -> None:
    _, port, certificate = tls_server
    context = ssl.create_default_context(cafile=str(certificate))
    status, body = https_request(
        port, "PUT", "/_matrix/federation/v1/send/txn1", context, body=b"{not json"
    )
    assert (status, body["errcode"]) == (400, "M_NOT_JSON")


def test_an_unsigned_federation_request_is_unauthorized(
    tls_server: tuple[ServerProcess, int, Path],
) -> None:
    _, port, certificate = tls_server
    context = ssl.create_default_context(cafile=str(certificate))
    request_body = json.dumps({"origin": "127.0.0.1:1", "pdus": [], "edus": []}).encode()
    status, body = https_request(
        port, "PUT", "/_matrix/federation/v1/send/txn1", context, body=request_body
    )
    assert (status, body["errcode"]) == (401, "M_UNAUTHORIZED")
    # The origin's keys cannot be fetched: its address is refused (loopback).
    forged = 'X-Matrix origin="127.0.0.1:1",destination="localhost",key="ed25519:k",sig="AAAA"'
    status, body = https_request(
        port,
        "PUT",
        "/_matrix/federation/v1/send/txn1",
        context,
        body=request_body,
        headers={"Authorization": forged},
    )
    assert (status, body["errcode"]) == (401, "M_UNAUTHORIZED")


def test_a_request_signed_with_a_known_key_gets_past_the_front_door(
    tls_server: tuple[ServerProcess, int, Path],
) -> None:
    # The server's own key is one its keyring knows without fetching anything: the
    # request is authenticated, and the unknown event is then not found.
    server, port, certificate = tls_server
    signing_key = read_signing_key(server.tmp_path / "localhost.signing.key")
    path = "/_matrix/federation/v1/event/%24unknown"
    header = sign_request(
        signing_key,
        origin="localhost",
        destination="localhost",
        method="GET",
        uri=path,
        content=None,
    )
    context = ssl.create_default_context(cafile=str(certificate))
    status, body = https_request(port, "GET", path, context, headers={"Authorization": header})
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_generate_config_never_overwrites_a_certificate(tmp_path: Path) -> None:
    (tmp_path / "localhost.tls.crt").write_text("mine\n")
    result = run_command(
        ["generate-config", "--server-name", "localhost", "--self-signed-tls"], cwd=tmp_path
    )
    assert result.returncode == 1
    assert "localhost.tls.crt already exists; not overwriting it" in result.stderr
    assert (tmp_path / "localhost.tls.crt").read_text() == "mine\n"
    assert not (tmp_path / "homeserver.yaml").exists()
