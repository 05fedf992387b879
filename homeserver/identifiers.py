"""Identifier grammar: server names, user IDs, room IDs, room aliases and event IDs.

Two user ID grammars exist: the current one, which this server uses when it creates
users, and the historical one, which it must still accept from other servers.

spec: appendices.md#identifier-grammar ("Server Name", "Common Identifier Format",
"User Identifiers", "Historical User IDs", "Room IDs", "Room Aliases", "Event IDs")
"""

from __future__ import annotations

import ipaddress
import re

import attrs

from homeserver.events.room_versions import EventFormat, RoomVersion

#: Users, room IDs, aliases and event IDs are limited to 255 bytes of UTF-8.
MAX_IDENTIFIER_BYTES = 255

_PORT_RE = re.compile(r":([0-9]{1,5})")
_IPV4_RE = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_IPV6_CHARS_RE = re.compile(r"[0-9A-Fa-f:.]{2,45}")
_DNS_NAME_RE = re.compile(r"[0-9A-Za-z.\-]{1,255}")
_USER_LOCALPART_RE = re.compile(r"[a-z0-9._=\-/+]+")
#: A sha256 (32 bytes) in unpadded base64 is 43 characters.
_HASH_B64_RE = re.compile(r"[A-Za-z0-9+/]{43}")
_HASH_URLSAFE_B64_RE = re.compile(r"[A-Za-z0-9_\-]{43}")


# --- server names ----------------------------------------------------------------------


def parse_server_name(s: str) -> tuple[str, int | None]:
    """Split a server name into ``(hostname, port)``; raise ``ValueError`` if invalid.

    An IPv6 literal keeps its square brackets in the returned hostname, as in the
    grammar (``hostname = "[" IPv6address "]"``).  Server names are case-sensitive,
    so nothing is normalised.

    spec: appendices.md#server-name
    """
    if not isinstance(s, str) or not s:
        raise ValueError("server name must be a non-empty string")
    if s.startswith("["):
        close = s.find("]")
        if close < 0:
            raise ValueError(f"server name {s!r}: IPv6 literal lacks a closing ']'")
        host, rest = s[: close + 1], s[close + 1 :]
        _check_ipv6_literal(host[1:-1], s)
    else:
        colon = s.find(":")
        host, rest = (s, "") if colon < 0 else (s[:colon], s[colon:])
        _check_hostname(host, s)
    port: int | None = None
    if rest:
        match = _PORT_RE.fullmatch(rest)
        if match is None:
            raise ValueError(f"server name {s!r}: port must be ':' followed by 1-5 digits")
        port = int(match.group(1))
        if not 1 <= port <= 65535:
            raise ValueError(f"server name {s!r}: port {port} is outside 1..65535")
    return host, port


def _check_ipv6_literal(address: str, whole: str) -> None:
    # The grammar's character set excludes zone IDs ("%eth0"), which ipaddress accepts.
    if _IPV6_CHARS_RE.fullmatch(address) is None:
        raise ValueError(f"server name {whole!r}: invalid IPv6 literal")
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        raise ValueError(f"server name {whole!r}: invalid IPv6 literal") from None


def _check_hostname(host: str, whole: str) -> None:
    if _IPV4_RE.fullmatch(host) is not None:
        # Four dotted numbers are an IPv4 literal, whose parts must be 0..255.
        if any(int(part) > 255 for part in host.split(".")):
            raise ValueError(f"server name {whole!r}: IPv4 literal part exceeds 255")
        return
    if _DNS_NAME_RE.fullmatch(host) is None:
        raise ValueError(
            f"server name {whole!r}: hostname must be 1-255 characters of A-Z, a-z, 0-9, '-', '.'"
        )


def is_valid_server_name(s: str) -> bool:
    """Whether ``s`` matches the server name grammar.  spec: appendices.md#server-name"""
    try:
        parse_server_name(s)
    except ValueError:
        return False
    return True


# --- user IDs --------------------------------------------------------------------------


def is_valid_user_localpart(localpart: str) -> bool:
    """The current localpart grammar ``[a-z0-9._=\\-/+]+``, required for new users.

    spec: appendices.md#user-identifiers
    """
    return isinstance(localpart, str) and _USER_LOCALPART_RE.fullmatch(localpart) is not None


def is_valid_historical_user_localpart(localpart: str) -> bool:
    """Any non-surrogate code points except ``:`` and NUL, including the empty string.

    spec: appendices.md#historical-user-ids
    """
    return isinstance(localpart, str) and _is_opaque_localpart(localpart, allow_empty=True)


def _is_opaque_localpart(localpart: str, *, allow_empty: bool) -> bool:
    if not localpart:
        return allow_empty
    if ":" in localpart or "\x00" in localpart:
        return False
    return _utf8_length(localpart) is not None


def _utf8_length(s: str) -> int | None:
    """Byte length of ``s`` in UTF-8, or None if it holds lone surrogates."""
    if s.isascii():
        return len(s)
    try:
        return len(s.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def user_id_problem(s: object, *, historical: bool = True, check_length: bool = True) -> str | None:
    """Why ``s`` is not a valid user ID, or None if it is.

    ``check_length=False`` skips the 255-byte limit, for callers that measure it
    differently (old room versions count code points; see ``validation``).

    spec: appendices.md#user-identifiers
    """
    if not isinstance(s, str):
        return "user ID must be a string"
    if not s.startswith("@"):
        return f"user ID {s!r} must start with '@'"
    size = _utf8_length(s)
    if size is None:
        return f"user ID {s!r} contains lone surrogates"
    if check_length and size > MAX_IDENTIFIER_BYTES:
        return f"user ID is {size} bytes long; the limit is {MAX_IDENTIFIER_BYTES}"
    colon = s.find(":")
    if colon < 0:
        return f"user ID {s!r} has no ':' before the server name"
    localpart, domain = s[1:colon], s[colon + 1 :]
    if historical:
        if not is_valid_historical_user_localpart(localpart):
            return f"user ID {s!r} has an invalid localpart"
    elif not is_valid_user_localpart(localpart):
        return f"user ID {s!r}: localpart may only contain a-z, 0-9, '.', '_', '=', '-', '/', '+'"
    if not is_valid_server_name(domain):
        return f"user ID {s!r} has an invalid server name {domain!r}"
    return None


@attrs.frozen
class UserID:
    """A parsed ``@localpart:domain``.  spec: appendices.md#user-identifiers"""

    localpart: str
    domain: str

    @classmethod
    def parse(cls, s: str, *, historical: bool = True) -> UserID:
        """Parse and validate; raise ``ValueError`` with the reason if ``s`` is invalid.

        ``historical=True`` accepts the wider grammar other servers may use;
        ``historical=False`` enforces the current grammar (for new registrations).
        """
        problem = user_id_problem(s, historical=historical)
        if problem is not None:
            raise ValueError(problem)
        localpart, _, domain = s[1:].partition(":")
        return cls(localpart=localpart, domain=domain)

    def to_string(self) -> str:
        return f"@{self.localpart}:{self.domain}"

    def __str__(self) -> str:
        return self.to_string()


def is_valid_user_id(s: str, *, historical: bool = True) -> bool:
    """Whether ``s`` is a valid user ID.  spec: appendices.md#user-identifiers"""
    return user_id_problem(s, historical=historical) is None


# --- room IDs, aliases, event IDs -------------------------------------------------------


def _is_sigil_localpart_domain(s: object, sigil: str, *, check_length: bool = True) -> bool:
    """``<sigil>localpart:domain`` with an opaque non-empty localpart, <= 255 bytes."""
    if not isinstance(s, str) or not s.startswith(sigil):
        return False
    size = _utf8_length(s)
    if size is None or (check_length and size > MAX_IDENTIFIER_BYTES):
        return False
    localpart, colon, domain = s[1:].partition(":")
    return (
        bool(colon)
        and _is_opaque_localpart(localpart, allow_empty=False)
        and is_valid_server_name(domain)
    )


def is_valid_domain_room_id(s: str, *, check_length: bool = True) -> bool:
    """``!opaque_id:domain``, the form of room versions 1-11.

    ``check_length=False`` skips the 255-byte limit (see :func:`user_id_problem`).

    spec: appendices.md#room-ids
    """
    return _is_sigil_localpart_domain(s, "!", check_length=check_length)


def is_valid_hash_room_id(s: str) -> bool:
    """``!`` + the create event's reference hash (URL-safe base64), room version 12+.

    spec: appendices.md#room-ids, rooms/v12.md
    """
    return (
        isinstance(s, str)
        and len(s) == 44
        and s[0] == "!"
        and _HASH_URLSAFE_B64_RE.fullmatch(s, 1) is not None
    )


def is_valid_room_id(s: str) -> bool:
    """Either room ID form (with a domain, or v12's domain-less hash form).

    spec: appendices.md#room-ids
    """
    return is_valid_hash_room_id(s) or is_valid_domain_room_id(s)


def is_valid_room_alias(s: str) -> bool:
    """``#localpart:domain``, at most 255 bytes.  spec: appendices.md#room-aliases"""
    return _is_sigil_localpart_domain(s, "#")


def is_valid_event_id(s: str, room_version: RoomVersion, *, check_length: bool = True) -> bool:
    """Whether ``s`` is an event ID in the format of ``room_version``.

    v1/v2: ``$opaque_id:domain``; v3: ``$`` + 43 chars of standard base64;
    v4+: ``$`` + 43 chars of URL-safe base64.  ``check_length=False`` skips the
    255-byte limit, which only matters for v1/v2 (see :func:`user_id_problem`).

    spec: appendices.md#event-ids, rooms/fragments/v1-event-ids.md, rooms/v3.md,
    rooms/fragments/v4-event-ids.md
    """
    event_format = room_version.event_format
    if event_format is EventFormat.V1:
        return _is_sigil_localpart_domain(s, "$", check_length=check_length)
    if not isinstance(s, str) or len(s) != 44 or s[0] != "$":
        return False
    pattern = _HASH_B64_RE if event_format is EventFormat.V2 else _HASH_URLSAFE_B64_RE
    return pattern.fullmatch(s, 1) is not None
