"""Web Push pushers (MSC4174) against a loopback push service, on both engines: the
VAPID key advertised in ``/capabilities`` signs each request (RFC 8292), the body
decrypts with the subscription's keys (RFC 8291, aes128gcm), an encrypted event is
pushed without its ciphertext, a subscription the push service says is gone loses its
pusher, and nothing is advertised when push is disabled.

spec: MSC4174, RFC 8030, RFC 8291, RFC 8292
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import http_ece
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.api.client.test_pushers import pushers
from tests.pushers.test_http_pusher import alice_and_bob
from tests.support.matrix import call, register, running_server
from tests.support.push_gateway import PushGateway
from tests.support.server_process import ServerProcess


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Subscription:
    """What a browser's PushManager.subscribe() makes: a P-256 key pair and a secret."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.public_key = b64url(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )
        self.auth = os.urandom(16)

    def pusher(self) -> dict[str, Any]:
        return {
            "kind": "webpush",
            "app_id": "org.example.web",
            "pushkey": self.public_key,
            "app_display_name": "Example web",
            "device_display_name": "Firefox",
            "lang": "en",
            "data": {"url": self.endpoint, "auth": b64url(self.auth)},
        }

    def decrypt(self, body: bytes) -> Any:
        plain = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)


def verify_vapid(authorization: str, vapid_key: str) -> dict[str, Any]:
    """Check ``vapid t=<JWT>,k=<key>`` (RFC 8292 §3); the JWT's claims."""
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid"
    fields = dict(part.split("=", 1) for part in params.split(","))
    assert fields["k"] == vapid_key
    header_b64, claims_b64, signature_b64 = fields["t"].split(".")
    assert json.loads(unb64url(header_b64)) == {"typ": "JWT", "alg": "ES256"}
    signature = unb64url(signature_b64)
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(vapid_key))
    public.verify(
        encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        ),
        f"{header_b64}.{claims_b64}".encode(),
        ec.ECDSA(hashes.SHA256()),
    )
    claims: dict[str, Any] = json.loads(unb64url(claims_b64))
    return claims


def pushes_to(received: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [r for r in received if r["path"] == path]


def test_a_web_push_message_is_signed_and_decrypts_with_the_subscription_keys(
    server: ServerProcess, gateway: PushGateway
) -> None:
    alice, bob, room_id = alice_and_bob(server)
    capability = call(server, "GET", "/capabilities", token=bob).json()["capabilities"]
    vapid_key = capability["m.webpush"]["vapid"]
    assert capability["m.webpush"]["enabled"] is True
    subscription = Subscription(gateway.base_url + "/webpush/bob-firefox")
    response = call(server, "POST", "/pushers/set", token=bob, body=subscription.pusher())
    assert response.status == 200, response.body
    [listed] = pushers(server, bob)
    assert listed["kind"] == "webpush" and listed["activated"] is True

    event_id = call(
        server,
        "PUT",
        f"/rooms/{room_id}/send/m.room.message/t1",
        token=alice,
        body={"msgtype": "m.text", "body": "Lunch at noon"},
    ).json()["event_id"]
    received = gateway.wait_for(lambda r: bool(pushes_to(r, "/webpush/bob-firefox")))
    [push] = pushes_to(received, "/webpush/bob-firefox")

    headers = push["headers"]
    assert headers["content-encoding"] == "aes128gcm"
    assert int(headers["ttl"]) > 0
    assert headers["urgency"] == "high"
    claims = verify_vapid(headers["authorization"], vapid_key)
    assert claims["aud"] == gateway.base_url
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    assert claims["sub"].startswith("mailto:")

    payload = subscription.decrypt(base64.b64decode(push["body"]))
    assert payload["event_id"] == event_id
    assert payload["room_id"] == room_id
    assert payload["sender"] == "@alice:localhost"
    assert payload["type"] == "m.room.message"
    assert payload["room_name"] == "Lunch"
    assert payload["content"] == {"msgtype": "m.text", "body": "Lunch at noon"}
    assert payload["counts"] == {"unread": 1}


def test_a_subscription_the_push_service_says_is_gone_loses_its_pusher(
    server: ServerProcess, gateway: PushGateway
) -> None:
    alice, bob, room_id = alice_and_bob(server)
    subscription = Subscription(gateway.base_url + "/webpush/expired")
    assert call(server, "POST", "/pushers/set", token=bob, body=subscription.pusher()).status == 200
    gateway.answer_with(410)
    call(
        server,
        "PUT",
        f"/rooms/{room_id}/send/m.room.message/t1",
        token=alice,
        body={"msgtype": "m.text", "body": "anyone?"},
    )
    gateway.wait_for(lambda r: bool(pushes_to(r, "/webpush/expired")))
    deadline = time.monotonic() + 30
    while pushers(server, bob):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_an_encrypted_event_is_pushed_without_its_ciphertext(
    server: ServerProcess, gateway: PushGateway
) -> None:
    alice, bob, room_id = alice_and_bob(server)
    subscription = Subscription(gateway.base_url + "/webpush/bob-encrypted")
    assert call(server, "POST", "/pushers/set", token=bob, body=subscription.pusher()).status == 200
    event_id = call(
        server,
        "PUT",
        f"/rooms/{room_id}/send/m.room.encrypted/t1",
        token=alice,
        body={
            "algorithm": "m.megolm.v1.aes-sha2",
            "ciphertext": "AwgAEnACgAkLmt6qF84IK++J7UDH2Za1YVchHyprqTqsg",
            "device_id": "ALICEDEVICE",
            "sender_key": "IlRMeOPX2e0MurIyfWEucYBRVOEEUMrOHqn/8mLqMjA",
            "session_id": "X3lUlvLELLYxeTx4yOVu6UDpasGEVO0Jbu+QFnm0cKQ",
        },
    ).json()["event_id"]
    received = gateway.wait_for(lambda r: bool(pushes_to(r, "/webpush/bob-encrypted")))
    [push] = pushes_to(received, "/webpush/bob-encrypted")
    payload = subscription.decrypt(base64.b64decode(push["body"]))
    assert payload["event_id"] == event_id
    assert payload["type"] == "m.room.encrypted"
    assert "content" not in payload
    assert push["headers"]["urgency"] == "high"


def test_web_push_is_not_advertised_when_push_is_disabled(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_server(tmp_path, database_config, push={"enabled": False}) as server:
        token = register(server, "alice")["access_token"]
        capabilities = call(server, "GET", "/capabilities", token=token).json()["capabilities"]
        assert "m.webpush" not in capabilities
