"""Device keys and cross-signing keys a test uploads as a client would: real Ed25519
keys and signatures (signedjson), so the server's checks pass."""

from __future__ import annotations

import secrets
from typing import Any

from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json
from signedjson.types import SigningKey

from tests.federation.interop.clients import User
from tests.support.federation import FederatedServer
from tests.support.matrix import call

ALGORITHMS = ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"]


def public(key: SigningKey) -> str:
    return encode_verify_key_base64(get_verify_key(key))


def upload_device_keys(user: User, one_time_keys: int = 3) -> dict[str, Any]:
    """Upload signed device keys and ``one_time_keys`` signed one-time keys for the
    user's device; the device keys as uploaded."""
    key = generate_signing_key(user.device_id)
    device_keys = sign_json(
        {
            "user_id": user.user_id,
            "device_id": user.device_id,
            "algorithms": ALGORITHMS,
            "keys": {
                f"ed25519:{user.device_id}": public(key),
                f"curve25519:{user.device_id}": secrets.token_hex(16),
            },
        },
        user.user_id,
        key,
    )
    otks = {
        f"signed_curve25519:OTK{index}": sign_json(
            {"key": secrets.token_hex(16)}, user.user_id, key
        )
        for index in range(one_time_keys)
    }
    user.call("POST", "/keys/upload", {"device_keys": device_keys, "one_time_keys": otks})
    return device_keys


def login_new_device(server: FederatedServer, user: User) -> User:
    """A second device of ``user`` (registered by :func:`new_user`'s password)."""
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user.user_id},
        "password": "correct horse",
    }
    response = call(server.process, "POST", "/login", body=body)
    assert response.status == 200, (response.status, response.body)
    result = response.json()
    return User(server, result["user_id"], result["access_token"], result["device_id"])


def upload_cross_signing_keys(user: User, *, user_signing: bool = False) -> dict[str, Any]:
    """A master key and a self-signing key signed by it (and a user-signing key); the
    keys as uploaded, and the user-signing key's private half (``user_signer``)."""
    master = generate_signing_key("m")
    master_id = public(master)
    self_signing = generate_signing_key("s")
    master.version = master_id
    self_signing.version = public(self_signing)
    signer = generate_signing_key("u")
    signer.version = public(signer)
    extra: dict[str, Any] = {}
    if user_signing:
        extra["user_signing_key"] = sign_json(
            {
                "user_id": user.user_id,
                "usage": ["user_signing"],
                "keys": {f"ed25519:{signer.version}": signer.version},
            },
            user.user_id,
            master,
        )
    master_key = {
        "user_id": user.user_id,
        "usage": ["master"],
        "keys": {f"ed25519:{master_id}": master_id},
    }
    self_signing_key = sign_json(
        {
            "user_id": user.user_id,
            "usage": ["self_signing"],
            "keys": {f"ed25519:{self_signing.version}": self_signing.version},
        },
        user.user_id,
        master,
    )
    uploaded = {"master_key": master_key, "self_signing_key": self_signing_key, **extra}
    user.call("POST", "/keys/device_signing/upload", uploaded)
    return {**uploaded, "user_signer": signer}
