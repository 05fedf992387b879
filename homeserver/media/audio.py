"""How long an audio or video file plays, read from its headers with mutagen
(Ogg Vorbis/Opus, MP3, FLAC, MP4/M4A, WAV, WebM is not covered), so a client can show
a voice message's length without downloading it.

spec: client-server-api/modules/instant_messaging.md (``m.audio`` ``info.duration``,
milliseconds)
"""

from __future__ import annotations

import logging
from pathlib import Path

import mutagen

logger = logging.getLogger(__name__)


def duration_ms(path: Path) -> int | None:
    """The playing time in milliseconds, or None if the file's format is unknown
    or its headers do not say (blocking: run it on the media thread pool)."""
    try:
        parsed = mutagen.File(path)
    except Exception as error:  # mutagen raises many kinds on malformed files
        logger.debug("no duration for %s: %s", path, error)
        return None
    length = getattr(getattr(parsed, "info", None), "length", None)
    if not isinstance(length, int | float) or length <= 0:
        return None
    return round(length * 1000)
