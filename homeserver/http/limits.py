"""How long a listener waits for a request, and how many connections it keeps.

The defaults, and why (per listener; all configurable):

- ``header_timeout`` 10 s: a request head is a few KB sent in one or two TCP
  segments (a reverse proxy writes it in one), so 10 s is many round trips even on
  a poor mobile link.  nginx's ``client_header_timeout`` is 60 s but restarts on
  every read; Apache's ``mod_reqtimeout`` allows 20-40 s in total.
- ``body_timeout`` 60 s plus one second per ``body_min_rate`` (500) bytes received:
  a body may be a 50 MB media upload on a slow uplink, so no fixed total fits; what
  a slow-body attack cannot do is keep up an average rate.  This is Apache's
  ``mod_reqtimeout`` model (``body=20,MinRate=500``) with nginx's 60 s allowance.
- ``idle_timeout`` 75 s between requests on a kept-alive connection: longer than
  nginx's upstream ``keepalive_timeout`` (60 s), so a proxy's connection pool closes
  its idle connections before we do and never sends a request into one we are
  closing; the same as nginx's own client ``keepalive_timeout``.
- ``max_connections`` 10,000 open connections: an idle connection costs some tens
  of KB (Twisted objects plus kernel socket buffers), so the cap bounds that memory
  to a few hundred MB and keeps clear of the process's file descriptor limit, while
  a long-polling /sync holds one connection per online device (behind a proxy
  without upstream keep-alive), so busy servers raise it.

Synapse sets none of these (Twisted's default is a 12-hour idle timeout that any
byte restarts) and relies on the reverse proxy.
"""

from __future__ import annotations

import logging
import resource

import attrs

logger = logging.getLogger(__name__)

#: Connections the kernel completes and queues for us to accept (listen(2)).  Twisted's
#: default of 50 overflows in a burst of new connections — a reconnect storm after a
#: restart, or a client opening many at once — and the kernel then drops SYNs, so
#: ordinary clients wait 1-3 s for a retransmit.  511 is nginx's default on Linux (the
#: kernel caps it at net.core.somaxconn).
LISTEN_BACKLOG = 511

#: File descriptors the process needs besides client connections: database
#: connections, log files, outbound federation and media requests.
_RESERVED_FILE_DESCRIPTORS = 1024


@attrs.frozen
class ConnectionLimits:
    """The receive deadlines and connection cap of one listener (seconds, bytes)."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    body_min_rate: int = 500
    idle_timeout: float = 75.0
    max_connections: int = 10_000


def ensure_file_descriptors(max_connections: int) -> None:
    """Raise the soft open-files limit so every listener can reach its cap.

    A connection refused at the cap is closed cleanly; one refused because the
    process ran out of descriptors makes ``accept()`` fail with EMFILE, which also
    breaks database connections and file access.  The default soft limit is often
    1,024.  Synapse raises the soft limit to the hard limit at start-up for the same
    reason; we raise it only as far as needed.
    """
    wanted = max_connections + _RESERVED_FILE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if new_soft > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        except (ValueError, OSError):
            new_soft = soft
    if new_soft < wanted:
        logger.warning(
            "the open-files limit (%d) is below the listeners' max_connections (%d) "
            "plus %d for everything else; raise it (ulimit -n, LimitNOFILE=) or lower "
            "max_connections",
            new_soft,
            max_connections,
            _RESERVED_FILE_DESCRIPTORS,
        )
