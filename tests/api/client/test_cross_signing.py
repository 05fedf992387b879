"""Cross-signing: ``/keys/device_signing/upload``, ``/keys/signatures/upload`` and what
``/keys/query`` shows of them, against the real server over HTTP (both engines),
with real Ed25519 keys.

spec: client-server-api/modules/end_to_end_encryption.md#cross-signing,
data/api/client-server/cross_signing.yaml, keys.yaml
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

from signedjson.key import (
    decode_signing_key_base64,
    encode_signing_key_base64,
    encode_verify_key_base64,
    generate_signing_key,
    get_verify_key,
)
from signedjson.sign import sign_json, verify_signed_json
from signedjson.types import SigningKey

from tests.api.client.test_keys import Device, new_device, query
from tests.api.client.test_rooms import create_room
from tests.support.http import Response
from tests.support.matrix import PASSWORD, call, login, password_auth
from tests.support.server_process import ServerProcess

UPLOAD = "/keys/device_signing/upload"
SIGNATURES = "/keys/signatures/upload"


def cross_signing_key(seed: SigningKey | None = None) -> SigningKey:
    """An Ed25519 key whose key ID is ``ed25519:<its public key>``, as cross-signing
    keys are named (``seed``: reuse that key's secret)."""
    secret = seed if seed is not None else generate_signing_key("new")
    public = encode_verify_key_base64(get_verify_key(secret))
    return decode_signing_key_base64("ed25519", public, encode_signing_key_base64(secret))


def public_of(key: SigningKey) -> str:
    return encode_verify_key_base64(get_verify_key(key))


class Identity:
    """A user's three cross-signing keys, as their client holds them."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.user_id = device.user_id
        self.master = cross_signing_key()
        self.self_signing = cross_signing_key()
        self.user_signing = cross_signing_key()

    def public_key(self, key: SigningKey, usage: str, signed_by: SigningKey | None) -> Any:
        public = public_of(key)
        body = {"user_id": self.user_id, "usage": [usage], "keys": {f"ed25519:{public}": public}}
        return sign_json(body, self.user_id, signed_by) if signed_by is not None else body

    def upload_body(self) -> dict[str, Any]:
        return {
            "master_key": self.public_key(self.master, "master", None),
            "self_signing_key": self.public_key(self.self_signing, "self_signing", self.master),
            "user_signing_key": self.public_key(self.user_signing, "user_signing", self.master),
        }

    def upload(self, body: dict[str, Any] | None = None) -> Response:
        return self.device.post(UPLOAD, self.upload_body() if body is None else body)

    def bootstrap(self) -> None:
        """Publish the keys and cross-sign the device with them (what Element does)."""
        assert self.upload().status == 200
        device_keys = self.device.device_keys()
        assert self.device.upload(device_keys=device_keys).status == 200
        signed = sign_json(copy.deepcopy(device_keys), self.user_id, self.self_signing)
        response = self.device.post(SIGNATURES, {self.user_id: {self.device.device_id: signed}})
        assert response.status == 200, response.body
        assert response.json() == {"failures": {}}


def error(response: Response) -> tuple[int, str]:
    return response.status, response.json().get("errcode", "")


def test_first_upload_needs_no_auth_but_replacing_keys_does(open_server: ServerProcess) -> None:
    alice = Identity(new_device(open_server, "cs_alice_uia"))
    first = alice.upload()
    assert first.status == 200, first.body
    assert first.json() == {}
    # The same keys again (a retried request whose response was lost): no UIA.
    assert alice.upload().status == 200

    old_master = alice.master
    alice.master = cross_signing_key()
    alice.self_signing = cross_signing_key()
    # A new master key and self-signing key, no user-signing key: needs the password.
    body = alice.upload_body()
    del body["user_signing_key"]
    challenge = alice.upload(body)
    assert challenge.status == 401, challenge.body
    assert challenge.json()["flows"] == [{"stages": ["m.login.password"]}]
    session = challenge.json()["session"]
    still = query(alice.device, {alice.user_id: []})
    assert still["master_keys"][alice.user_id]["keys"] == {
        f"ed25519:{public_of(old_master)}": public_of(old_master)
    }
    # Completing UIA with only 'auth': the keys are those the session started with.
    done = alice.device.post(
        UPLOAD, {"auth": password_auth("cs_alice_uia", PASSWORD, session=session)}
    )
    assert done.status == 200, done.body

    result = query(alice.device, {alice.user_id: []})
    assert result["master_keys"][alice.user_id] == body["master_key"]
    assert result["self_signing_keys"][alice.user_id] == body["self_signing_key"]
    # The old user-signing key was signed by the old master key: it is gone with it.
    assert alice.user_id not in result["user_signing_keys"]

    # A user-signing key added to an existing master key is a change too.
    alice.user_signing = cross_signing_key()
    added = {"user_signing_key": alice.upload_body()["user_signing_key"]}
    assert alice.upload(added).status == 401
    with_password = {**added, "auth": password_auth("cs_alice_uia", PASSWORD)}
    assert alice.upload(with_password).status == 200
    assert alice.user_id in query(alice.device, {alice.user_id: []})["user_signing_keys"]


def test_keys_not_signed_by_the_master_key_are_refused(open_server: ServerProcess) -> None:
    alice = Identity(new_device(open_server, "cs_alice_refused"))
    stranger = cross_signing_key()
    body = alice.upload_body()
    body["self_signing_key"] = alice.public_key(alice.self_signing, "self_signing", stranger)
    assert error(alice.upload(body)) == (400, "M_INVALID_SIGNATURE")
    body = alice.upload_body()
    body["user_signing_key"] = alice.public_key(alice.user_signing, "user_signing", None)
    assert error(alice.upload(body)) == (400, "M_INVALID_SIGNATURE")
    # Nothing was stored by the refused uploads.
    assert query(alice.device, {alice.user_id: []})["master_keys"] == {}
    # A self-signing key with no master key anywhere.
    lone = {"self_signing_key": alice.upload_body()["self_signing_key"]}
    assert error(alice.upload(lone)) == (400, "M_MISSING_PARAM")

    assert alice.upload().status == 200
    # Later keys are checked against the stored master key.
    forged = {"self_signing_key": alice.public_key(cross_signing_key(), "self_signing", stranger)}
    assert error(alice.upload(forged)) == (400, "M_INVALID_SIGNATURE")


def test_keys_with_the_wrong_user_or_usage_are_refused(open_server: ServerProcess) -> None:
    alice = Identity(new_device(open_server, "cs_alice_shape"))
    wrong_user = alice.upload_body()
    wrong_user["master_key"]["user_id"] = "@someone:else.example"
    assert error(alice.upload(wrong_user)) == (400, "M_INVALID_PARAM")
    wrong_usage = alice.upload_body()
    wrong_usage["master_key"]["usage"] = ["self_signing"]
    assert error(alice.upload(wrong_usage)) == (400, "M_INVALID_PARAM")
    public = public_of(alice.master)
    for keys in (
        {f"ed25519:{public}": public, "ed25519:other": "other"},
        {"ed25519:different": public},
        {f"ed25519:{public}": "different"},
        {"ed25519:notakey": "notakey"},
    ):
        body = alice.upload_body()
        body["master_key"]["keys"] = keys
        assert error(alice.upload(body)) == (400, "M_INVALID_PARAM"), keys
    assert error(alice.upload({"master_key": "nope"})) == (400, "M_BAD_JSON")


def test_a_public_key_equal_to_a_device_id_is_refused(open_server: ServerProcess) -> None:
    alice = Identity(new_device(open_server, "cs_alice_collide"))
    login(open_server, "cs_alice_collide", device_id=public_of(alice.master))
    assert error(alice.upload()) == (403, "M_FORBIDDEN")


def test_query_shows_the_user_signing_key_only_to_its_owner(open_server: ServerProcess) -> None:
    alice = Identity(new_device(open_server, "cs_alice_query"))
    bob = new_device(open_server, "cs_bob_query")
    body = alice.upload_body()
    assert alice.upload(body).status == 200

    seen_by_bob = query(bob, {alice.user_id: [], bob.user_id: []})
    assert seen_by_bob["master_keys"] == {alice.user_id: body["master_key"]}
    assert seen_by_bob["self_signing_keys"] == {alice.user_id: body["self_signing_key"]}
    assert seen_by_bob["user_signing_keys"] == {}

    seen_by_alice = query(alice.device, {alice.user_id: []})
    assert seen_by_alice["user_signing_keys"] == {alice.user_id: body["user_signing_key"]}
    master = seen_by_alice["master_keys"][alice.user_id]
    self_signing = seen_by_alice["self_signing_keys"][alice.user_id]
    verify_signed_json(self_signing, alice.user_id, get_verify_key(alice.master))
    assert master == body["master_key"]


def test_a_device_signed_by_the_self_signing_key_shows_the_signature(
    open_server: ServerProcess,
) -> None:
    alice = Identity(new_device(open_server, "cs_alice_device"))
    bob = new_device(open_server, "cs_bob_device")
    alice.bootstrap()
    # The master key signed by the device (migrating a device verification).
    master = alice.public_key(alice.master, "master", None)
    signed_master = sign_json(copy.deepcopy(master), alice.user_id, alice.device.key)
    response = alice.device.post(
        SIGNATURES, {alice.user_id: {public_of(alice.master): signed_master}}
    )
    assert response.json() == {"failures": {}}

    result = query(bob, {alice.user_id: []})
    device = result["device_keys"][alice.user_id][alice.device.device_id]
    signatures = device["signatures"][alice.user_id]
    assert signatures.keys() == {
        f"ed25519:{alice.device.device_id}",
        f"ed25519:{public_of(alice.self_signing)}",
    }
    # Both signatures of the served object verify: the device's own and the SSK's.
    verify_signed_json(device, alice.user_id, get_verify_key(alice.device.key))
    verify_signed_json(device, alice.user_id, get_verify_key(alice.self_signing))
    served_master = result["master_keys"][alice.user_id]
    verify_signed_json(served_master, alice.user_id, get_verify_key(alice.device.key))


def test_a_forged_signature_is_a_failure_and_not_stored(open_server: ServerProcess) -> None:
    alice = Identity(new_device(open_server, "cs_alice_forged"))
    other = new_device(open_server, "cs_alice_forged_other")
    assert alice.upload().status == 200
    device_keys = alice.device.device_keys()
    assert alice.device.upload(device_keys=device_keys).status == 200

    impostor = cross_signing_key()
    impostor = decode_signing_key_base64(
        "ed25519", public_of(alice.self_signing), encode_signing_key_base64(impostor)
    )
    forged = sign_json(copy.deepcopy(device_keys), alice.user_id, impostor)
    tampered = sign_json(copy.deepcopy(device_keys), alice.user_id, alice.self_signing)
    tampered["algorithms"] = ["m.olm.v1.curve25519-aes-sha2"]
    response = alice.device.post(
        SIGNATURES,
        {
            alice.user_id: {alice.device.device_id: forged, "NOSUCHDEVICE": forged},
            other.user_id: {"notamasterkey": forged},
        },
    )
    assert response.status == 200, response.body
    failures = response.json()["failures"]
    assert failures[alice.user_id][alice.device.device_id]["errcode"] == "M_INVALID_SIGNATURE"
    assert failures[alice.user_id]["NOSUCHDEVICE"]["errcode"] == "M_NOT_FOUND"
    assert failures[other.user_id]["notamasterkey"]["errcode"] == "M_NOT_FOUND"
    assert all(isinstance(f["error"], str) for f in failures[alice.user_id].values())
    response = alice.device.post(SIGNATURES, {alice.user_id: {alice.device.device_id: tampered}})
    assert response.json()["failures"][alice.user_id][alice.device.device_id]["errcode"] == (
        "M_INVALID_PARAM"
    )

    device = query(other, {alice.user_id: []})["device_keys"][alice.user_id]
    assert device[alice.device.device_id]["signatures"] == device_keys["signatures"]


def test_a_user_signing_signature_is_shown_only_to_its_signer(open_server: ServerProcess) -> None:
    alice = Identity(new_device(open_server, "cs_alice_usk"))
    bob = Identity(new_device(open_server, "cs_bob_usk"))
    carol = new_device(open_server, "cs_carol_usk")
    assert alice.upload().status == 200
    assert bob.upload().status == 200

    bobs_master = query(alice.device, {bob.user_id: []})["master_keys"][bob.user_id]
    signed = sign_json(copy.deepcopy(bobs_master), alice.user_id, alice.user_signing)
    response = alice.device.post(SIGNATURES, {bob.user_id: {public_of(bob.master): signed}})
    assert response.json() == {"failures": {}}

    seen_by_alice = query(alice.device, {bob.user_id: []})["master_keys"][bob.user_id]
    assert seen_by_alice["signatures"][alice.user_id] == {
        f"ed25519:{public_of(alice.user_signing)}": signed["signatures"][alice.user_id][
            f"ed25519:{public_of(alice.user_signing)}"
        ]
    }
    verify_signed_json(seen_by_alice, alice.user_id, get_verify_key(alice.user_signing))
    for viewer in (carol, bob.device):
        master = query(viewer, {bob.user_id: []})["master_keys"][bob.user_id]
        assert alice.user_id not in master.get("signatures", {})

    # Signing with a key that is not Alice's user-signing key is refused.
    by_ssk = sign_json(copy.deepcopy(bobs_master), alice.user_id, alice.self_signing)
    response = alice.device.post(SIGNATURES, {bob.user_id: {public_of(bob.master): by_ssk}})
    failure = response.json()["failures"][bob.user_id][public_of(bob.master)]
    assert failure["errcode"] == "M_INVALID_SIGNATURE"


def test_a_replaced_device_does_not_inherit_signatures(open_server: ServerProcess) -> None:
    alice = Identity(new_device(open_server, "cs_alice_replaced"))
    alice.bootstrap()
    device_id = alice.device.device_id
    deleted = call(
        open_server,
        "DELETE",
        f"/devices/{quote(device_id)}",
        alice.device.token,
        {"auth": password_auth("cs_alice_replaced")},
    )
    assert deleted.status == 200, deleted.body
    again = Device(open_server, login(open_server, "cs_alice_replaced", device_id=device_id))
    keys = again.device_keys()
    assert again.upload(device_keys=keys).status == 200
    served = query(again, {alice.user_id: []})["device_keys"][alice.user_id][device_id]
    assert served["signatures"] == keys["signatures"]


def test_a_room_mate_sees_a_cross_signing_upload_in_device_lists(
    open_server: ServerProcess,
) -> None:
    alice = Identity(new_device(open_server, "cs_alice_lists"))
    bob = new_device(open_server, "cs_bob_lists")
    room_id = create_room(open_server, alice.device.token, preset="public_chat")
    joined = call(open_server, "POST", f"/rooms/{quote(room_id)}/join", bob.token, {})
    assert joined.status == 200, joined.body
    since = bob.sync()["next_batch"]
    assert alice.upload().status == 200
    changed = bob.sync(since).get("device_lists", {}).get("changed", [])
    assert alice.user_id in changed


def test_signing_someone_elses_master_key_tells_only_the_signers_devices(
    open_server: ServerProcess,
) -> None:
    alice = Identity(new_device(open_server, "cs_alice_tells"))
    alice_phone = Device(open_server, login(open_server, "cs_alice_tells"))
    bob = Identity(new_device(open_server, "cs_bob_tells"))
    carol = new_device(open_server, "cs_carol_tells")
    room_id = create_room(open_server, alice.device.token, preset="public_chat")
    for member in (bob.device, carol):
        joined = call(open_server, "POST", f"/rooms/{quote(room_id)}/join", member.token, {})
        assert joined.status == 200, joined.body
    assert alice.upload().status == 200
    assert bob.upload().status == 200
    since = {device.device_id: device.sync()["next_batch"] for device in (alice_phone, carol)}

    bobs_master = query(alice.device, {bob.user_id: []})["master_keys"][bob.user_id]
    signed = sign_json(copy.deepcopy(bobs_master), alice.user_id, alice.user_signing)
    response = alice.device.post(SIGNATURES, {bob.user_id: {public_of(bob.master): signed}})
    assert response.json() == {"failures": {}}

    # alice's other device must fetch bob's keys again (it is shown the signature)...
    phone_lists = alice_phone.sync(since[alice_phone.device_id]).get("device_lists", {})
    assert phone_lists.get("changed") == [bob.user_id]
    # ...and nobody else learns of anything (carol is not shown the signature).
    carol_lists = carol.sync(since[carol.device_id]).get("device_lists", {})
    assert carol_lists.get("changed", []) == []


def test_a_new_device_cannot_take_the_id_of_a_cross_signing_key(
    open_server: ServerProcess,
) -> None:
    """spec: end_to_end_encryption.md#key-and-signature-security: "Servers MUST not allow
    devices to have the same IDs as cross-signing keys"."""
    alice = Identity(new_device(open_server, "cs_alice_taken"))
    assert alice.upload().status == 200
    for key in (alice.master, alice.self_signing, alice.user_signing):
        response = call(
            open_server,
            "POST",
            "/login",
            body={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": "cs_alice_taken"},
                "password": PASSWORD,
                "device_id": public_of(key),
            },
        )
        assert response.status == 400, response.body
        assert response.json()["errcode"] == "M_INVALID_PARAM"
    # Logging in again to an existing device is unaffected.
    again = login(open_server, "cs_alice_taken", device_id=alice.device.device_id)
    assert again["device_id"] == alice.device.device_id
