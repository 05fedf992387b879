"""Which content type a file is recorded with, and whether it may be shown inline.

A client says what it uploads (``Content-Type``); the bytes say what it is.  The
type recorded is the client's when the bytes agree with it, and the bytes' own
when they contradict it in a way that matters: a file is only ever served
``inline`` under a type its bytes were checked to be.  So an HTML page uploaded as
``image/png`` is recorded as ``application/octet-stream`` and downloaded as an
attachment, while a ``.docx`` (a ZIP by its bytes) keeps its more precise declared
type, since either way it is an attachment.

spec: client-server-api/modules/content_repo.md#serving-inline-content
"""

from __future__ import annotations

import filetype

OCTET_STREAM = "application/octet-stream"

#: The spec's list of types that are safe to serve with ``Content-Disposition: inline``.
INLINE_CONTENT_TYPES = frozenset(
    {
        "text/css",
        "text/plain",
        "text/csv",
        "application/json",
        "application/ld+json",
        "image/jpeg",
        "image/gif",
        "image/png",
        "image/apng",
        "image/webp",
        "image/avif",
        "video/mp4",
        "video/webm",
        "video/ogg",
        "video/quicktime",
        "audio/mp4",
        "audio/webm",
        "audio/aac",
        "audio/mpeg",
        "audio/ogg",
        "audio/wave",
        "audio/wav",
        "audio/x-wav",
        "audio/x-pn-wav",
        "audio/flac",
        "audio/x-flac",
    }
)

#: Types that are text: no magic number, so they are checked by being valid UTF-8.
_TEXT_TYPES = frozenset(
    {"text/css", "text/plain", "text/csv", "application/json", "application/ld+json"}
)

#: Names that mean the same format (each set is one family).
_FAMILIES = (
    frozenset({"audio/ogg", "video/ogg", "application/ogg", "audio/opus"}),
    frozenset({"audio/wav", "audio/wave", "audio/x-wav", "audio/x-pn-wav", "audio/vnd.wave"}),
    frozenset({"audio/flac", "audio/x-flac"}),
    frozenset({"audio/mp4", "video/mp4", "audio/x-m4a", "audio/m4a", "video/x-m4v"}),
    frozenset({"audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg"}),
    frozenset({"audio/webm", "video/webm", "video/x-matroska", "audio/x-matroska"}),
    frozenset({"image/png", "image/apng"}),
    frozenset({"image/jpeg", "image/jpg", "image/pjpeg"}),
    frozenset({"audio/aac", "audio/x-aac", "audio/aacp"}),
    frozenset({"image/x-icon", "image/vnd.microsoft.icon"}),
)

#: Types the sniffer recognises by their magic numbers: a file declared as one of
#: these whose bytes the sniffer does not recognise is not what it claims.
_SNIFFABLE = frozenset(kind.mime for kind in filetype.types) - {OCTET_STREAM}


def base_type(content_type: str) -> str:
    """``type/subtype`` in lower case, without parameters."""
    return content_type.partition(";")[0].strip().lower()


def _same_format(a: str, b: str) -> bool:
    if a == b:
        return True
    return any(a in family and b in family for family in _FAMILIES)


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # The head may end inside a multi-byte character.
        return error.start >= len(head) - 3 and error.reason == "unexpected end of data"
    return True


def recorded_content_type(declared: str | None, head: bytes) -> str:
    """The type to record for a file whose first bytes are ``head`` and which the
    client declared as ``declared`` (its ``Content-Type``, parameters kept)."""
    sniffed = filetype.guess_mime(head) if head else None
    declared_base = base_type(declared) if declared else ""
    if declared is None or declared_base == OCTET_STREAM or "/" not in declared_base:
        return str(sniffed) if sniffed is not None else OCTET_STREAM
    if sniffed is None:
        if declared_base in _TEXT_TYPES:
            return declared if _looks_like_text(head) else OCTET_STREAM
        if declared_base in INLINE_CONTENT_TYPES and declared_base in _SNIFFABLE:
            # Claims a format we can recognise, and is not it.
            return OCTET_STREAM
        return declared
    sniffed = str(sniffed)
    if _same_format(declared_base, sniffed):
        return declared
    if declared_base not in INLINE_CONTENT_TYPES and sniffed not in INLINE_CONTENT_TYPES:
        # Both attachments either way; the declared type is usually the more precise
        # (a .docx or .apk is a ZIP by its bytes).
        return declared
    return sniffed


def is_inline(content_type: str) -> bool:
    return base_type(content_type) in INLINE_CONTENT_TYPES
