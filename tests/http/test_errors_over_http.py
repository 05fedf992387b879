"""Bad requests get clear Matrix errors from the real server process, never a 500.

spec: client-server-api/_index.md#standard-error-response, #common-error-codes
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from tests.support.accounts import ADMIN_REGISTER, register_with_secret
from tests.support.http import Response
from tests.support.matrix import running_server
from tests.support.server_process import ServerProcess


def assert_matrix_error(response, status: int, errcode: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status == status, response.body
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["errcode"] == errcode
    assert isinstance(body["error"], str) and body["error"]


def test_unknown_endpoint_is_404_unrecognized(server_process: ServerProcess) -> None:
    response = server_process.request("GET", "/_matrix/client/v3/no/such/endpoint")
    assert_matrix_error(response, 404, "M_UNRECOGNIZED")


def test_known_endpoint_with_wrong_method_is_405_unrecognized(
    server_process: ServerProcess,
) -> None:
    response = server_process.request("DELETE", "/_matrix/client/versions")
    assert_matrix_error(response, 405, "M_UNRECOGNIZED")
    assert "GET" in response.headers["allow"]


def test_body_that_is_not_json_is_m_not_json(server_process: ServerProcess) -> None:
    response = server_process.request(
        "POST", ADMIN_REGISTER, body=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_matrix_error(response, 400, "M_NOT_JSON")


def test_empty_body_is_m_not_json(server_process: ServerProcess) -> None:
    assert_matrix_error(server_process.request("POST", ADMIN_REGISTER, body=b""), 400, "M_NOT_JSON")


def test_invalid_utf8_and_nan_are_m_not_json(server_process: ServerProcess) -> None:
    for body in (b'{"a": "\xff"}', b'{"a": NaN}', b'{"a": "\\ud800"}'):
        assert_matrix_error(
            server_process.request("POST", ADMIN_REGISTER, body=body), 400, "M_NOT_JSON"
        )


def test_json_that_is_not_an_object_is_m_bad_json(server_process: ServerProcess) -> None:
    response = server_process.request("POST", ADMIN_REGISTER, json_body=[1, 2, 3])
    assert_matrix_error(response, 400, "M_BAD_JSON")


def test_wrong_field_type_is_m_bad_json(server_process: ServerProcess) -> None:
    response = server_process.request(
        "POST", ADMIN_REGISTER, json_body={"nonce": 5, "username": "a", "password": "b", "mac": "c"}
    )
    assert_matrix_error(response, 400, "M_BAD_JSON")


def test_missing_field_is_m_missing_param(server_process: ServerProcess) -> None:
    response = server_process.request("POST", ADMIN_REGISTER, json_body={"nonce": "x"})
    assert_matrix_error(response, 400, "M_MISSING_PARAM")


def test_body_over_the_limit_is_413_too_large(server_process: ServerProcess) -> None:
    response = server_process.request("POST", ADMIN_REGISTER, body=b"x" * (65 * 1024))
    assert_matrix_error(response, 413, "M_TOO_LARGE")


def test_chunked_body_over_the_limit_is_413_too_large(server_process: ServerProcess) -> None:
    # No Content-Length: the limit has to be enforced as the chunks arrive.
    with socket.create_connection(("127.0.0.1", server_process.port), timeout=10) as sock:
        sock.sendall(
            f"POST {ADMIN_REGISTER} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"y" * 8192
        for _ in range(10):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            reply += data
    assert reply.startswith(b"HTTP/1.1 413")
    assert b'"M_TOO_LARGE"' in reply


def test_body_at_the_limit_is_parsed(server_process: ServerProcess) -> None:
    # Just under the limit: the body reaches the JSON parser (and fails as JSON, not size).
    response = server_process.request("POST", ADMIN_REGISTER, body=b"x" * (64 * 1024))
    assert_matrix_error(response, 400, "M_NOT_JSON")


def test_missing_access_token_is_401_missing_token(server_process: ServerProcess) -> None:
    response = server_process.request("GET", "/_matrix/client/v3/account/whoami")
    assert_matrix_error(response, 401, "M_MISSING_TOKEN")


def test_unknown_access_token_is_401_unknown_token(server_process: ServerProcess) -> None:
    response = server_process.request(
        "GET", "/_matrix/client/v3/account/whoami", headers={"Authorization": "Bearer nope"}
    )
    assert_matrix_error(response, 401, "M_UNKNOWN_TOKEN")
    assert response.json()["soft_logout"] is False


def test_malformed_authorization_header_is_401(server_process: ServerProcess) -> None:
    response = server_process.request(
        "GET", "/_matrix/client/v3/account/whoami", headers={"Authorization": "Basic abc"}
    )
    assert_matrix_error(response, 401, "M_MISSING_TOKEN")


def test_errors_carry_cors_headers(server_process: ServerProcess) -> None:
    response = server_process.request("GET", "/nope")
    assert response.headers["access-control-allow-origin"] == "*"


def test_preflight_options_succeeds_on_any_path(server_process: ServerProcess) -> None:
    response = server_process.request("OPTIONS", "/_matrix/client/v3/account/whoami")
    assert response.status == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "Authorization" in response.headers["access-control-allow-headers"]
    assert "PUT" in response.headers["access-control-allow-methods"]


def test_deeply_nested_body_is_a_4xx_matrix_error_not_a_500(
    server_process: ServerProcess,
) -> None:
    """Deep nesting used to escape the parser as RecursionError: 500 and a traceback.

    30,000 levels: far past Python's recursion limit, within this server's body limit.
    """
    for body in (b"[" * 30_000 + b"]" * 30_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000):
        response = server_process.request("POST", "/_matrix/client/v3/login", body=body)
        assert_matrix_error(response, 400, "M_BAD_JSON")
    assert "Traceback" not in server_process.log()


def test_nesting_limit_is_exactly_one_hundred_levels(server_process: ServerProcess) -> None:
    def login_with_nested_identifier(depth: int) -> Response:
        nested = "[" * (depth - 1) + "]" * (depth - 1)
        body = f'{{"type": "m.login.password", "identifier": {nested}}}'.encode()
        return server_process.request("POST", "/_matrix/client/v3/login", body=body)

    # 100 levels parse (the login is then refused for its content), 101 do not.
    refused_for_content = login_with_nested_identifier(100)
    assert_matrix_error(refused_for_content, 400, "M_BAD_JSON")
    assert "nested" not in refused_for_content.json()["error"]
    too_deep = login_with_nested_identifier(101)
    assert_matrix_error(too_deep, 400, "M_BAD_JSON")
    assert "nested too deeply" in too_deep.json()["error"]


def test_deeply_nested_filter_in_the_query_string_is_a_matrix_error(
    server_process: ServerProcess,
) -> None:
    token = register_with_secret(server_process, "nester").json()["access_token"]
    deep = '{"a":' * 2000 + "1" + "}" * 2000  # 12 KB: within the request line's limit
    response = server_process.request(
        "GET",
        f"/_matrix/client/v3/sync?timeout=0&filter={deep}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_matrix_error(response, 400, "M_BAD_JSON")


def test_bodies_over_100_kb_and_chunked_bodies_are_parsed(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    """Twisted spools such bodies to a temporary file; they used to end in a 500."""
    with running_server(tmp_path, database_config) as server:
        body = json.dumps({"type": "m.login.password", "user": "x", "password": "y" * 200_000})
        response = server.request("POST", "/_matrix/client/v3/login", body=body.encode())
        assert_matrix_error(response, 403, "M_FORBIDDEN")
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            chunk = body.encode()
            sock.sendall(
                b"POST /_matrix/client/v3/login HTTP/1.1\r\nHost: x\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + f"{len(chunk):x}\r\n".encode()
                + chunk
                + b"\r\n0\r\n\r\n"
            )
            reply = b""
            while data := sock.recv(65536):
                reply += data
        assert reply.startswith(b"HTTP/1.1 403"), reply[:200]
