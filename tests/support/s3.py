"""A real S3-compatible server for tests: moto's standalone server in a child
process, so the S3 backend is tested over HTTP against the wire protocol, the way
it talks to AWS, MinIO or R2.

:func:`running_s3_server` starts one; the session-scoped :func:`s3_server` fixture
shares one per test session (per xdist worker) — import it into a ``conftest.py``
to use it in that directory.  Tests isolate themselves with a fresh bucket each.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import boto3
import pytest

from tests.support.server_process import free_port, stop_process

#: moto accepts any credentials; these only have to be consistent.
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
REGION_NAME = "us-east-1"
STARTUP_TIMEOUT = 60.0
#: A free port can be taken by someone else before moto binds it: try again.
START_ATTEMPTS = 3


@attrs.frozen
class S3Server:
    endpoint_url: str
    access_key_id: str = ACCESS_KEY_ID
    secret_access_key: str = SECRET_ACCESS_KEY
    region_name: str = REGION_NAME

    def client(self) -> Any:
        """A boto3 S3 client for this server, to arrange and inspect buckets."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)


def unique_bucket_name() -> str:
    """A new bucket name (S3's rules: lowercase, digits, hyphens, 3-63 characters)."""
    return f"test-{uuid.uuid4().hex}"


def media_storage_config(server: S3Server, bucket: str) -> dict[str, Any]:
    """The ``media_storage`` config section storing media in ``bucket`` on ``server``."""
    return {
        "backend": "s3",
        "s3": {
            "bucket": bucket,
            "endpoint_url": server.endpoint_url,
            "region_name": server.region_name,
            "access_key_id": server.access_key_id,
            "secret_access_key": server.secret_access_key,
        },
    }


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/moto-api/")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _start() -> tuple[subprocess.Popen[bytes], int]:
    """A moto server answering on a free port, or RuntimeError."""
    for _ in range(START_ATTEMPTS):
        port = free_port()
        # Its request log goes nowhere: an unread pipe would fill and stall it.
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            if _answers(port):
                return process, port
            time.sleep(0.1)
        stop_process(process)
    raise RuntimeError(f"moto's S3 server did not start in {START_ATTEMPTS} attempts")


@contextmanager
def running_s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1, stopped on exit."""
    process, port = _start()
    try:
        yield S3Server(endpoint_url=f"http://127.0.0.1:{port}")
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto S3 server for the whole session (each xdist worker has its own)."""
    with running_s3_server() as server:
        yield server
