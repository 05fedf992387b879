"""Matrix errors: every failed request is answered with one of these.

spec: client-server-api/_index.md#api-standards ("Standard error response",
"Common error codes", "Rate limiting")
"""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any


class Codes:
    """Error codes from the spec; only these (and namespaced ones) are ever sent."""

    BAD_JSON = "M_BAD_JSON"
    FORBIDDEN = "M_FORBIDDEN"
    INVALID_PARAM = "M_INVALID_PARAM"
    LIMIT_EXCEEDED = "M_LIMIT_EXCEEDED"
    MISSING_PARAM = "M_MISSING_PARAM"
    MISSING_TOKEN = "M_MISSING_TOKEN"
    NOT_FOUND = "M_NOT_FOUND"
    NOT_JSON = "M_NOT_JSON"
    TOO_LARGE = "M_TOO_LARGE"
    UNKNOWN = "M_UNKNOWN"
    UNKNOWN_TOKEN = "M_UNKNOWN_TOKEN"
    UNRECOGNIZED = "M_UNRECOGNIZED"
    USER_DEACTIVATED = "M_USER_DEACTIVATED"
    USER_IN_USE = "M_USER_IN_USE"
    INVALID_USERNAME = "M_INVALID_USERNAME"
    WEAK_PASSWORD = "M_WEAK_PASSWORD"
    GUEST_ACCESS_FORBIDDEN = "M_GUEST_ACCESS_FORBIDDEN"
    ROOM_IN_USE = "M_ROOM_IN_USE"
    INVALID_ROOM_STATE = "M_INVALID_ROOM_STATE"
    UNSUPPORTED_ROOM_VERSION = "M_UNSUPPORTED_ROOM_VERSION"
    BAD_ALIAS = "M_BAD_ALIAS"
    BAD_STATE = "M_BAD_STATE"
    NOT_YET_UPLOADED = "M_NOT_YET_UPLOADED"
    CANNOT_OVERWRITE_MEDIA = "M_CANNOT_OVERWRITE_MEDIA"
    #: Not in the spec's list; what Synapse answers and clients expect when uploaded
    #: keys carry a signature that does not verify.
    INVALID_SIGNATURE = "M_INVALID_SIGNATURE"
    WRONG_ROOM_KEYS_VERSION = "M_WRONG_ROOM_KEYS_VERSION"


class MatrixError(Exception):
    """An error with an HTTP status, a Matrix ``errcode`` and a human-readable message.

    ``extra`` holds the additional keys some error codes define (``soft_logout``,
    ``retry_after_ms``, ...); they are merged into the JSON body.
    """

    def __init__(
        self,
        status: int,
        errcode: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "error": self.message, **self.extra}

    def __repr__(self) -> str:
        return f"MatrixError({self.status}, {self.errcode!r}, {self.message!r})"


def not_json(message: str = "Content not JSON.") -> MatrixError:
    return MatrixError(HTTPStatus.BAD_REQUEST, Codes.NOT_JSON, message)


def bad_json(message: str) -> MatrixError:
    return MatrixError(HTTPStatus.BAD_REQUEST, Codes.BAD_JSON, message)


def missing_param(name: str) -> MatrixError:
    return MatrixError(HTTPStatus.BAD_REQUEST, Codes.MISSING_PARAM, f"Missing parameter: {name}")


def invalid_param(message: str) -> MatrixError:
    return MatrixError(HTTPStatus.BAD_REQUEST, Codes.INVALID_PARAM, message)


def forbidden(message: str) -> MatrixError:
    return MatrixError(HTTPStatus.FORBIDDEN, Codes.FORBIDDEN, message)


def not_found(message: str = "Not found.") -> MatrixError:
    return MatrixError(HTTPStatus.NOT_FOUND, Codes.NOT_FOUND, message)


def unrecognized_endpoint() -> MatrixError:
    # spec: 404 M_UNRECOGNIZED for endpoints the server does not implement.
    return MatrixError(HTTPStatus.NOT_FOUND, Codes.UNRECOGNIZED, "Unrecognized request")


def method_not_allowed(method: str, allowed: list[str]) -> MatrixError:
    # spec: 405 M_UNRECOGNIZED when the endpoint exists but not with this method.
    return MatrixError(
        HTTPStatus.METHOD_NOT_ALLOWED,
        Codes.UNRECOGNIZED,
        f"Method {method} is not allowed here",
        headers={"Allow": ", ".join(sorted(allowed))},
    )


def too_large(limit_bytes: int) -> MatrixError:
    return MatrixError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        Codes.TOO_LARGE,
        f"Request body is larger than the {limit_bytes}-byte limit",
    )


def missing_token() -> MatrixError:
    return MatrixError(HTTPStatus.UNAUTHORIZED, Codes.MISSING_TOKEN, "Missing access token")


def unknown_token(*, soft_logout: bool = False) -> MatrixError:
    return MatrixError(
        HTTPStatus.UNAUTHORIZED,
        Codes.UNKNOWN_TOKEN,
        "Unrecognised access token",
        soft_logout=soft_logout,
    )


def limit_exceeded(retry_after_seconds: float) -> MatrixError:
    """429 with both the ``Retry-After`` header and the deprecated ``retry_after_ms``."""
    retry_after_ms = max(1, math.ceil(retry_after_seconds * 1000))
    return MatrixError(
        HTTPStatus.TOO_MANY_REQUESTS,
        Codes.LIMIT_EXCEEDED,
        "Too many requests",
        headers={"Retry-After": str(math.ceil(retry_after_ms / 1000))},
        retry_after_ms=retry_after_ms,
    )


def internal_error() -> MatrixError:
    return MatrixError(HTTPStatus.INTERNAL_SERVER_ERROR, Codes.UNKNOWN, "Internal server error")


class TextWithNulError(ValueError):
    """A text value to store holds a NUL character.

    PostgreSQL cannot store NUL in text; it is refused on every engine alike, so a
    value that slipped past validation is a client error (400), never a 500 on one
    engine and stored data on the other.  JSON columns are unaffected: encoded JSON
    escapes NUL as ``\\u0000``.
    """


def invalid_signature(message: str) -> MatrixError:
    return MatrixError(HTTPStatus.BAD_REQUEST, Codes.INVALID_SIGNATURE, message)
