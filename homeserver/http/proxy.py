"""The client's address and scheme as a trusted reverse proxy reports them.

Behind a reverse proxy every connection comes from the proxy, so per-address rate
limits, last-seen IPs and the access log would all see one address.  On listeners
with ``x_forwarded: true`` (and only there: anyone can send these headers) the
proxy's ``X-Forwarded-For`` and ``X-Forwarded-Proto`` replace the peer's.

Which ``X-Forwarded-For`` entry: the right-most.  A proxy configured the usual way
(nginx ``$proxy_add_x_forwarded_for``, HAProxy ``option forwardfor``, Apache
``mod_proxy``) *appends* the address it saw to whatever the client sent, so only the
last entry was written by the proxy in front of us; the left-most is whatever the
client chose to claim.  (Synapse takes the left-most, which lets a client pick the
address its rate limits are counted against when the proxy appends.)  With a chain
of proxies the right-most entry is the address of the proxy before ours; such a
deployment should have the outer proxies overwrite the header rather than append.

There is no RFC for ``X-Forwarded-*``; RFC 7239 (``Forwarded``) standardises the
same information and documents the same trust problem in its section 8.1.
"""

from __future__ import annotations

import ipaddress

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.web.http_headers import Headers

_FORWARDED_FOR = b"X-Forwarded-For"
_FORWARDED_PROTO = b"X-Forwarded-Proto"


def _right_most(headers: Headers, name: bytes) -> bytes | None:
    """The last comma-separated entry over all lines of a header (RFC 9110 §5.3)."""
    lines = headers.getRawHeaders(name)
    if not lines:
        return None
    entry = lines[-1].rsplit(b",", 1)[-1].strip()
    return entry or None


def forwarded_client_address(headers: Headers) -> IPv4Address | IPv6Address | None:
    """The client address the proxy appended, or ``None`` if absent or not an IP."""
    entry = _right_most(headers, _FORWARDED_FOR)
    if entry is None:
        return None
    try:
        address = ipaddress.ip_address(entry.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        # "unknown", an obfuscated identifier, host:port, garbage: not an address we
        # can count or record, so the peer address stands.
        return None
    # The client's port is not forwarded; 0 marks it unknown.
    if isinstance(address, ipaddress.IPv4Address):
        return IPv4Address("TCP", str(address), 0)
    return IPv6Address("TCP", str(address), 0)


def forwarded_is_secure(headers: Headers) -> bool | None:
    """Whether the client reached the proxy over https, or ``None`` if not said."""
    entry = _right_most(headers, _FORWARDED_PROTO)
    if entry is None:
        return None
    scheme = entry.lower()
    if scheme == b"https":
        return True
    if scheme == b"http":
        return False
    return None
