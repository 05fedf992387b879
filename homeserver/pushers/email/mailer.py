"""Sending one email over SMTP without blocking the reactor (Twisted's ESMTP client).

TLS as Synapse's ``email`` keys say: ``force_tls`` speaks TLS from the first byte
(SMTPS); otherwise STARTTLS is used when the server offers it and ``enable_tls`` is
on, and required with ``require_transport_security``.  AUTH when ``smtp_user`` is
set.  Certificates are checked against ``tlsname`` (default ``smtp_host``).
No retries here: the caller (the pusher engine, the validation endpoint) decides.
"""

from __future__ import annotations

import email.utils
from email.message import EmailMessage
from email.policy import SMTP
from io import BytesIO
from typing import Any

from twisted.internet import defer, ssl
from twisted.mail.smtp import ESMTPSenderFactory
from twisted.protocols.tls import TLSMemoryBIOFactory

from homeserver.config.email import EmailConfig
from homeserver.reactor import IServerReactor

#: Seconds a whole send may take (connection, TLS, AUTH, DATA).
SEND_TIMEOUT_S = 60.0


class MailError(Exception):
    """The mail could not be handed to the SMTP server."""


class _SenderFactory(ESMTPSenderFactory):
    """Twisted's sender, with STARTTLS switched off unless asked for."""

    starttls = True

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)  # type: ignore[no-untyped-call]
        if not self.starttls:
            protocol.context = None
        return protocol


class Mailer:
    def __init__(self, reactor: IServerReactor, config: EmailConfig) -> None:
        assert config.notif_from is not None
        self._reactor = reactor
        self._config = config
        self.from_header = config.notif_from % {"app": config.app_name}
        self.from_address = email.utils.parseaddr(self.from_header)[1]

    async def send(self, message: EmailMessage) -> None:
        """Send ``message`` (``To`` set) from ``notif_from``; raises :class:`MailError`."""
        config = self._config
        message["From"] = self.from_header
        message["Date"] = email.utils.formatdate(self._reactor.seconds(), usegmt=True)
        domain = self.from_address.rpartition("@")[2] or "localhost"
        message["Message-ID"] = email.utils.make_msgid(domain=domain)
        recipient = email.utils.parseaddr(str(message["To"]))[1]
        done: defer.Deferred[Any] = defer.Deferred()
        tls_name = config.tlsname or config.smtp_host
        user = config.smtp_user.encode() if config.smtp_user is not None else None
        secret = config.smtp_pass.encode() if config.smtp_pass is not None else None
        # Twisted's SMTP client is unannotated.
        factory = _SenderFactory(  # type: ignore[no-untyped-call]
            user,
            secret,
            self.from_address,
            recipient,
            # Twisted's client turns each \n into CRLF itself.
            BytesIO(message.as_bytes(policy=SMTP.clone(linesep="\n"))),
            done,
            retries=0,
            timeout=SEND_TIMEOUT_S,
            heloFallback=True,
            requireAuthentication=user is not None,
            requireTransportSecurity=config.require_transport_security and not config.force_tls,
            hostname=tls_name if config.enable_tls and not config.force_tls else None,
        )
        factory.starttls = config.enable_tls and not config.force_tls
        factory.noisy = False
        if config.force_tls:
            tls = TLSMemoryBIOFactory(ssl.optionsForClientTLS(tls_name), True, factory)
            self._reactor.connectTCP(config.smtp_host, config.smtp_port, tls)
        else:
            self._reactor.connectTCP(config.smtp_host, config.smtp_port, factory)
        done.addTimeout(SEND_TIMEOUT_S, self._reactor)
        try:
            await done
        except Exception as failure:
            raise MailError(f"{type(failure).__name__}: {failure}") from failure
