"""A response body handed on as it arrives instead of read into memory: remote
media downloads (``federation/queries/media.py``) go through it to a file on disk,
whatever their size.

The machinery lives with the outbound client (:func:`homeserver.http.outbound.stream_body`)
so that a file behind a media ``Location``, fetched through that client
(:meth:`~homeserver.http.outbound.OutboundHttpClient.get_streamed`), streams to disk
the same way; it is named here too because the federation client's ``read_body``
(``FederationHttpClient.get_file``) is where federation code meets it.

The limits are those of :func:`homeserver.http.outbound.read_capped_body` for bodies
kept in memory: a ``Content-Length`` over ``max_size`` is refused before anything is
read, and the connection is dropped as soon as more than ``max_size`` bytes arrive
(``OutboundTooLarge``).  The sink may also refuse what it is given (a malformed
body, a file part too large) by raising: the connection is dropped at once and its
exception is the outcome.  Flow control is the sink's: it gets the body's transport
(``pauseProducing``/``resumeProducing``) to stop reading while it catches up.

spec: server-server-api.md#content-repository (media downloads can be large)
"""

from __future__ import annotations

from homeserver.http.outbound import BodySink, stream_body

__all__ = ["BodySink", "stream_body"]
