"""A real nginx reverse proxy in front of a test server, configured as operators do.

Everything nginx writes (logs, pid, temp files) goes under the test's folder and it
runs in the foreground as one process (``master_process off``), so it needs no
root, no system config and is stopped with the test.  ``scripts/services.sh``
installs the Debian package.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support import http
from tests.support.server_process import free_port, stop_process

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _config(root: Path, port: int, upstream_port: int) -> str:
    return f"""
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;

events {{
    worker_connections 256;
}}

http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;

    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream_port};
            proxy_http_version 1.1;
            proxy_buffering off;
            # Media uploads (docs/media.md): the server enforces max_upload_size
            # itself, and streams the body to disk as nginx passes it on.
            client_max_body_size 0;
            proxy_request_buffering off;
            # What Synapse's reverse-proxy guide and most deployments use: the
            # client's own X-Forwarded-For (if any) with $remote_addr appended.
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header Host $host;
        }}
    }}
}}
"""


class Nginx:
    """``nginx`` proxying ``127.0.0.1:<port>`` to ``127.0.0.1:<upstream_port>``."""

    def __init__(self, tmp_path: Path, upstream_port: int) -> None:
        self.root = tmp_path / "nginx"
        self.root.mkdir()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.config_path = self.root / "nginx.conf"
        self.config_path.write_text(_config(self.root, self.port, upstream_port))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15) -> None:
        self._log = (self.root / "stderr.log").open("ab")
        self._process = subprocess.Popen(
            # -e: the error log before the config is read (not /var/log/nginx).
            [NGINX, "-p", str(self.root), "-c", str(self.config_path), "-e", "stderr"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            http.wait_until_healthy(self.base_url, self._process, timeout=timeout, what="nginx")
        except RuntimeError as failed:
            self.stop()
            raise RuntimeError(f"{failed}:\n{self.log()}") from None

    def log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")
            for path in (self.root / "stderr.log", self.root / "error.log")
            if path.exists()
        )

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None
            self._log.close()
