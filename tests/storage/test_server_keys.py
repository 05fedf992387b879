"""Storage of other servers' key responses on both engines: one row per key and per
server that gave it, replaced by a newer response from the same server, and read
back as the most recently received response per key.

spec: server-server-api.md#retrieving-server-keys
"""

from __future__ import annotations

import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.server_keys import ServerKeyStore

ORIGIN = "origin.example"
NOTARY = "notary.example"


@pytest_twisted.ensureDeferred
async def test_a_response_is_read_back_for_each_of_its_keys(db: Database) -> None:
    store = ServerKeyStore(db)
    text = '{"server_name":"origin.example","x":"é"}'
    await store.store_key_response(
        server_name=ORIGIN,
        from_server=ORIGIN,
        ts_added_ms=1_000,
        valid_until_by_key={"ed25519:a": 5_000, "ed25519:old": 200},
        key_json=text,
    )
    stored = await store.get_key_responses(ORIGIN)
    assert set(stored) == {"ed25519:a", "ed25519:old"}
    assert stored["ed25519:a"].key_json == text
    assert stored["ed25519:a"].ts_valid_until_ms == 5_000
    assert stored["ed25519:old"].ts_valid_until_ms == 200
    assert stored["ed25519:a"].from_server == ORIGIN
    assert stored["ed25519:a"].ts_added_ms == 1_000
    assert set(await store.get_key_responses(ORIGIN, ["ed25519:old", "ed25519:b"])) == {
        "ed25519:old"
    }
    assert await store.get_key_responses("other.example") == {}


@pytest_twisted.ensureDeferred
async def test_the_most_recently_received_response_wins(db: Database) -> None:
    store = ServerKeyStore(db)
    for from_server, added, text in (
        (ORIGIN, 1_000, "first"),
        (NOTARY, 3_000, "from the notary"),
        (ORIGIN, 2_000, "second"),
    ):
        await store.store_key_response(
            server_name=ORIGIN,
            from_server=from_server,
            ts_added_ms=added,
            valid_until_by_key={"ed25519:a": added + 10},
            key_json=text,
        )
    stored = await store.get_key_responses(ORIGIN, ["ed25519:a"])
    assert stored["ed25519:a"].key_json == "from the notary"
    await store.store_key_response(
        server_name=ORIGIN,
        from_server=ORIGIN,
        ts_added_ms=4_000,
        valid_until_by_key={"ed25519:a": 9_000},
        key_json="third",
    )
    newest = (await store.get_key_responses(ORIGIN))["ed25519:a"]
    assert (newest.key_json, newest.from_server, newest.ts_valid_until_ms) == (
        "third",
        ORIGIN,
        9_000,
    )


@pytest_twisted.ensureDeferred
async def test_many_key_ids_are_read_in_batches(db: Database) -> None:
    store = ServerKeyStore(db)
    key_ids = [f"ed25519:k{n}" for n in range(250)]
    await store.store_key_response(
        server_name=ORIGIN,
        from_server=ORIGIN,
        ts_added_ms=1,
        valid_until_by_key=dict.fromkeys(key_ids, 2),
        key_json="{}",
    )
    assert set(await store.get_key_responses(ORIGIN, key_ids)) == set(key_ids)
