"""CrossSigningStore on both engines: replacing keys only from the state the caller
checked, signatures going with the key they depended on, what a viewer may see, and
a deactivated user's rows.

spec: client-server-api/modules/end_to_end_encryption.md#cross-signing
"""

from __future__ import annotations

import pytest_twisted

from homeserver.storage.cross_signing import CrossSigningStore, NewKey, StoredSignature
from homeserver.storage.database import Database

ALICE = "@alice:hs"
BOB = "@bob:hs"
CAROL = "@carol:hs"


def key(public: str) -> NewKey:
    return NewKey(public, f'{{"keys":{{"ed25519:{public}":"{public}"}}}}')


def signature(target: str, target_key: str, signer: str, signer_key: str) -> StoredSignature:
    return StoredSignature(target, target_key, signer, signer_key, target_key, f"sig-{signer_key}")


@pytest_twisted.ensureDeferred
async def test_keys_are_replaced_only_from_the_state_that_was_checked(db: Database) -> None:
    store = CrossSigningStore(db)
    first = {"master": key("M1"), "self_signing": key("S1")}
    assert await store.replace_keys(ALICE, expected={}, new=first, drop=[], now_ms=1)
    # A second "first upload" checked against the empty state writes nothing.
    assert not await store.replace_keys(
        ALICE, expected={}, new={"master": key("M2")}, drop=[], now_ms=2
    )
    stored = await store.get_user_keys(ALICE)
    assert {usage: k.public_key for usage, k in stored.items()} == {
        "master": "M1",
        "self_signing": "S1",
    }
    expected = {usage: k.key_json for usage, k in stored.items()}
    assert await store.replace_keys(
        ALICE, expected=expected, new={"master": key("M2")}, drop=["self_signing"], now_ms=3
    )
    assert {k.usage: k.public_key for k in await store.get_keys([ALICE, BOB])} == {"master": "M2"}


@pytest_twisted.ensureDeferred
async def test_signatures_go_with_the_key_they_depended_on(db: Database) -> None:
    store = CrossSigningStore(db)
    await store.replace_keys(
        ALICE,
        expected={},
        new={"master": key("M1"), "self_signing": key("S1"), "user_signing": key("U1")},
        drop=[],
        now_ms=1,
    )
    await store.replace_keys(BOB, expected={}, new={"master": key("BM")}, drop=[], now_ms=1)
    sigs = [
        signature(ALICE, "DEV", ALICE, "ed25519:S1"),  # device by the self-signing key
        signature(ALICE, "M1", ALICE, "ed25519:DEV"),  # master key by a device
        signature(BOB, "BM", ALICE, "ed25519:U1"),  # Bob's master by the user-signing key
    ]
    assert await store.add_signatures(sigs) == {sig.target_user_id for sig in sigs}
    assert await store.add_signatures(sigs) == set()  # already stored: nothing new

    stored = await store.get_user_keys(ALICE)
    assert await store.replace_keys(
        ALICE,
        expected={usage: k.key_json for usage, k in stored.items()},
        new={"master": key("M2"), "self_signing": key("S2")},
        drop=["user_signing"],
        now_ms=2,
    )
    _, remaining = await store.query([ALICE, BOB], ALICE)
    assert remaining == []


@pytest_twisted.ensureDeferred
async def test_a_viewer_sees_owner_signatures_and_their_own(db: Database) -> None:
    store = CrossSigningStore(db)
    await store.add_signatures(
        [
            signature(BOB, "BM", BOB, "ed25519:BDEV"),
            signature(BOB, "BM", ALICE, "ed25519:AU"),
            signature(BOB, "BM", CAROL, "ed25519:CU"),
        ]
    )
    _, seen_by_alice = await store.query([BOB], ALICE)
    assert {s.signer_user_id for s in seen_by_alice} == {BOB, ALICE}
    _, seen_by_bob = await store.query([BOB], BOB)
    assert {s.signer_user_id for s in seen_by_bob} == {BOB}

    await store.forget_user(ALICE)
    _, after = await store.query([BOB], ALICE)
    assert {s.signer_user_id for s in after} == {BOB}
