"""The keyring against test peers: remote servers with real keys, served through a
transport of their own (tests/federation/keys/key_peers.py).

Covers where keys come from (the server itself, trusted notaries, the database
after a restart, our own keys without any request), what is refused (forged and
missing signatures, responses not signed by their server or for another server,
notary answers without the notary's signature or with the wrong key), validity
(``valid_until_ts``, the 7-day cap, old keys' ``expired_ts``), and how lookups are
limited (one fetch for concurrent lookups, one attempt a minute after a failure).

spec: server-server-api.md#retrieving-server-keys,
server-server-api.md#validating-hashes-and-signatures-on-received-events
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import pytest_twisted
from signedjson.key import generate_signing_key, get_verify_key
from signedjson.sign import sign_json
from twisted.internet import defer, task

from federation.keys.errors import KeyVerificationError
from federation.keys.fetchers import DirectKeyFetcher, NotaryKeyFetcher
from federation.keys.keyring import _MAX_ATTEMPT_RECORDS, Keyring
from federation.keys.local import LocalServerKeys
from homeserver.clock import Clock
from homeserver.storage.database import Database
from homeserver.storage.server_keys import ServerKeyStore
from tests.federation.keys.key_peers import (
    DAY_MS,
    NOW_MS,
    KeyPeers,
    RemoteServer,
    notary_answer,
)

US = "us.example"
KEYS_PATH = "/_matrix/key/v2/server"
QUERY_PATH = "/_matrix/key/v2/query"


class World:
    """A keyring on a real database, the clock at NOW_MS, and test peers."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.reactor = task.Clock()
        self.reactor.advance(NOW_MS / 1000)
        self.peers = KeyPeers()
        self.local = LocalServerKeys(
            server_name=US,
            signing_key=generate_signing_key("us1"),
            old_signing_keys=(),
            key_refresh_interval_ms=DAY_MS,
            clock=Clock(self.reactor),
        )

    def keyring(self, notaries: Sequence[RemoteServer | str] = ()) -> Keyring:
        fetchers = [
            NotaryKeyFetcher(self.peers, notary_name=notary, notary_keys={})
            if isinstance(notary, str)
            else NotaryKeyFetcher(
                self.peers,
                notary_name=notary.name,
                notary_keys={notary.key_id: get_verify_key(notary.signing_key)},
            )
            for notary in notaries
        ]
        return Keyring(
            local_keys=self.local,
            store=ServerKeyStore(self.db),
            notaries=fetchers,
            direct=DirectKeyFetcher(self.peers),
            clock=Clock(self.reactor),
        )


@pytest.fixture
def world(db: Database) -> World:
    return World(db)


def signed_object(server: RemoteServer, key: Any = None) -> dict[str, Any]:
    return server.sign({"content": "hello", "origin_server_ts": NOW_MS}, key)


async def refused(keyring: Keyring, server: str, value: dict[str, Any], at: int = NOW_MS) -> str:
    with pytest.raises(KeyVerificationError) as caught:
        await keyring.verify_json_for_server(server, value, at)
    assert caught.value.server_name == server
    return caught.value.reason


@pytest_twisted.ensureDeferred
async def test_a_signature_is_checked_with_the_key_the_server_publishes(world: World) -> None:
    remote = RemoteServer("remote.example")
    world.peers.serve_keys(remote)
    keyring = world.keyring()
    await keyring.verify_json_for_server(remote.name, signed_object(remote), NOW_MS)
    await keyring.verify_json_for_server(remote.name, signed_object(remote), NOW_MS)
    # The second check used the key in memory.
    assert world.peers.count(remote.name, KEYS_PATH) == 1
    assert await keyring.get_verify_keys(remote.name, [remote.key_id, "ed25519:nope"], NOW_MS) == {
        remote.key_id: get_verify_key(remote.signing_key)
    }


@pytest_twisted.ensureDeferred
async def test_a_forged_signature_is_refused(world: World) -> None:
    remote = RemoteServer("remote.example")
    world.peers.serve_keys(remote)
    forger_key = generate_signing_key(remote.signing_key.version)  # same key ID, other key
    reason = await refused(world.keyring(), remote.name, signed_object(remote, forger_key))
    assert "bad signature" in reason


@pytest_twisted.ensureDeferred
async def test_objects_without_the_servers_signature_are_refused(world: World) -> None:
    remote = RemoteServer("remote.example")
    other = RemoteServer("other.example")
    world.peers.serve_keys(remote)
    keyring = world.keyring()
    assert "not signed by" in await refused(keyring, remote.name, {"content": 1})
    assert "not signed by" in await refused(keyring, remote.name, signed_object(other))
    unknown_algorithm = {"signatures": {remote.name: {"curve25519:x": "abc"}}}
    assert "no ed25519 signature" in await refused(keyring, remote.name, unknown_algorithm)
    assert world.peers.requests == []


@pytest_twisted.ensureDeferred
async def test_a_key_response_not_signed_by_its_server_is_refused(world: World) -> None:
    remote = RemoteServer("remote.example")
    response = remote.key_response()
    response["signatures"] = {}
    world.peers.answers[(remote.name, KEYS_PATH)] = response
    reason = await refused(world.keyring(), remote.name, signed_object(remote))
    assert "not signed by remote.example" in reason


@pytest_twisted.ensureDeferred
async def test_a_key_response_signed_with_an_unlisted_key_is_refused(world: World) -> None:
    remote = RemoteServer("remote.example")
    response = remote.key_response()
    del response["signatures"]
    response = remote.sign(response, generate_signing_key("unlisted"))
    world.peers.answers[(remote.name, KEYS_PATH)] = response
    reason = await refused(world.keyring(), remote.name, signed_object(remote))
    assert "with a key it lists" in reason


@pytest_twisted.ensureDeferred
async def test_a_key_response_for_another_server_is_refused(world: World) -> None:
    remote = RemoteServer("remote.example")
    impostor = RemoteServer("impostor.example", signing_key=remote.signing_key)
    world.peers.answers[(remote.name, KEYS_PATH)] = impostor.key_response()
    reason = await refused(world.keyring(), remote.name, signed_object(remote))
    assert "is for 'impostor.example'" in reason


@pytest.mark.parametrize(
    "change",
    [
        {"valid_until_ts": "tomorrow"},
        {"verify_keys": []},
        {"verify_keys": {"ed25519:a_key1": {"key": "not base64!"}}},
        {"old_verify_keys": {"ed25519:x": {"key": "AAAA"}}},
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_malformed_key_response_is_refused(world: World, change: dict[str, Any]) -> None:
    remote = RemoteServer("remote.example")
    response = remote.key_response()
    del response["signatures"]
    world.peers.answers[(remote.name, KEYS_PATH)] = remote.sign({**response, **change})
    await refused(world.keyring(), remote.name, signed_object(remote))


@pytest_twisted.ensureDeferred
async def test_keys_survive_a_restart(world: World) -> None:
    remote = RemoteServer("remote.example")
    world.peers.serve_keys(remote)
    await world.keyring().verify_json_for_server(remote.name, signed_object(remote), NOW_MS)
    world.peers.answers.clear()
    restarted = world.keyring()
    await restarted.verify_json_for_server(remote.name, signed_object(remote), NOW_MS)
    assert world.peers.count(remote.name, KEYS_PATH) == 1


@pytest_twisted.ensureDeferred
async def test_a_key_is_refused_after_valid_until_ts(world: World) -> None:
    remote = RemoteServer("remote.example")
    world.peers.serve_keys(remote, valid_until_ts=NOW_MS + 3_600_000)
    keyring = world.keyring()
    value = signed_object(remote)
    await keyring.verify_json_for_server(remote.name, value, NOW_MS + 3_600_000)
    reason = await refused(keyring, remote.name, value, at=NOW_MS + 3_600_001)
    assert "valid at" in reason
    # Asked again for a fresher response, which did not come.
    assert world.peers.count(remote.name, KEYS_PATH) == 2
    # Room versions that do not enforce validity ask for time 0.
    await keyring.verify_json_for_server(remote.name, value, 0)


@pytest_twisted.ensureDeferred
async def test_a_key_is_believed_for_at_most_seven_days(world: World) -> None:
    remote = RemoteServer("remote.example")
    world.peers.serve_keys(remote, valid_until_ts=NOW_MS + 365 * DAY_MS)
    keyring = world.keyring()
    value = signed_object(remote)
    await keyring.verify_json_for_server(remote.name, value, NOW_MS + 7 * DAY_MS)
    await refused(keyring, remote.name, value, at=NOW_MS + 7 * DAY_MS + 1)


@pytest_twisted.ensureDeferred
async def test_a_fresher_response_extends_a_keys_validity(world: World) -> None:
    remote = RemoteServer("remote.example")
    world.peers.serve_keys(remote, valid_until_ts=NOW_MS + 1_000)
    keyring = world.keyring()
    value = signed_object(remote)
    await keyring.verify_json_for_server(remote.name, value, NOW_MS)
    world.peers.serve_keys(remote, valid_until_ts=NOW_MS + DAY_MS)
    world.reactor.advance(2)
    await keyring.verify_json_for_server(remote.name, value, NOW_MS + 2_000)
    assert world.peers.count(remote.name, KEYS_PATH) == 2


@pytest_twisted.ensureDeferred
async def test_old_keys_are_valid_until_they_expired(world: World) -> None:
    remote = RemoteServer("remote.example")
    old_key = remote.signing_key
    remote.rotate(expired_ts=NOW_MS - 10_000)
    world.peers.serve_keys(remote)
    keyring = world.keyring()
    signed_before = signed_object(remote, old_key)
    await keyring.verify_json_for_server(remote.name, signed_before, NOW_MS - 10_000)
    await refused(keyring, remote.name, signed_before, at=NOW_MS - 9_999)
    await keyring.verify_json_for_server(remote.name, signed_object(remote), NOW_MS)


@pytest_twisted.ensureDeferred
async def test_unknown_keys_are_skipped_when_a_known_one_verifies(world: World) -> None:
    remote = RemoteServer("remote.example")
    world.peers.serve_keys(remote)
    value = signed_object(remote)
    value["signatures"][remote.name]["ed25519:unknown"] = "c2lnbmF0dXJl"
    await world.keyring().verify_json_for_server(remote.name, value, NOW_MS)


@pytest_twisted.ensureDeferred
async def test_a_failed_server_is_asked_again_only_after_a_minute(world: World) -> None:
    remote = RemoteServer("remote.example")
    keyring = world.keyring()
    value = signed_object(remote)
    assert "does not answer" in await refused(keyring, remote.name, value)
    world.peers.serve_keys(remote)
    world.reactor.advance(59)
    assert "not retried yet" in await refused(keyring, remote.name, value)
    assert world.peers.count(remote.name, KEYS_PATH) == 1
    world.reactor.advance(1)
    await keyring.verify_json_for_server(remote.name, value, NOW_MS)
    assert world.peers.count(remote.name, KEYS_PATH) == 2


@pytest_twisted.ensureDeferred
async def test_a_bogus_key_id_does_not_hold_off_the_servers_real_keys(world: World) -> None:
    remote = RemoteServer("remote.example")
    keyring = world.keyring()
    forged = signed_object(remote)
    forged["signatures"][remote.name] = {"ed25519:bogus": "c2lnbmF0dXJl"}
    await refused(keyring, remote.name, forged)
    # The server publishes its key right after: a signature with it is checked at once.
    world.peers.serve_keys(remote)
    await keyring.verify_json_for_server(remote.name, signed_object(remote), NOW_MS)
    assert "not retried yet" in await refused(keyring, remote.name, forged)


@pytest_twisted.ensureDeferred
async def test_the_database_is_read_even_after_a_failed_lookup(world: World) -> None:
    remote = RemoteServer("remote.example")
    keyring = world.keyring()
    value = signed_object(remote)
    await refused(keyring, remote.name, value)
    # Another process (here: another keyring on the same database) stores the key.
    world.peers.serve_keys(remote)
    await world.keyring().verify_json_for_server(remote.name, value, NOW_MS)
    fetched = world.peers.count(remote.name, KEYS_PATH)
    await keyring.verify_json_for_server(remote.name, value, NOW_MS)
    assert world.peers.count(remote.name, KEYS_PATH) == fetched


def test_failed_lookups_are_remembered_in_bounded_memory(world: World) -> None:
    keyring = world.keyring()
    for i in range(_MAX_ATTEMPT_RECORDS + 100):
        keyring._record_attempts("any", f"s{i}.example", ["ed25519:a"], "down")
    assert len(keyring._attempts) == _MAX_ATTEMPT_RECORDS


@pytest_twisted.ensureDeferred
async def test_concurrent_lookups_share_one_fetch(world: World) -> None:
    remote = RemoteServer("remote.example")
    world.peers.serve_keys(remote)
    gate: defer.Deferred[None] = defer.Deferred()
    world.peers.gate = gate
    keyring = world.keyring()
    fetches = [
        defer.ensureDeferred(keyring.fetch_directly(remote.name, [remote.key_id], NOW_MS))
        for _ in range(3)
    ]
    assert world.peers.count(remote.name, KEYS_PATH) == 1
    world.peers.gate = None
    gate.callback(None)
    await defer.gatherResults(fetches, consumeErrors=True)
    assert world.peers.count(remote.name, KEYS_PATH) == 1
    await keyring.verify_json_for_server(remote.name, signed_object(remote), NOW_MS)
    assert world.peers.count(remote.name, KEYS_PATH) == 1


@pytest_twisted.ensureDeferred
async def test_our_own_signatures_need_no_request(world: World) -> None:
    keyring = world.keyring()
    ours = sign_json({"a": 1}, US, world.local.signing_key)
    await keyring.verify_json_for_server(US, ours, NOW_MS + 365 * DAY_MS)
    forged = sign_json({"a": 1}, US, generate_signing_key(world.local.signing_key.version))
    await refused(keyring, US, forged)
    assert world.peers.requests == []


@pytest_twisted.ensureDeferred
async def test_a_trusted_notary_is_asked_before_the_server(world: World) -> None:
    remote = RemoteServer("remote.example")
    notary = RemoteServer("notary.example")
    world.peers.serve_notary(notary.name, notary_answer(notary, {remote.name: remote}))
    keyring = world.keyring([notary])
    await keyring.verify_json_for_server(remote.name, signed_object(remote), NOW_MS)
    assert world.peers.count(remote.name, KEYS_PATH) == 0
    (_, _, _, body) = world.peers.requests[0]
    assert body == {
        "server_keys": {remote.name: {remote.key_id: {"minimum_valid_until_ts": NOW_MS}}}
    }
    stored = await ServerKeyStore(world.db).get_key_responses(remote.name)
    assert stored[remote.key_id].from_server == notary.name


@pytest_twisted.ensureDeferred
async def test_a_notary_answer_without_the_notarys_signature_is_refused(world: World) -> None:
    remote = RemoteServer("remote.example")
    notary = RemoteServer("notary.example")
    world.peers.serve_notary(notary.name, lambda body: {"server_keys": [remote.key_response()]})
    reason = await refused(world.keyring([notary]), remote.name, signed_object(remote))
    assert "not signed by notary notary.example" in reason
    # Then the server itself was asked (and did not answer).
    assert world.peers.count(remote.name, KEYS_PATH) == 1


@pytest_twisted.ensureDeferred
async def test_a_notary_answer_signed_with_the_wrong_key_is_refused(world: World) -> None:
    remote = RemoteServer("remote.example")
    notary = RemoteServer("notary.example")
    impostor = RemoteServer(
        notary.name, signing_key=generate_signing_key(notary.signing_key.version)
    )
    world.peers.serve_notary(notary.name, notary_answer(impostor, {remote.name: remote}))
    reason = await refused(world.keyring([notary]), remote.name, signed_object(remote))
    assert "bad signature of notary.example" in reason
    # A key under another ID is no better.
    other_id = RemoteServer(notary.name, signing_key=generate_signing_key("other"))
    world.peers.serve_notary(notary.name, notary_answer(other_id, {remote.name: remote}))
    world.reactor.advance(60)
    reason = await refused(world.keyring([notary]), remote.name, signed_object(remote))
    assert "with a key we trust" in reason


@pytest_twisted.ensureDeferred
async def test_a_notary_cannot_vouch_for_a_key_the_server_did_not_sign(world: World) -> None:
    remote = RemoteServer("remote.example")
    notary = RemoteServer("notary.example")
    forged = RemoteServer(remote.name, signing_key=generate_signing_key("forged"))
    world.peers.serve_notary(notary.name, notary_answer(notary, {remote.name: forged}))
    forged_response = forged.key_response()
    del forged_response["signatures"]
    world.peers.serve_notary(
        notary.name, lambda body: {"server_keys": [notary.sign(forged_response)]}
    )
    reason = await refused(world.keyring([notary]), remote.name, signed_object(forged))
    assert "not signed by remote.example" in reason


@pytest_twisted.ensureDeferred
async def test_keys_a_notary_sends_for_other_servers_are_ignored(world: World) -> None:
    remote = RemoteServer("remote.example")
    victim = RemoteServer("victim.example")
    notary = RemoteServer("notary.example")
    world.peers.serve_notary(
        notary.name, lambda body: {"server_keys": [notary.sign(victim.key_response())]}
    )
    await refused(world.keyring([notary]), remote.name, signed_object(remote))
    assert await ServerKeyStore(world.db).get_key_responses(victim.name) == {}


@pytest_twisted.ensureDeferred
async def test_a_notary_without_configured_keys_is_checked_with_its_own(world: World) -> None:
    remote = RemoteServer("remote.example")
    notary = RemoteServer("notary.example")
    world.peers.serve_keys(notary)
    world.peers.serve_notary(notary.name, notary_answer(notary, {remote.name: remote}))
    await world.keyring([notary.name]).verify_json_for_server(
        remote.name, signed_object(remote), NOW_MS
    )
    assert world.peers.count(notary.name, KEYS_PATH) == 1
    assert world.peers.count(remote.name, KEYS_PATH) == 0


@pytest_twisted.ensureDeferred
async def test_an_unreachable_notary_falls_back_to_the_server(world: World) -> None:
    remote = RemoteServer("remote.example")
    notary = RemoteServer("notary.example")
    world.peers.serve_keys(remote)
    await world.keyring([notary]).verify_json_for_server(remote.name, signed_object(remote), NOW_MS)
    assert world.peers.count(notary.name, QUERY_PATH) == 1
    assert world.peers.count(remote.name, KEYS_PATH) == 1
