"""matrix-nio, a third-party client, against the real server on both engines."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql

from homeserver.storage.event_json import CorruptEventJsonError, decompress_event_json
from tests.support.matrix import running_server
from tests.support.server_process import REPO_ROOT, ServerProcess


@pytest.fixture
def server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    with running_server(tmp_path, database_config) as process:
        yield process


def run_scenario(name: str, server: ServerProcess, timeout: float = 60) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.interop.nio_scenarios", name, server.base_url],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr + "\n" + server.log()
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_nio_registers_logs_in_and_logs_out_everywhere(server: ServerProcess) -> None:
    result = run_scenario("register_login_logout_all", server)
    assert result["registered_user_id"] == "@niouser:localhost"
    assert result["login_user_id"] == "@niouser:localhost"
    assert result["whoami"] == {
        "user_id": "@niouser:localhost",
        "device_id": result["login_device_id"],
    }
    assert result["logout_all"] is True
    assert result["after_logout"] == {"errcode": "M_UNKNOWN_TOKEN"}


def test_nio_lists_the_devices_of_two_logins(server: ServerProcess) -> None:
    result = run_scenario("two_devices", server)
    by_id = {d["device_id"]: d for d in result["devices"]}
    for device_id in result["login_devices"]:
        assert device_id in by_id
    names = {by_id[d]["display_name"] for d in result["login_devices"]}
    assert names == {"nio one", "nio two"}
    # The device that listed them has made a request, so it has been seen.
    assert any(d["last_seen_ip"] == "127.0.0.1" and d["has_last_seen_date"] for d in by_id.values())


def test_nio_uploads_queries_and_claims_olm_keys(server: ServerProcess) -> None:
    """nio's own Olm account and signature checks accept what the server serves.

    spec: client-server-api/modules/end_to_end_encryption.md
    """
    result = run_scenario("e2e_keys", server)
    assert result["should_upload"] is True
    assert result["uploaded_counts"] > 0
    assert result["sync_count"] == result["uploaded_counts"]
    assert result["should_upload_after"] is False
    assert result["queried_ed25519_matches"] is True
    assert result["queried_curve25519_matches"] is True
    assert result["display_name"] == "nioalice e2e"
    assert result["claimed"] == 1
    assert result["olm_session"] is True
    assert result["count_after_claim"] == result["uploaded_counts"] - 1


def test_nio_clients_exchange_encrypted_messages_and_a_new_device_gets_the_key(
    server: ServerProcess, database_config: dict[str, Any]
) -> None:
    """Real Olm/Megolm (nio's vodozemac) through the server, both ways, then to a new
    device of bob; afterwards no message's plaintext is anywhere in the database.

    spec: client-server-api/modules/end_to_end_encryption.md
    """
    result = run_scenario("e2ee_exchange", server, timeout=180)
    # The DM was encrypted by the server's default (invite); the public room not.
    assert result["encrypted"] == {"dm": True, "public": False}
    bodies = {s["label"]: s["body"] for s in result["secrets"]}
    expected = {
        "bob_got_alice": ("@e2alice:localhost", bodies["alice to bob"]),
        "alice_got_bob": ("@e2bob:localhost", bodies["bob to alice"]),
        "new_device_got_alice": ("@e2alice:localhost", bodies["alice to both devices"]),
        "old_device_got_alice": ("@e2alice:localhost", bodies["alice to both devices"]),
    }
    for key, (sender, body) in expected.items():
        assert result[key] == {
            "type": "RoomMessageText",
            "body": body,
            "sender": sender,
            "decrypted": True,
        }, key
    assert "@e2bob:localhost" in result["alice_device_lists_changed"]
    assert result["alice_wants_bobs_keys"] is True
    assert result["alice_knows_new_device"] is True

    haystacks = list(database_contents(database_config))
    for message in result["secrets"]:
        for needle in plaintext_forms(message):
            found = [where for where, data in haystacks if needle in data]
            assert found == [], f"{message['label']!r} in plaintext ({needle!r}) in {found}"
    # The search can fail: the message of the unencrypted room is found.
    control = plaintext_forms(result["control"])
    assert any(needle in data for needle in control for _, data in haystacks)


def plaintext_forms(message: dict[str, str]) -> list[bytes]:
    """Every way a message body could be written down: UTF-8, JSON-escaped (ASCII or
    not), and its random token alone (which no other data can contain by chance)."""
    body = message["body"]
    return [
        body.encode("utf-8"),
        json.dumps(body)[1:-1].encode("ascii"),
        json.dumps(body, ensure_ascii=False)[1:-1].encode("utf-8"),
        message["token"].encode("ascii"),
    ]


def database_contents(database_config: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) for everything the server's database holds.

    SQLite: the database file and its -wal and -shm files byte for byte, then every
    value of every table.  PostgreSQL: every row of every table as text (as a dump
    shows it), then every value.  Values are searched decoded too: event JSON is
    stored deflated (homeserver/storage/event_json.py), which no byte search sees
    through."""
    args = dict(database_config["args"])
    if database_config["name"] == "sqlite3":
        path = Path(args["database"])
        for suffix in ("", "-wal", "-shm"):
            file = path.with_name(path.name + suffix)
            if file.exists():
                yield file.name, file.read_bytes()
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [
                name
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            ]
            for table in tables:
                quoted = '"' + table.replace('"', '""') + '"'
                for row in connection.execute(f"SELECT * FROM {quoted}"):
                    yield from row_values(table, row)
        finally:
            connection.close()
        return
    args.pop("cp_min", None)
    args.pop("cp_max", None)
    connection = psycopg2.connect(**args)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT schemaname, tablename FROM pg_tables"
                " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            )
            tables = cursor.fetchall()
            for schema, table in tables:
                name = sql.Identifier(schema, table)
                cursor.execute(sql.SQL("SELECT t::text FROM {} t").format(name))
                for (text,) in cursor.fetchall():
                    yield f"{table} (row text)", text.encode("utf-8")
                cursor.execute(sql.SQL("SELECT * FROM {}").format(name))
                for row in cursor.fetchall():
                    yield from row_values(table, row)
    finally:
        connection.close()


def row_values(table: str, row: tuple[Any, ...]) -> Iterator[tuple[str, bytes]]:
    for value in row:
        if isinstance(value, memoryview):
            value = bytes(value)
        if isinstance(value, bytes):
            yield table, value
            try:
                yield f"{table} (decompressed event)", decompress_event_json(value)
            except (CorruptEventJsonError, zlib.error):
                pass
        elif isinstance(value, str):
            yield table, value.encode("utf-8")
        elif isinstance(value, (dict, list)):
            # psycopg2 parses json/jsonb columns.
            yield table, json.dumps(value, ensure_ascii=False).encode("utf-8")
