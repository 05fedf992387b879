"""What a client is told when another server could not answer a query.

A remote 404 stays a 404 (the thing does not exist there); anything else a remote
server says, and any failure to reach it, is 502: our client did nothing wrong, and
a remote server's status must not pass for ours.
"""

from __future__ import annotations

import logging

from federation.client.errors import FederationRequestError, FederationUnreachable
from homeserver import errors
from homeserver.errors import MatrixError

logger = logging.getLogger(__name__)

BAD_GATEWAY = 502


def remote_failure(error: FederationRequestError | FederationUnreachable, what: str) -> MatrixError:
    """The :class:`MatrixError` for ``error``, raised while asking for ``what``."""
    if isinstance(error, FederationRequestError) and error.status == 404:
        return errors.not_found(f"{what} not found on {error.destination}")
    logger.info("could not get %s: %s", what, error)
    return bad_gateway(f"Could not get {what} from {error.destination}")


def bad_gateway(message: str) -> MatrixError:
    return MatrixError(BAD_GATEWAY, errors.Codes.UNKNOWN, message)
