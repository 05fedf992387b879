"""Why a signature of another server could not be accepted, or its keys not found."""

from __future__ import annotations


class KeyVerificationError(Exception):
    """A signed object of ``server_name`` is refused: unsigned, signed only with keys
    we cannot get (or that are not valid at the time asked), or a signature is wrong."""

    def __init__(self, server_name: str, reason: str) -> None:
        super().__init__(f"{server_name}: {reason}")
        self.server_name = server_name
        self.reason = reason


class KeyFetchError(Exception):
    """One source (a notary, or the server itself) gave no usable key response."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
