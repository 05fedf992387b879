"""Devices with real Ed25519 keys, as an E2EE client holds them, over the bench client.

Each :class:`SigningDevice` is one logged-in device (its own access token) with its
own signing key: its device keys and one-time keys are signed with signedjson exactly
as a client signs them, so both servers store and serve what real clients upload.
:class:`CrossSigning` is a user's master, self-signing and user-signing keys.

spec: client-server-api/modules/end_to_end_encryption.md#uploading-keys,
#cross-signing; data/api/client-server/keys.yaml, cross_signing.yaml
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json
from signedjson.types import SigningKey

from bench.client_api.client import CLIENT_PREFIX, PASSWORD, Account, Client, RequestFailed

OTK_ALGORITHM = "signed_curve25519"
ALGORITHMS = ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"]
#: One-time keys per ``/keys/upload`` request (keeps each body well under any limit).
OTK_BATCH = 100


def public_key(key: SigningKey) -> str:
    return str(encode_verify_key_base64(get_verify_key(key)))


@attrs.define
class SigningDevice:
    """One device of an account: its client (own token) and its Ed25519 key."""

    client: Client
    device_id: str
    key: SigningKey
    uploaded: dict[str, Any] = attrs.field(factory=dict)

    @classmethod
    def of(cls, client: Client, device_id: str) -> SigningDevice:
        return cls(client, device_id, generate_signing_key(device_id))

    @property
    def user_id(self) -> str:
        return self.client.user_id

    def device_keys(self) -> dict[str, Any]:
        body = {
            "user_id": self.user_id,
            "device_id": self.device_id,
            "algorithms": ALGORITHMS,
            "keys": {
                # A stand-in Curve25519 key: the server never interprets it.
                f"curve25519:{self.device_id}": public_key(self.key)[::-1],
                f"ed25519:{self.device_id}": public_key(self.key),
            },
        }
        signed: dict[str, Any] = sign_json(body, self.user_id, self.key)
        return signed

    def one_time_keys(self, first: int, count: int) -> dict[str, Any]:
        keys = {}
        for number in range(first, first + count):
            key_id = f"AAAA{number:06d}"
            unsigned = {"key": f"curve25519 one-time key {number} of {self.device_id}"}
            keys[f"{OTK_ALGORITHM}:{key_id}"] = sign_json(unsigned, self.user_id, self.key)
        return keys

    async def upload_keys(self, one_time_keys: int) -> None:
        """``POST /keys/upload``: the device keys, then ``one_time_keys`` one-time keys
        in batches; checks the count the server reports."""
        self.uploaded = self.device_keys()
        path = f"{CLIENT_PREFIX}/keys/upload"
        await self.client.call("POST", path, {"device_keys": self.uploaded})
        for first in range(0, one_time_keys, OTK_BATCH):
            count = min(OTK_BATCH, one_time_keys - first)
            body = {"one_time_keys": self.one_time_keys(first, count)}
            answer = (await self.client.call("POST", path, body))[0]
        if one_time_keys:
            counted = answer.get("one_time_key_counts", {}).get(OTK_ALGORITHM)
            if counted != one_time_keys:
                raise RuntimeError(
                    f"{self.device_id}: {counted} one-time keys counted, {one_time_keys} uploaded"
                )


async def whoami_device(client: Client) -> str:
    """The device ID of ``client``'s access token (``GET /account/whoami``)."""
    answer = (await client.call("GET", f"{CLIENT_PREFIX}/account/whoami"))[0]
    return str(answer["device_id"])


async def log_in(anonymous: Client, user_id: str, display_name: str) -> SigningDevice:
    """A new device of ``user_id`` (``POST /login`` with the bench password)."""
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": PASSWORD,
        "initial_device_display_name": display_name,
    }
    answer = (await anonymous.call("POST", f"{CLIENT_PREFIX}/login", body))[0]
    account = Account(user_id=str(answer["user_id"]), access_token=str(answer["access_token"]))
    return SigningDevice.of(anonymous.as_user(account), str(answer["device_id"]))


async def post_with_password(client: Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body``; if the server asks for user-interactive auth (401 with a session),
    answer with the password stage and send it again.

    spec: client-server-api/_index.md#user-interactive-authentication-api
    """
    try:
        return (await client.call("POST", path, body))[0]
    except RequestFailed as failed:
        if failed.status != 401:
            raise
        session = json.loads(failed.body).get("session")
    auth = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": client.user_id},
        "password": PASSWORD,
        "session": session,
    }
    return (await client.call("POST", path, {**body, "auth": auth}))[0]


def _cross_signing_key() -> SigningKey:
    key = generate_signing_key("placeholder")
    # A cross-signing key's ID is its own public key.
    key.version = public_key(key)
    return key


@attrs.frozen
class CrossSigning:
    """A user's master, self-signing and user-signing keys.

    spec: client-server-api/modules/end_to_end_encryption.md#cross-signing
    """

    user_id: str
    master: SigningKey
    self_signing: SigningKey
    user_signing: SigningKey

    @classmethod
    def generate(cls, user_id: str) -> CrossSigning:
        return cls(
            user_id,
            _cross_signing_key(),
            _cross_signing_key(),
            _cross_signing_key(),
        )

    def _key_object(self, usage: str, key: SigningKey) -> dict[str, Any]:
        public = public_key(key)
        return {"user_id": self.user_id, "usage": [usage], "keys": {f"ed25519:{public}": public}}

    def upload_body(self) -> dict[str, Any]:
        """The body of ``POST /keys/device_signing/upload``: the self-signing and
        user-signing keys signed by the master key."""
        master = self._key_object("master", self.master)
        self_signing = sign_json(
            self._key_object("self_signing", self.self_signing), self.user_id, self.master
        )
        user_signing = sign_json(
            self._key_object("user_signing", self.user_signing), self.user_id, self.master
        )
        return {
            "master_key": master,
            "self_signing_key": self_signing,
            "user_signing_key": user_signing,
        }

    def device_signatures(self, devices: list[SigningDevice]) -> dict[str, Any]:
        """The body of ``POST /keys/signatures/upload``: each device's keys signed by
        the self-signing key (what verifying one's own devices uploads)."""
        signed = {}
        for device in devices:
            unsigned = {k: v for k, v in device.uploaded.items() if k != "signatures"}
            signed[device.device_id] = sign_json(unsigned, self.user_id, self.self_signing)
        return {self.user_id: signed}
