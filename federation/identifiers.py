"""Reading the server out of user IDs, shared by the EDU and end-to-end modules, and
recognising IP literals in server names, shared by discovery and the ACL check.

A server may only speak for its own users (spec: server-server-api.md#edus, "for
users of the sending homeserver"), so every EDU entry's user is checked with
:func:`is_user_of`; :func:`server_of` is the cheap split for IDs already known valid
(members read from our own tables, IDs that passed :func:`is_user_of`).  For IDs not
yet checked, ``federation.protocols.server_of`` parses and answers None when invalid.
"""

from __future__ import annotations

import ipaddress

from homeserver.identifiers import user_id_problem


def server_of(user_id: str) -> str:
    """The server part of a user ID known to be valid (everything after the first
    colon, port included)."""
    return user_id.partition(":")[2]


def is_user_of(user_id: object, server_name: str) -> bool:
    """Whether ``user_id`` is a valid user ID of server ``server_name``."""
    return (
        isinstance(user_id, str)
        and user_id_problem(user_id) is None
        and server_of(user_id) == server_name
    )


def ip_literal(host: str) -> str | None:
    """The address, in its normal form, if ``host`` (a server name without its port)
    is an IP literal; None for a hostname.  IPv6 literals come in brackets in server
    names (``[::1]``), as spec: appendices.md#server-name writes them.

    Discovery connects straight to a literal (spec:
    server-server-api.md#resolving-server-names, steps 1 and 3.1) and an ACL may deny
    them (spec: server-server-api.md#server-access-control-lists-acls).
    """
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None
