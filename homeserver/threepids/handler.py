"""Email addresses on an account: proving ownership by a mailed link, adding,
listing and removing them.  Rules only, no SQL.

The server validates addresses itself (no identity server): ``requestToken``
mails a link to :data:`SUBMIT_TOKEN_PATH`, which is also the ``submit_url``; the
session it validates can then be added with ``POST /account/3pid/add``.  Only a
hash of the token is stored.  A higher ``send_attempt`` mails a new link (the old
one stops working); the same or a lower one answers with the session and sends
nothing.  Mails are limited per address and per client IP (``rc_3pid_validation``).

Email pushers only ever mail an address here (pushers/email/kind.py), so removing
an address removes its email pushers; with ``email.notif_for_new_users`` adding one
creates an email pusher for it, as Synapse does.

Not built: binding to identity servers (``/3pid/bind``), phone numbers, and
registration or password reset by email.

spec: client-server-api/_index.md ("Adding Account Administrative Contact
Information"), data/api/client-server/administrative_contact.yaml,
identity-service-api (``/validate/email/submitToken``, which ``submit_url`` mirrors)
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import re
import secrets
from email.message import EmailMessage
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import urlencode

import attrs

from homeserver import errors
from homeserver.clock import Clock
from homeserver.config.email import EmailConfig
from homeserver.errors import MatrixError
from homeserver.pushers.email.mailer import Mailer, MailError
from homeserver.pushers.email.render import multipart
from homeserver.ratelimit import RateLimiter
from homeserver.storage.threepids import (
    ThreepidInUseError,
    ThreepidRecord,
    ThreepidStore,
    ValidationSession,
)

logger = logging.getLogger(__name__)

#: Synapse's path for the same page, so clients and links written for it work.
SUBMIT_TOKEN_PATH = "/_matrix/client/unstable/add_threepid/email/submit_token"
EMAIL = "email"
#: spec: client secrets and session IDs are ``[0-9a-zA-Z.=_-]``, 1-255 characters.
_SECRET = re.compile(r"[0-9a-zA-Z.=_-]{1,255}")
#: A bare address, nothing around it (no display name, no ``<>``, no comments, no
#: list): RFC 5322 ``dot-atom`` local part (ASCII: the SMTP client speaks no
#: SMTPUTF8), ``@``, a host name.  Real validation is the mail arriving.
_ADDRESS = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
)
MAX_ADDRESS_LENGTH = 254


class EmailPushers(Protocol):
    """What this handler needs of the pushers (pushers/assembly.py provides it)."""

    async def add_email_pusher(self, user_id: str, address: str) -> None: ...

    async def remove_email_pushers(self, user_id: str, address: str) -> None: ...


def canonical_address(address: str) -> str:
    """Addresses are compared and stored lower-cased."""
    return address.strip().lower()


def check_address(address: str) -> str:
    canonical = canonical_address(address)
    if (
        len(canonical) > MAX_ADDRESS_LENGTH
        or not _ADDRESS.fullmatch(canonical)
        # The mail library must read it back as exactly this address, and nothing else.
        or email.utils.parseaddr(canonical) != ("", canonical)
    ):
        raise errors.invalid_param("'email' is not a valid email address")
    return canonical


def check_secret(name: str, value: str) -> None:
    if not _SECRET.fullmatch(value):
        raise errors.invalid_param(f"'{name}' must be 1-255 characters of [0-9a-zA-Z.=_-]")


def _error(status: HTTPStatus, errcode: str, message: str) -> MatrixError:
    return MatrixError(status, errcode, message)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@attrs.frozen
class SubmitResult:
    next_link: str | None


class ThreepidHandler:
    def __init__(
        self,
        *,
        store: ThreepidStore,
        clock: Clock,
        config: EmailConfig,
        mailer: Mailer | None,
        public_baseurl: str,
        server_name: str,
        limiter: RateLimiter,
        pushers: EmailPushers | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._config = config
        self._mailer = mailer
        self._base = public_baseurl.rstrip("/")
        self._server_name = server_name
        self._limiter = limiter
        self.pushers = pushers

    @property
    def enabled(self) -> bool:
        """Whether addresses can be added (``m.3pid_changes``): email is configured."""
        return self._mailer is not None

    @property
    def submit_url(self) -> str:
        return self._base + SUBMIT_TOKEN_PATH

    async def list(self, user_id: str) -> list[dict[str, Any]]:
        return [
            {
                "medium": record.medium,
                "address": record.address,
                "validated_at": record.validated_at,
                "added_at": record.added_at,
            }
            for record in await self._store.get_threepids(user_id)
        ]

    async def validated_emails(self, user_id: str) -> set[str]:
        return {r.address for r in await self._store.get_threepids(user_id) if r.medium == EMAIL}

    async def request_email_token(
        self,
        *,
        client_secret: str,
        address: str,
        send_attempt: int,
        next_link: str | None,
        client_ip: str,
    ) -> str:
        """The session ID; mails a link unless this attempt was already sent."""
        if self._mailer is None:
            raise _error(
                HTTPStatus.BAD_REQUEST,
                "M_THREEPID_MEDIUM_NOT_SUPPORTED",
                "This server does not send email",
            )
        check_secret("client_secret", client_secret)
        address = check_address(address)
        if next_link is not None and (
            not next_link.startswith(("https://", "http://"))
            or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in next_link)
        ):
            # It becomes a Location header: no spaces or line breaks.
            raise errors.invalid_param("'next_link' must be an http(s) URL")
        if await self._store.owner_of(EMAIL, address) is not None:
            raise _error(
                HTTPStatus.BAD_REQUEST, "M_THREEPID_IN_USE", "Email address already in use"
            )
        now = self._clock.time_msec()
        token = secrets.token_urlsafe(24)
        candidate = ValidationSession(
            session_id=secrets.token_urlsafe(18),
            medium=EMAIL,
            address=address,
            client_secret=client_secret,
            token_hash=_hash(token),
            last_send_attempt=send_attempt,
            next_link=next_link,
            created_ts=now,
            expires_ts=now + self._config.validation_token_lifetime_ms,
            validated_at=None,
        )
        # Checked without taking a token first: a retry that sends nothing is free.
        session, must_send = await self._store.start_session(candidate)
        if not must_send:
            return session.session_id
        for key in (("address", address), ("ip", client_ip)):
            wait = self._limiter.check(key)
            if wait > 0:
                await self._store.delete_session(session.session_id)
                raise errors.limit_exceeded(wait)
        try:
            await self._mailer.send(self._validation_mail(session, token))
        except MailError as failure:
            logger.warning("validation mail to %s not sent: %s", address, failure)
            # The client may retry with the same send_attempt and expect a mail.
            await self._store.delete_session(session.session_id)
            raise _error(
                HTTPStatus.SERVICE_UNAVAILABLE, errors.Codes.UNKNOWN, "Could not send the email"
            ) from None
        await self._store.delete_expired_sessions(now)
        return session.session_id

    def _validation_mail(self, session: ValidationSession, token: str) -> EmailMessage:
        query = urlencode(
            {"sid": session.session_id, "client_secret": session.client_secret, "token": token}
        )
        subject = self._config.subjects["email_validation"] % {
            "server_name": self._server_name,
            "app": self._config.app_name,
        }
        return multipart(
            to=session.address,
            subject=subject,
            template="validation",
            address=session.address,
            server_name=self._server_name,
            link=f"{self.submit_url}?{query}",
        )

    async def submit_token(self, *, sid: str, client_secret: str, token: str) -> SubmitResult:
        """Validate a session with its mailed token (the link, or a client)."""
        session = await self._store.get_session(sid)
        if session is None or not secrets.compare_digest(session.client_secret, client_secret):
            raise errors.invalid_param("Unknown validation session")
        now = self._clock.time_msec()
        if session.expires_ts <= now:
            raise _error(HTTPStatus.BAD_REQUEST, "M_SESSION_EXPIRED", "The link has expired")
        if not secrets.compare_digest(session.token_hash, _hash(token)):
            raise _error(HTTPStatus.BAD_REQUEST, "M_TOKEN_INCORRECT", "The token is incorrect")
        # A validated session may be added for another token lifetime.
        await self._store.mark_validated(sid, now, now + self._config.validation_token_lifetime_ms)
        return SubmitResult(session.next_link)

    async def add(self, user_id: str, *, sid: str, client_secret: str) -> None:
        """Add the address of a validated session to ``user_id``'s account."""
        check_secret("sid", sid)
        check_secret("client_secret", client_secret)
        session = await self._store.get_session(sid)
        now = self._clock.time_msec()
        if (
            session is None
            or not secrets.compare_digest(session.client_secret, client_secret)
            or session.validated_at is None
            or session.expires_ts <= now
        ):
            raise _error(
                HTTPStatus.BAD_REQUEST,
                "M_THREEPID_AUTH_FAILED",
                "No validated session with that sid and client_secret",
            )
        try:
            await self._store.add_threepid(
                ThreepidRecord(EMAIL, session.address, user_id, session.validated_at, now)
            )
        except ThreepidInUseError:
            raise _error(
                HTTPStatus.BAD_REQUEST, "M_THREEPID_IN_USE", "Email address already in use"
            ) from None
        await self._store.delete_session(sid)
        if self._config.enable_notifs and self._config.notif_for_new_users and self.pushers:
            await self.pushers.add_email_pusher(user_id, session.address)

    async def delete(self, user_id: str, medium: str, address: str) -> None:
        """Remove an address (and the email pushers mailing it); removing one the
        account does not have changes nothing."""
        canonical = canonical_address(address)
        await self._store.delete_threepid(user_id, medium, canonical)
        if medium == EMAIL and self.pushers is not None:
            await self.pushers.remove_email_pushers(user_id, canonical)

    async def on_deactivate(self, user_id: str) -> None:
        for record in await self._store.get_threepids(user_id):
            await self.delete(user_id, record.medium, record.address)
