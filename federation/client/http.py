"""Requests to other homeservers: signed, JSON, bounded, and never to a server that
is being backed off from.

spec: server-server-api.md#api-standards (JSON bodies, ``Content-Type``),
#request-authentication (the ``X-Matrix`` header: ``federation/transport/
x_matrix.py``), #tls and #resolving-server-names (``agent.py``).

Every request:

- is refused before anything is sent (:class:`DestinationNotAllowed`) when the
  destination is our own name (callers handle local targets themselves), outside
  ``federation_domain_whitelist``, or not a server name;
- is refused (:class:`NotRetryingDestination`) while the destination is backed off
  from, unless ``ignore_backoff`` (``backoff.py``);
- carries a canonical JSON body (``Content-Type: application/json``), our
  ``User-Agent``, and unless ``authenticated=False`` (the key endpoints) an
  ``Authorization: X-Matrix`` header signed for ``origin`` = our name and
  ``destination``;
- is abandoned after ``timeout`` seconds overall (connecting, sending, the whole
  body), and its body is read only up to ``max_size`` bytes;
- follows no redirect: a 3xx is an error like any non-2xx (the media download's
  redirect is handed to the caller by :meth:`FederationHttpClient.get_file`).

Backoff: no answer at all (DNS, connection, TLS, timeout) and 5xx/429 answers are
failures; any other answer, 4xx included, means the destination is up.

A request that fails because a kept-alive connection was closed by the peer before
any answer (the race every HTTP/1.1 client has) is sent once more on a new
connection; federation requests are idempotent (transactions have IDs).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import attrs
from signedjson.types import SigningKey
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.web._newclient import RequestTransmissionFailed, ResponseNeverReceived
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IResponse

from federation.client.agent import DestinationBlocked
from federation.client.backoff import DestinationBackoff
from federation.client.errors import (
    DestinationNotAllowed as DestinationNotAllowed,
)
from federation.client.errors import (
    FederationRequestError as FederationRequestError,
)
from federation.client.errors import (
    FederationUnreachable as FederationUnreachable,
)
from federation.client.errors import (
    NotRetryingDestination as NotRetryingDestination,
)
from federation.client.errors import (
    ResponseTooLarge as ResponseTooLarge,
)
from federation.transport.x_matrix import sign_request
from homeserver.events.canonical import encode_canonical_json
from homeserver.http.outbound import (
    BytesProducer,
    OutboundTooLarge,
    describe_failure,
    read_capped_body,
)
from homeserver.identifiers import is_valid_server_name
from homeserver.util.untrusted_json import UntrustedJsonError, parse_untrusted_json

logger = logging.getLogger(__name__)

#: The largest JSON response read by default (a ``/state`` of a big room, a
#: ``/backfill`` of many events); callers expecting less pass a smaller cap.
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
#: Attempts of one request when a kept-alive connection turned out to be closed.
ATTEMPTS = 2

QueryArgs = Mapping[str, str | Sequence[str]]
#: Reads a response's body in place of :func:`read_capped_body` (a media download
#: streamed to disk: ``federation/client/get_file.py``); what it returns is the
#: answer's ``body``.  Raising ``OutboundTooLarge`` means the body was too large.
BodyReader = Callable[[IResponse], Awaitable[bytes]]


@attrs.frozen
class FederationFileResponse:
    """A non-JSON answer (media).  2xx, or 3xx when the server redirects the
    download elsewhere (``headers["location"]``: the caller fetches it unsigned)."""

    status: int
    #: Lower-cased names; repeated headers joined with ", ".
    headers: Mapping[str, str]
    body: bytes


@attrs.frozen
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class FederationHttpClient:
    def __init__(
        self,
        *,
        reactor: IReactorTime,
        agent: IAgent,
        server_name: str,
        signing_key: SigningKey,
        backoff: DestinationBackoff,
        domain_whitelist: frozenset[str] | None,
        user_agent: str,
        default_timeout: float = 60.0,
    ) -> None:
        self._reactor = reactor
        self._agent = agent
        self._server_name = server_name
        self._signing_key = signing_key
        self._backoff = backoff
        self._domain_whitelist = domain_whitelist
        self._user_agent = user_agent.encode("utf-8")
        self._default_timeout = default_timeout

    async def get_json(
        self,
        destination: str,
        path: str,
        *,
        args: QueryArgs | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a Twisted coroutine)
        ignore_backoff: bool = False,
        authenticated: bool = True,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> Any:
        """GET ``path`` (percent-encoded, from ``/_matrix``) on ``destination``; the
        parsed JSON answer."""
        return await self._json_request(
            b"GET", destination, path, None, args, timeout, ignore_backoff, authenticated, max_size
        )

    async def put_json(
        self,
        destination: str,
        path: str,
        body: object,
        *,
        args: QueryArgs | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a Twisted coroutine)
        ignore_backoff: bool = False,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> Any:
        """PUT ``body`` as JSON to ``path`` on ``destination``; the parsed JSON answer."""
        return await self._json_request(
            b"PUT", destination, path, body, args, timeout, ignore_backoff, True, max_size
        )

    async def post_json(
        self,
        destination: str,
        path: str,
        body: object,
        *,
        args: QueryArgs | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a Twisted coroutine)
        ignore_backoff: bool = False,
        max_size: int = DEFAULT_MAX_SIZE,
        authenticated: bool = True,
    ) -> Any:
        """POST ``body`` as JSON to ``path`` on ``destination``; the parsed JSON answer."""
        return await self._json_request(
            b"POST", destination, path, body, args, timeout, ignore_backoff, authenticated, max_size
        )

    async def _json_request(
        self,
        method: bytes,
        destination: str,
        path: str,
        body: object,
        args: QueryArgs | None,
        timeout: float | None,  # noqa: ASYNC109 (a Twisted coroutine)
        ignore_backoff: bool,
        authenticated: bool,
        max_size: int,
    ) -> Any:
        """The one request behind :meth:`get_json`, :meth:`put_json` and
        :meth:`post_json`: the parsed JSON of a 2xx answer, else
        :class:`FederationRequestError` (spec: server-server-api.md#api-standards)."""
        answer = await self._exchange(
            method, destination, path, body, args, timeout, ignore_backoff, authenticated, max_size
        )
        if not 200 <= answer.status < 300:
            raise _request_error(destination, answer)
        try:
            return parse_untrusted_json(answer.body)
        except UntrustedJsonError as error:
            raise FederationRequestError(
                destination, answer.status, error=f"response is not valid JSON: {error}"
            ) from None

    async def get_file(
        self,
        destination: str,
        path: str,
        *,
        args: QueryArgs | None = None,
        max_size: int,
        timeout: float | None = None,  # noqa: ASYNC109 (a Twisted coroutine)
        ignore_backoff: bool = False,
        read_body: BodyReader | None = None,
    ) -> FederationFileResponse:
        """GET a non-JSON resource (media): the 2xx or 3xx answer as it is;
        :class:`FederationRequestError` for 4xx/5xx.  ``read_body``, if given, reads
        every answer's body instead of the default capped read (it sees the status)."""
        answer = await self._exchange(
            b"GET",
            destination,
            path,
            None,
            args,
            timeout,
            ignore_backoff,
            True,
            max_size,
            read_body=read_body,
        )
        if answer.status >= 400:
            raise _request_error(destination, answer)
        return FederationFileResponse(answer.status, answer.headers, answer.body)

    def _check_destination(self, destination: str) -> None:
        if destination == self._server_name:
            raise DestinationNotAllowed(destination, "our own server name")
        if not is_valid_server_name(destination):
            raise DestinationNotAllowed(destination, "not a valid server name")
        if self._domain_whitelist is not None and destination not in self._domain_whitelist:
            raise DestinationNotAllowed(destination, "not in federation_domain_whitelist")

    async def _exchange(
        self,
        method: bytes,
        destination: str,
        path: str,
        body: object | None,
        args: QueryArgs | None,
        timeout: float | None,  # noqa: ASYNC109 (a Twisted coroutine)
        ignore_backoff: bool,
        authenticated: bool,
        max_size: int,
        *,
        read_body: BodyReader | None = None,
    ) -> _Answer:
        self._check_destination(destination)
        if not ignore_backoff:
            retry_at = await self._backoff.is_backing_off(destination)
            if retry_at is not None:
                raise NotRetryingDestination(destination, retry_at)
        target = _request_target(path, args)
        headers = Headers({b"User-Agent": [self._user_agent]})
        encoded: bytes | None = None
        if body is not None:
            encoded = encode_canonical_json(body)
            headers.setRawHeaders(b"Content-Type", [b"application/json"])
        if authenticated:
            authorization = sign_request(
                self._signing_key,
                origin=self._server_name,
                destination=destination,
                method=method.decode("ascii"),
                uri=target,
                content=body,
            )
            headers.setRawHeaders(b"Authorization", [authorization.encode("utf-8")])
        uri = f"matrix-federation://{destination}{target}".encode("ascii")
        seconds = self._default_timeout if timeout is None else timeout

        try:
            answer = await self._within(
                seconds,
                lambda: self._attempts(method, uri, headers, encoded, max_size, read_body),
            )
        except defer.CancelledError:
            raise
        except _TimedOut:
            await self._failed(destination)
            raise FederationUnreachable(
                destination, f"no complete answer within {seconds:g} seconds"
            ) from None
        except _TooLarge as error:
            await self._answered(destination, error.status)
            raise ResponseTooLarge(
                destination, f"{method.decode()} {path}: response larger than {max_size} bytes"
            ) from None
        except DestinationBlocked as error:
            await self._failed(destination)
            raise FederationUnreachable(
                destination, f"blocked address ({', '.join(error.addresses)})"
            ) from None
        except Exception as error:  # every other failure: no answer
            await self._failed(destination)
            raise FederationUnreachable(destination, describe_failure(error)) from error
        await self._answered(destination, answer.status)
        return answer

    async def _attempts(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers,
        body: bytes | None,
        max_size: int,
        read_body: BodyReader | None = None,
    ) -> _Answer:
        for attempt in range(1, ATTEMPTS + 1):
            producer = None if body is None else BytesProducer(body)
            try:
                response = await self._agent.request(method, uri, headers, producer)
            except (ResponseNeverReceived, RequestTransmissionFailed) as error:
                if any(reason.check(defer.CancelledError) for reason in error.reasons):
                    raise defer.CancelledError() from error  # the timeout or our caller
                if attempt == ATTEMPTS:
                    raise
                logger.debug("Retrying %s on a new connection: %s", uri, describe_failure(error))
                continue
            flat = _flat_headers(response.headers)
            try:
                if read_body is None:
                    data = await read_capped_body(response, max_size)
                else:
                    data = await read_body(response)
            except OutboundTooLarge:
                raise _TooLarge(response.code) from None
            return _Answer(response.code, flat, data)
        raise AssertionError("unreachable")

    async def _within(self, seconds: float, work: Any) -> _Answer:
        """``work()`` cancelled after ``seconds`` (:class:`_TimedOut`); a cancelled
        caller cancels it too (``CancelledError``)."""
        exchange: defer.Deferred[_Answer] = defer.ensureDeferred(work())
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            exchange.cancel()

        timer = self._reactor.callLater(seconds, expire)
        try:
            return await exchange
        except Exception as error:
            if expired:
                raise _TimedOut() from error
            raise
        finally:
            if timer.active():
                timer.cancel()

    async def _answered(self, destination: str, status: int) -> None:
        if status >= 500 or status == 429:
            await self._failed(destination)
            return
        try:
            await self._backoff.record_success(destination)
        except Exception:
            logger.exception("Could not record that %s is up", destination)

    async def _failed(self, destination: str) -> None:
        try:
            await self._backoff.record_failure(destination)
        except Exception:
            logger.exception("Could not record a failure of %s", destination)


class _TimedOut(Exception):
    pass


class _TooLarge(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _request_target(path: str, args: QueryArgs | None) -> str:
    """The request target as sent and signed: ``path`` plus the percent-encoded query."""
    if not path.startswith("/") or not path.isascii() or any(c in path for c in " ?#"):
        raise ValueError(f"path must be percent-encoded and start with '/': {path!r}")
    if not args:
        return path
    pairs: list[str] = []
    for name, values in args.items():
        for value in [values] if isinstance(values, str) else values:
            pairs.append(f"{quote(name, safe='')}={quote(value, safe='')}")
    return f"{path}?{'&'.join(pairs)}"


def _flat_headers(headers: Headers) -> dict[str, str]:
    flat: dict[str, str] = {}
    for name, values in headers.getAllRawHeaders():
        flat[name.decode("latin-1").lower()] = ", ".join(v.decode("latin-1") for v in values)
    return flat


def _request_error(destination: str, answer: _Answer) -> FederationRequestError:
    try:
        body: object | None = parse_untrusted_json(answer.body)
    except UntrustedJsonError:
        body = None
    errcode = error = None
    if isinstance(body, dict):
        errcode = body.get("errcode") if isinstance(body.get("errcode"), str) else None
        error = body.get("error") if isinstance(body.get("error"), str) else None
    return FederationRequestError(
        destination, answer.status, errcode=errcode, error=error, body=body
    )
