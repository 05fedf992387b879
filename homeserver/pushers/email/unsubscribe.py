"""One-click unsubscribe links for notification emails (RFC 8058).

Only a POST unsubscribes: mail scanners and link previews follow the links in a mail
with GET (RFC 8058 section 1), so opening the link shows a page whose button POSTs,
and a mail client's one-click button POSTs ``List-Unsubscribe=One-Click`` itself.

A link names the pusher — user, ``app_id``, ``pushkey`` — and carries an HMAC-SHA256
of them under a key derived from the server's signing key, so following it needs no
login and nobody can forge one for another address.  Rotating the signing key
retires every link sent before.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol
from urllib.parse import urlencode

#: Our unstable namespace: the page is served on the client listener.
UNSUBSCRIBE_PATH = "/_matrix/client/unstable/dev.homeserver/email/unsubscribe"


class UnsubscribeLinks:
    def __init__(self, public_baseurl: str, secret: bytes) -> None:
        self._base = public_baseurl.rstrip("/")
        self._key = hashlib.sha256(b"dev.homeserver email unsubscribe\x00" + secret).digest()

    def url(self, user_id: str, app_id: str, pushkey: str) -> str:
        query = urlencode(
            {
                "user_id": user_id,
                "app_id": app_id,
                "pushkey": pushkey,
                "sig": self.signature(user_id, app_id, pushkey),
            }
        )
        return f"{self._base}{UNSUBSCRIBE_PATH}?{query}"

    def signature(self, user_id: str, app_id: str, pushkey: str) -> str:
        # NUL cannot appear in any of the three, so the fields cannot run together.
        message = "\x00".join((user_id, app_id, pushkey)).encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def verify(self, user_id: str, app_id: str, pushkey: str, signature: str) -> bool:
        return hmac.compare_digest(self.signature(user_id, app_id, pushkey), signature)


class PusherRemover(Protocol):
    async def delete_pusher(self, user_id: str, app_id: str, pushkey: str) -> None: ...


class Unsubscriber:
    """Follows an unsubscribe link: deletes the pusher it names if it is genuine."""

    def __init__(self, links: UnsubscribeLinks) -> None:
        self._links = links
        #: Set once the pushers are built (notifications/assembly.py).
        self.pushers: PusherRemover | None = None

    def genuine(self, user_id: str, app_id: str, pushkey: str, signature: str) -> bool:
        """Whether the link is one this server made (and email notifications are on)."""
        return self.pushers is not None and self._links.verify(user_id, app_id, pushkey, signature)

    async def unsubscribe(self, user_id: str, app_id: str, pushkey: str, signature: str) -> bool:
        """False if the link is not one this server made (or email is off).  Following
        a link twice is fine: the pusher is simply gone already."""
        if not self.genuine(user_id, app_id, pushkey, signature):
            return False
        assert self.pushers is not None
        await self.pushers.delete_pusher(user_id, app_id, pushkey)
        return True
