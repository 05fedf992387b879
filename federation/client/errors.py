"""What an outbound federation request can fail with.

Two families: the remote server answered with an error
(:class:`FederationRequestError`), or no usable answer came at all
(:class:`FederationUnreachable`, whose subclasses say why when the caller may care:
backing off, a destination not allowed, a response too large).
"""

from __future__ import annotations


class FederationRequestError(Exception):
    """The remote server answered with a non-2xx status (or a 2xx whose body is not
    the JSON asked for).  ``errcode``/``error`` are the Matrix error fields when the
    body is a JSON object carrying them as strings; ``body`` is the parsed JSON body,
    if it was JSON."""

    def __init__(
        self,
        destination: str,
        status: int,
        *,
        errcode: str | None = None,
        error: str | None = None,
        body: object | None = None,
    ) -> None:
        detail = " ".join(part for part in (errcode, error) if part)
        super().__init__(f"{destination} answered {status}{': ' + detail if detail else ''}")
        self.destination = destination
        self.status = status
        self.errcode = errcode
        self.error = error
        self.body = body


class FederationUnreachable(Exception):
    """No answer: DNS, connection, TLS, timeout, a blocked address."""

    def __init__(self, destination: str, reason: str) -> None:
        super().__init__(f"{destination}: {reason}")
        self.destination = destination
        self.reason = reason


class NotRetryingDestination(FederationUnreachable):
    """Not attempted: the destination failed recently and is being backed off from."""

    def __init__(self, destination: str, retry_after_ms: int) -> None:
        super().__init__(destination, f"not retrying until {retry_after_ms} (backing off)")
        #: When it may be tried again (ms since the epoch).
        self.retry_after_ms = retry_after_ms


class DestinationNotAllowed(FederationUnreachable):
    """Not attempted: our own server name, a name outside
    ``federation_domain_whitelist``, or not a server name at all."""


class ResponseTooLarge(FederationUnreachable):
    """The response was larger than the request's ``max_size``; it was not read."""
