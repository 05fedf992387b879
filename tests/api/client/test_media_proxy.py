"""Media through a real nginx configured as docs/media.md says: a large upload
streams through, a range request seeks, and the security headers survive."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from tests.support import http
from tests.support.matrix import register, running_server
from tests.support.nginx import Nginx
from tests.support.server_process import free_port


def test_large_upload_and_range_request_pass_through_nginx(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    port = free_port()
    listeners = [
        {
            "port": port,
            "bind_addresses": ["127.0.0.1"],
            "x_forwarded": True,
            "resources": [{"names": ["client"]}],
        }
    ]
    with running_server(
        tmp_path,
        database_config,
        listeners=listeners,
        rc_media_upload={"per_second": 100, "burst_count": 100},
    ) as server:
        token = register(server, "alice")["access_token"]
        proxy = Nginx(tmp_path, port)
        proxy.start()
        try:
            # Far over nginx's default client_max_body_size of 1 MB.
            payload = os.urandom(12 * 1024 * 1024)
            uploaded = http.request(
                proxy.base_url,
                "POST",
                "/_matrix/media/v3/upload?filename=noise.bin",
                body=payload,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/octet-stream",
                },
                timeout=60,
            )
            assert uploaded.status == 200, uploaded.body
            server_name, media_id = uploaded.json()["content_uri"][len("mxc://") :].split("/")
            path = f"/_matrix/client/v1/media/download/{server_name}/{media_id}"
            auth = {"Authorization": f"Bearer {token}"}

            whole = http.request(proxy.base_url, "GET", path, headers=auth, timeout=60)
            assert whole.status == 200
            assert hashlib.sha256(whole.body).digest() == hashlib.sha256(payload).digest()
            assert whole.headers["content-disposition"].startswith("attachment")
            assert whole.headers["content-security-policy"].startswith("sandbox")
            assert whole.headers["x-content-type-options"] == "nosniff"

            part = http.request(
                proxy.base_url,
                "GET",
                path,
                headers={**auth, "Range": "bytes=5000000-5000999"},
            )
            assert part.status == 206
            assert part.headers["content-range"] == f"bytes 5000000-5000999/{len(payload)}"
            assert part.body == payload[5_000_000:5_001_000]
        finally:
            proxy.stop()
