"""The VAPID ``Authorization`` header (RFC 8292): ``aud`` is the push resource's origin
(RFC 6454), and a header is signed once per push service until shortly before it
expires.

spec: RFC 8292 §2, §3; RFC 6454 §6.1
"""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives.asymmetric import ec

from homeserver.pushers.urls import origin
from homeserver.pushers.vapid import JWT_LIFETIME_S, REFRESH_BEFORE_EXPIRY_S, VapidKey

NOW_S = 1_700_000_000.0


def claims(header: str) -> dict[str, object]:
    token = dict(part.split("=", 1) for part in header.split(" ", 1)[1].split(","))["t"]
    body = token.split(".")[1]
    result: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return result


def test_the_origin_has_no_userinfo_path_or_default_port() -> None:
    assert origin("https://user:secret@push.example.com/wpush/v2/abc") == "https://push.example.com"
    assert origin("https://push.example.com:443/x") == "https://push.example.com"
    assert origin("http://push.example.com:80/x") == "http://push.example.com"
    assert origin("https://push.example.com:8443/x?y=1") == "https://push.example.com:8443"
    assert origin("https://[2001:db8::1]:8443/x") == "https://[2001:db8::1]:8443"
    assert origin("https://Push.Example.com/x") == "https://push.example.com"


def test_a_header_is_reused_per_audience_until_shortly_before_it_expires() -> None:
    key = VapidKey(ec.generate_private_key(ec.SECP256R1()), "mailto:ops@example.com")
    first = key.authorization("https://u:p@push.example.com:443/sub/1", NOW_S)
    assert claims(first) == {
        "aud": "https://push.example.com",
        "exp": int(NOW_S) + JWT_LIFETIME_S,
        "sub": "mailto:ops@example.com",
    }
    # Another subscription on the same service: the same header.
    assert key.authorization("https://push.example.com/sub/2", NOW_S + 60) == first
    other = key.authorization("https://other.example.net/sub/3", NOW_S)
    assert claims(other)["aud"] == "https://other.example.net"
    # Close to expiry: signed again, with a later exp.
    later = NOW_S + JWT_LIFETIME_S - REFRESH_BEFORE_EXPIRY_S
    renewed = key.authorization("https://push.example.com/sub/1", later)
    assert claims(renewed)["exp"] == int(later) + JWT_LIFETIME_S
