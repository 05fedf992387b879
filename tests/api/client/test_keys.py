"""``/keys/upload``, ``/keys/query``, ``/keys/claim`` and the key counts in ``/sync``
against the real server over HTTP (both engines), with real Ed25519 signatures.

spec: client-server-api/modules/end_to_end_encryption.md, data/api/client-server/keys.yaml
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json, verify_signed_json
from signedjson.types import SigningKey

from tests.support.http import Response
from tests.support.matrix import call, login, password_auth, register
from tests.support.server_process import ServerProcess

ALG = "signed_curve25519"
OLM = "m.olm.v1.curve25519-aes-sha2"
MEGOLM = "m.megolm.v1.aes-sha2"


class Device:
    """A device of an account, with its own Ed25519 key, as a client would hold."""

    def __init__(self, server: ServerProcess, account: dict[str, Any]) -> None:
        self.server = server
        self.user_id: str = account["user_id"]
        self.device_id: str = account["device_id"]
        self.token: str = account["access_token"]
        self.key: SigningKey = generate_signing_key(self.device_id)
        self.ed25519 = encode_verify_key_base64(get_verify_key(self.key))

    def device_keys(self, curve: str = "curve-identity") -> dict[str, Any]:
        body = {
            "user_id": self.user_id,
            "device_id": self.device_id,
            "algorithms": [OLM, MEGOLM],
            "keys": {
                f"curve25519:{self.device_id}": curve,
                f"ed25519:{self.device_id}": self.ed25519,
            },
        }
        signed: dict[str, Any] = sign_json(body, self.user_id, self.key)
        return signed

    def one_time_keys(self, ids: list[str], *, fallback: bool = False) -> dict[str, Any]:
        keys = {}
        for key_id in ids:
            key: dict[str, Any] = {"key": f"curve-{key_id}"}
            if fallback:
                key["fallback"] = True
            keys[f"{ALG}:{key_id}"] = sign_json(key, self.user_id, self.key)
        return keys

    def post(self, path: str, body: Any) -> Response:
        return call(self.server, "POST", path, self.token, body)

    def upload(self, **body: Any) -> Response:
        return self.post("/keys/upload", body)

    def sync(self, since: str | None = None) -> dict[str, Any]:
        path = "/sync?timeout=0" + (f"&since={quote(since)}" if since else "")
        response = call(self.server, "GET", path, self.token)
        assert response.status == 200, response.body
        result: dict[str, Any] = response.json()
        return result


def new_device(server: ServerProcess, name: str) -> Device:
    return Device(server, register(server, name))


def claim(device: Device, wanted: dict[str, dict[str, str]]) -> dict[str, Any]:
    response = device.post("/keys/claim", {"one_time_keys": wanted})
    assert response.status == 200, response.body
    result: dict[str, Any] = response.json()
    return result


def query(device: Device, wanted: dict[str, list[str]]) -> dict[str, Any]:
    response = device.post("/keys/query", {"device_keys": wanted, "timeout": 10000})
    assert response.status == 200, response.body
    result: dict[str, Any] = response.json()
    return result


def test_upload_query_claim_round_trip(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "alice")
    bob = new_device(open_server, "bob")
    call(
        open_server,
        "PUT",
        f"/devices/{alice.device_id}",
        alice.token,
        {"display_name": "Alice's phone"},
    )
    device_keys = alice.device_keys()
    uploaded = alice.upload(
        device_keys=device_keys,
        one_time_keys=alice.one_time_keys(["AAAA", "AAAB", "AAAC"]),
        fallback_keys=alice.one_time_keys(["FFFF"], fallback=True),
    )
    assert uploaded.status == 200, uploaded.body
    assert uploaded.json() == {"one_time_key_counts": {ALG: 3}}

    result = query(bob, {alice.user_id: [], "@carol:elsewhere.example": []})
    assert result["failures"].keys() == {"elsewhere.example"}
    served = result["device_keys"][alice.user_id][alice.device_id]
    assert served["unsigned"] == {"device_display_name": "Alice's phone"}
    # Exactly what was uploaded, and its signature still verifies.
    assert {k: v for k, v in served.items() if k != "unsigned"} == device_keys
    verify_signed_json(served, alice.user_id, get_verify_key(alice.key))
    assert query(bob, {alice.user_id: ["NOPE"]})["device_keys"] == {alice.user_id: {}}

    claimed = claim(bob, {alice.user_id: {alice.device_id: ALG}})
    assert claimed["failures"] == {}
    [(key_id, key)] = claimed["one_time_keys"][alice.user_id][alice.device_id].items()
    assert key_id.startswith(f"{ALG}:AAA")
    verify_signed_json(key, alice.user_id, get_verify_key(alice.key))
    # The counts reflect the claim; the same key never comes back.
    recounted = alice.upload()
    assert recounted.json() == {"one_time_key_counts": {ALG: 2}}
    others = {
        next(
            iter(
                claim(bob, {alice.user_id: {alice.device_id: ALG}})["one_time_keys"][alice.user_id][
                    alice.device_id
                ]
            )
        )
        for _ in range(2)
    }
    assert len(others | {key_id}) == 3


def test_bad_signatures_are_refused(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "alice")
    forged = alice.device_keys()
    forged["keys"][f"curve25519:{alice.device_id}"] = "swapped-after-signing"
    response = alice.upload(device_keys=forged)
    assert (response.status, response.json()["errcode"]) == (400, "M_INVALID_SIGNATURE")
    assert alice.upload(device_keys=alice.device_keys()).status == 200
    # One-time and fallback keys are checked against the stored device key.
    stranger = Device(open_server, {**register(open_server, "mallory"), "user_id": alice.user_id})
    for field in ("one_time_keys", "fallback_keys"):
        response = alice.upload(**{field: stranger.one_time_keys(["BAD1"])})
        assert (response.status, response.json()["errcode"]) == (400, "M_INVALID_SIGNATURE")
    unsigned = {f"{ALG}:NOSIG": {"key": "k", "signatures": {}}}
    response = alice.upload(one_time_keys=unsigned)
    assert (response.status, response.json()["errcode"]) == (400, "M_INVALID_SIGNATURE")
    assert alice.upload().json() == {"one_time_key_counts": {ALG: 0}}


def test_keys_of_another_user_or_device_are_refused(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "alice")
    bob = new_device(open_server, "bob")
    for impostor in (
        Device(open_server, {**register(open_server, "x"), "device_id": alice.device_id}),
        Device(open_server, {**register(open_server, "y"), "user_id": bob.user_id}),
    ):
        # Properly self-signed, but naming someone else's user or device.
        impostor.token = alice.token
        response = alice.upload(device_keys=impostor.device_keys())
        assert (response.status, response.json()["errcode"]) == (400, "M_INVALID_PARAM")
    missing_ed25519 = alice.device_keys()
    del missing_ed25519["keys"][f"ed25519:{alice.device_id}"]
    response = alice.upload(device_keys=missing_ed25519)
    assert (response.status, response.json()["errcode"]) == (400, "M_INVALID_PARAM")
    assert query(bob, {alice.user_id: []})["device_keys"] == {alice.user_id: {}}


def test_identity_keys_cannot_change_and_one_time_keys_cannot_be_rewritten(
    open_server: ServerProcess,
) -> None:
    alice = new_device(open_server, "alice")
    assert alice.upload(device_keys=alice.device_keys()).status == 200
    # The same keys again (a retry) are fine.
    assert alice.upload(device_keys=alice.device_keys()).status == 200
    changed = alice.upload(device_keys=alice.device_keys(curve="another-identity"))
    assert (changed.status, changed.json()["errcode"]) == (400, "M_INVALID_PARAM")
    assert alice.upload(one_time_keys=alice.one_time_keys(["K1"])).status == 200
    again = alice.upload(one_time_keys=alice.one_time_keys(["K1"]))
    assert again.json() == {"one_time_key_counts": {ALG: 1}}
    rewritten = copy.deepcopy(alice.one_time_keys(["K1"]))
    rewritten[f"{ALG}:K1"] = sign_json({"key": "other"}, alice.user_id, alice.key)
    refused = alice.upload(one_time_keys=rewritten)
    assert (refused.status, refused.json()["errcode"]) == (400, "M_INVALID_PARAM")
    two_fallbacks = alice.one_time_keys(["F1", "F2"], fallback=True)
    refused = alice.upload(fallback_keys=two_fallbacks)
    assert (refused.status, refused.json()["errcode"]) == (400, "M_INVALID_PARAM")


def test_bad_request_shapes(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "alice")
    for path, body, errcode in [
        ("/keys/query", {}, "M_MISSING_PARAM"),
        ("/keys/query", {"device_keys": []}, "M_BAD_JSON"),
        ("/keys/query", {"device_keys": {alice.user_id: "D"}}, "M_BAD_JSON"),
        ("/keys/query", {"device_keys": {"not-a-user": []}}, "M_INVALID_PARAM"),
        ("/keys/query", {"device_keys": {}, "timeout": "soon"}, "M_BAD_JSON"),
        ("/keys/claim", {}, "M_MISSING_PARAM"),
        ("/keys/claim", {"one_time_keys": {alice.user_id: {"D": 1}}}, "M_BAD_JSON"),
        ("/keys/upload", {"device_keys": "x"}, "M_BAD_JSON"),
        ("/keys/upload", {"one_time_keys": {"no-colon": "k"}}, "M_INVALID_PARAM"),
        ("/keys/upload", {"one_time_keys": {f"{ALG}:A": "unsigned"}}, "M_BAD_JSON"),
    ]:
        response = alice.post(path, body)
        assert (response.status, response.json()["errcode"]) == (400, errcode), (path, body)
    assert call(open_server, "POST", "/keys/claim", None, {"one_time_keys": {}}).status == 401


def test_counts_and_fallback_types_in_sync(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "alice")
    bob = new_device(open_server, "bob")
    initial = alice.sync()
    # Present from the start: clients read a missing count as "unknown".
    assert initial["device_one_time_keys_count"] == {ALG: 0}
    assert initial["device_unused_fallback_key_types"] == []
    alice.upload(
        device_keys=alice.device_keys(),
        one_time_keys=alice.one_time_keys(["K1", "K2"]),
        fallback_keys=alice.one_time_keys(["F1"], fallback=True),
    )
    later = alice.sync(initial["next_batch"])
    assert later["device_one_time_keys_count"] == {ALG: 2}
    assert later["device_unused_fallback_key_types"] == [ALG]
    for expected in (1, 0):
        claimed = claim(bob, {alice.user_id: {alice.device_id: ALG}})
        assert next(iter(claimed["one_time_keys"][alice.user_id][alice.device_id])) != f"{ALG}:F1"
        assert alice.sync(later["next_batch"])["device_one_time_keys_count"] == {ALG: expected}
    # Exhausted: the fallback key is handed out, again and again, and reported used.
    for _ in range(2):
        claimed = claim(bob, {alice.user_id: {alice.device_id: ALG}})
        key = claimed["one_time_keys"][alice.user_id][alice.device_id][f"{ALG}:F1"]
        assert key["fallback"] is True
        verify_signed_json(key, alice.user_id, get_verify_key(alice.key))
    after = alice.sync(later["next_batch"])
    assert after["device_unused_fallback_key_types"] == []
    # A new fallback key is unused again; bob's own counts are his own.
    alice.upload(fallback_keys=alice.one_time_keys(["F2"], fallback=True))
    assert alice.sync()["device_unused_fallback_key_types"] == [ALG]
    assert bob.sync()["device_one_time_keys_count"] == {ALG: 0}


def test_deleted_devices_lose_their_keys(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "alice")
    second = Device(open_server, login(open_server, "alice"))
    third = Device(open_server, login(open_server, "alice"))
    for device in (alice, second, third):
        assert (
            device.upload(
                device_keys=device.device_keys(),
                one_time_keys=device.one_time_keys(["K1"]),
                fallback_keys=device.one_time_keys(["F1"], fallback=True),
            ).status
            == 200
        )
    assert set(query(alice, {alice.user_id: []})["device_keys"][alice.user_id]) == {
        alice.device_id,
        second.device_id,
        third.device_id,
    }
    assert second.post("/logout", {}).status == 200
    body: dict[str, Any] = {"devices": [third.device_id]}
    session = alice.post("/delete_devices", body).json()["session"]
    body["auth"] = password_auth("alice", session=session)
    assert alice.post("/delete_devices", body).status == 200
    assert set(query(alice, {alice.user_id: []})["device_keys"][alice.user_id]) == {alice.device_id}
    for gone in (second, third):
        assert claim(alice, {alice.user_id: {gone.device_id: ALG}})["one_time_keys"] == {}


def test_concurrent_claims_over_http_never_share_a_key(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "alice")
    bob = new_device(open_server, "bob")
    alice.upload(
        device_keys=alice.device_keys(),
        one_time_keys=alice.one_time_keys([f"K{i:02d}" for i in range(10)]),
        fallback_keys=alice.one_time_keys(["FB"], fallback=True),
    )
    wanted = {alice.user_id: {alice.device_id: ALG}}
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: claim(bob, wanted), range(20)))
    key_ids = [
        key_id
        for result in results
        for key_id in result["one_time_keys"][alice.user_id][alice.device_id]
    ]
    one_time = [k for k in key_ids if k != f"{ALG}:FB"]
    assert sorted(one_time) == [f"{ALG}:K{i:02d}" for i in range(10)]
    assert key_ids.count(f"{ALG}:FB") == 10
