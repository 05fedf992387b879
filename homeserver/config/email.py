"""Email settings: Synapse's ``email`` section (SMTP, notification emails, address
validation) and ``rc_3pid_validation`` (validation mails sent per address/IP).

Email is on when ``email.notif_from`` is set (Synapse requires it for any mail).

spec: client-server-api/_index.md ("Adding Account Administrative Contact
Information"), client-server-api/modules/push.md (``email`` pushers)
"""

from __future__ import annotations

import attrs

from homeserver.config.reader import ConfigError, Section
from homeserver.ratelimit import RateLimitConfig

#: Subject lines by Synapse's key, with its ``%(name)s`` placeholders: ``app``,
#: ``person``, ``room`` (notifications), ``server_name`` (validation).
DEFAULT_SUBJECTS = {
    "message_from_person_in_room": "[%(app)s] New message from %(person)s in %(room)s",
    "message_from_person": "[%(app)s] New message from %(person)s",
    "messages_from_person": "[%(app)s] New messages from %(person)s",
    "messages_in_room": "[%(app)s] New messages in %(room)s",
    "messages_in_room_and_others": "[%(app)s] New messages in %(room)s and other rooms",
    "messages_from_person_and_others": "[%(app)s] New messages from %(person)s and others",
    "email_validation": "[%(server_name)s] Confirm your email address",
}
_PLACEHOLDERS = {"app": "", "person": "", "room": "", "server_name": ""}


@attrs.frozen
class EmailConfig:
    #: The From header of every mail; None: email is off.
    notif_from: str | None = None
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_pass: str | None = None
    #: TLS from the first byte (SMTPS, usually port 465) instead of STARTTLS.
    force_tls: bool = False
    #: Refuse to send unless the connection is encrypted (STARTTLS must succeed).
    require_transport_security: bool = False
    #: Use STARTTLS when the server offers it.
    enable_tls: bool = True
    #: The name the server's certificate must carry (default: ``smtp_host``).
    tlsname: str | None = None
    app_name: str = "Matrix"
    #: Send notification digests to ``email`` pushers.
    enable_notifs: bool = False
    #: Adding a validated address also adds an email pusher for it.
    notif_for_new_users: bool = True
    #: A notification waits this long for the user to read it before a digest is
    #: mailed (Synapse's key and 10-minute default).
    notif_delay_before_mail_ms: int = 10 * 60_000
    #: Where room links in mails point (a web client); None: matrix.to links.
    client_base_url: str | None = None
    #: How long an emailed validation link works.
    validation_token_lifetime_ms: int = 60 * 60_000
    subjects: dict[str, str] = attrs.field(factory=lambda: dict(DEFAULT_SUBJECTS))
    #: ``rc_3pid_validation``: validation mails per address and per client IP.
    validation_limit: RateLimitConfig = RateLimitConfig(per_second=0.003, burst_count=5)

    @property
    def enabled(self) -> bool:
        return self.notif_from is not None


def parse_email(root: Section) -> EmailConfig:
    section = root.section("email")
    defaults = EmailConfig()
    subjects = _parse_subjects(section)
    client_base_url = section.get_str("client_base_url", None)
    if client_base_url is not None and not client_base_url.startswith(("https://", "http://")):
        raise ConfigError("email.client_base_url", "must be an http(s) URL")
    config = EmailConfig(
        notif_from=section.get_str("notif_from", None),
        smtp_host=section.get_str("smtp_host", defaults.smtp_host),
        smtp_port=section.get_int("smtp_port", defaults.smtp_port, minimum=1, maximum=65535),
        smtp_user=section.get_str("smtp_user", None),
        smtp_pass=section.get_str("smtp_pass", None),
        force_tls=section.get_bool("force_tls", False),
        require_transport_security=section.get_bool("require_transport_security", False),
        enable_tls=section.get_bool("enable_tls", True),
        tlsname=section.get_str("tlsname", None),
        app_name=section.get_str("app_name", defaults.app_name),
        enable_notifs=section.get_bool("enable_notifs", False),
        notif_for_new_users=section.get_bool("notif_for_new_users", True),
        notif_delay_before_mail_ms=section.get_duration_ms(
            "notif_delay_before_mail", defaults.notif_delay_before_mail_ms
        ),
        client_base_url=client_base_url.rstrip("/") if client_base_url else None,
        validation_token_lifetime_ms=section.get_duration_ms(
            "validation_token_lifetime", defaults.validation_token_lifetime_ms, positive=True
        ),
        subjects=subjects,
        validation_limit=_parse_validation_limit(root),
    )
    section.finish()
    if config.notif_from is not None:
        try:
            config.notif_from % {"app": config.app_name}
        except (KeyError, ValueError, TypeError):
            raise ConfigError("email.notif_from", "may only use the %(app)s placeholder") from None
    if (config.smtp_user is None) != (config.smtp_pass is None):
        raise ConfigError("email.smtp_pass", "smtp_user and smtp_pass go together")
    if config.enable_notifs and config.notif_from is None:
        raise ConfigError("email.enable_notifs", "needs email.notif_from")
    return config


def _parse_subjects(section: Section) -> dict[str, str]:
    sub = section.section("subjects")
    subjects = {}
    for key, default in DEFAULT_SUBJECTS.items():
        value = sub.get_str(key, default)
        try:
            value % _PLACEHOLDERS
        except (KeyError, ValueError, TypeError):
            sub.report(
                ConfigError(
                    sub.key_path(key),
                    "may only use %(app)s, %(person)s, %(room)s and %(server_name)s",
                )
            )
            value = default
        subjects[key] = value
    # Synapse's subjects of mails not sent here (invites, password resets) are
    # tolerated with a warning.
    sub.finish()
    return subjects


def _parse_validation_limit(root: Section) -> RateLimitConfig:
    sub = root.section("rc_3pid_validation")
    config = RateLimitConfig(
        per_second=float(sub.get_number("per_second", 0.003, minimum=0)),
        burst_count=int(sub.get_number("burst_count", 5, minimum=0)),
    )
    sub.finish()
    return config
