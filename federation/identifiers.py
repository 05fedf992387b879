"""Reading the server out of user IDs, shared by the EDU and end-to-end modules.

A server may only speak for its own users (spec: server-server-api.md#edus, "for
users of the sending homeserver"), so every EDU entry's user is checked with
:func:`is_user_of`; :func:`server_of` is the cheap split for IDs already known valid
(members read from our own tables, IDs that passed :func:`is_user_of`).  For IDs not
yet checked, ``federation.protocols.server_of`` parses and answers None when invalid.
"""

from __future__ import annotations

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
