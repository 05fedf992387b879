"""Identifier checks the auth rules need: user IDs and the domain of an ID.

spec: appendices.md#user-identifiers, appendices.md#historical-user-ids
"""

from __future__ import annotations

from functools import lru_cache
from typing import TypeGuard

from homeserver.identifiers import user_id_problem


def domain_of(identifier: str) -> str | None:
    """The part after the first ``:`` of ``@user:domain``/``!room:domain``/``$ev:domain``."""
    _, sep, domain = identifier.partition(":")
    return domain if sep else None


def is_valid_user_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a user ID the auth rules accept.

    The same check event validation applies to ``sender`` (rooms/v12.md rule 1.4 asks
    for exactly that for ``additional_creators``): the *historical* localpart grammar,
    which servers MUST still accept in events, and a valid server name; the length is
    not checked, as old room versions measure it differently.
    """
    return isinstance(value, str) and _is_valid_user_id_string(value)


# Power levels events list the same users again and again; validating each once keeps a
# power levels change from being dominated by identifier parsing.  Bounded, so memory is.
@lru_cache(maxsize=16384)
def _is_valid_user_id_string(value: str) -> bool:
    return user_id_problem(value, historical=True, check_length=False) is None
