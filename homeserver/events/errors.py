"""The one exception the event library raises for malformed input.

Everything that inspects a PDU received from another server turns every problem
(missing key, wrong JSON type, bad identifier, unencodable value) into an
:class:`InvalidEventError`, so callers only need one ``except`` to drop a bad PDU.

spec: server-server-api.md#checks-performed-on-receipt-of-a-pdu (step 1: an event
that does not match its room version's format is dropped)
"""

from __future__ import annotations


class InvalidEventError(ValueError):
    """A PDU (or a value inside it) does not follow the spec's format.

    ``reason`` is a human-readable sentence suitable for logs and error responses.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EventTooLargeError(InvalidEventError):
    """The PDU is over the 64 KiB limit (clients get 413 ``M_TOO_LARGE``)."""
