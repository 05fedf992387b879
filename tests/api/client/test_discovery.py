"""/versions, /.well-known/matrix/client and /health on the real server process."""

from __future__ import annotations

from tests.support.server_process import ServerProcess


def test_versions_lists_spec_versions(server_process: ServerProcess) -> None:
    response = server_process.request("GET", "/_matrix/client/versions")
    assert response.status == 200
    body = response.json()
    assert "v1.1" in body["versions"]
    assert all(v.startswith("v1.") for v in body["versions"])
    assert isinstance(body["unstable_features"], dict)
    # The web client shows the date, unread and media filters of search only then.
    assert body["unstable_features"]["dev.homeserver.search_filters"] is True


def test_well_known_points_clients_at_public_baseurl(server_process: ServerProcess) -> None:
    response = server_process.request("GET", "/.well-known/matrix/client")
    assert response.status == 200
    assert response.json()["m.homeserver"]["base_url"] == f"{server_process.base_url}/"
    assert response.headers["access-control-allow-origin"] == "*"


def test_health_answers_ok(server_process: ServerProcess) -> None:
    response = server_process.request("GET", "/health")
    assert (response.status, response.body) == (200, b"OK")
