"""The error a media backend raises when storage fails in a way the caller cannot
fix: a full disk, an unreachable or misconfigured object store, a refused request.

The media repository answers it with a server error (and logs it); "no such media"
is not an error (``local_file`` returns None) and neither is deleting what is
already gone.
"""

from __future__ import annotations


class MediaBackendError(Exception):
    """Storing, fetching or deleting media bytes failed; the message says which key
    and why, and ``__cause__`` holds the underlying error."""
