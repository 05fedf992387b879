"""The content type an upload is recorded with (the client's, unless its bytes
contradict it in a way that would let it be shown inline as something it is not),
and which types are served inline.

Every file head is made here: images with Pillow, archives with zipfile, the rest
from the format's published magic numbers.

spec: client-server-api/modules/content_repo.md#serving-inline-content
"""

from __future__ import annotations

import io
import struct
import zipfile

import pytest
from PIL import Image

from homeserver.media.content_types import (
    INLINE_CONTENT_TYPES,
    OCTET_STREAM,
    base_type,
    is_inline,
    recorded_content_type,
)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"


def image(format: str, size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, format=format)
    return buffer.getvalue()


PNG = image("PNG")
JPEG = image("JPEG")
GIF = image("GIF")
WEBP = image("WEBP")


def zip_archive(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


def ogg_page() -> bytes:
    """The first page of an Ogg stream (RFC 3533): capture pattern, version, flags
    (beginning of stream), granule position, serial, sequence, checksum, segments."""
    header = b"OggS" + struct.pack("<BBqIIIB", 0, 2, 0, 1, 0, 0, 1) + bytes([19])
    return header + b"OpusHead" + bytes([1, 2]) + b"\x00" * 9


OGG = ogg_page()


# -- the declared type is kept when the bytes agree ---------------------------------


@pytest.mark.parametrize(
    ("declared", "head"),
    [
        ("image/png", PNG),
        ("image/jpeg", JPEG),
        ("image/gif", GIF),
        ("image/webp", WEBP),
    ],
)
def test_an_image_declared_as_what_it_is_keeps_its_type(declared: str, head: bytes) -> None:
    assert recorded_content_type(declared, head) == declared


@pytest.mark.parametrize(
    ("declared", "head"),
    [("image/apng", PNG), ("image/jpg", JPEG), ("image/pjpeg", JPEG)],
)
def test_another_name_of_the_sniffed_format_is_kept(declared: str, head: bytes) -> None:
    assert recorded_content_type(declared, head) == declared


@pytest.mark.parametrize("declared", ["audio/ogg", "video/ogg", "application/ogg", "audio/opus"])
def test_ogg_declared_as_audio_or_video_is_the_same_format(declared: str) -> None:
    assert recorded_content_type(declared, OGG) == declared


def test_ogg_declared_as_another_inline_format_is_recorded_as_ogg() -> None:
    assert recorded_content_type("audio/mpeg", OGG) == "audio/ogg"
    assert recorded_content_type("video/mp4", OGG) == "audio/ogg"


def test_parameters_of_the_declared_type_are_kept() -> None:
    assert recorded_content_type("text/plain; charset=utf-8", b"hello") == (
        "text/plain; charset=utf-8"
    )
    assert recorded_content_type("Image/PNG; name=cat.png", PNG) == "Image/PNG; name=cat.png"
    assert recorded_content_type("video/ogg; codecs=opus", OGG) == "video/ogg; codecs=opus"


# -- contradicted by the bytes --------------------------------------------------------


@pytest.mark.parametrize("declared", ["image/png", "image/jpeg", "image/gif", "video/mp4"])
def test_html_declared_as_an_inline_media_type_is_an_attachment(declared: str) -> None:
    assert recorded_content_type(declared, HTML) == OCTET_STREAM


def test_bytes_of_another_inline_format_are_recorded_as_what_they_are() -> None:
    assert recorded_content_type("image/png", JPEG) == "image/jpeg"
    assert recorded_content_type("image/jpeg", PNG) == "image/png"
    assert recorded_content_type("image/gif", WEBP) == "image/webp"


def test_an_inline_type_with_the_bytes_of_an_attachment_type_becomes_that_type() -> None:
    archive = zip_archive("a.txt")
    assert recorded_content_type("image/png", archive) == "application/zip"


def test_an_attachment_type_with_inline_bytes_becomes_the_inline_type() -> None:
    # Declared as something that would be downloaded; the bytes are a PNG, and a
    # PNG is safe to show (and is what the file is).
    assert recorded_content_type("application/pdf", PNG) == "image/png"


# -- attachments keep the more precise declared type ----------------------------------


def test_a_docx_declared_with_zip_bytes_keeps_its_declared_type() -> None:
    assert recorded_content_type(DOCX, zip_archive("a.txt")) == DOCX


def test_a_docx_with_office_zip_contents_keeps_its_declared_type() -> None:
    docx = zip_archive("[Content_Types].xml", "word/document.xml")
    assert recorded_content_type(DOCX, docx) == DOCX


def test_an_apk_declared_with_zip_bytes_keeps_its_declared_type() -> None:
    apk = "application/vnd.android.package-archive"
    assert recorded_content_type(apk, zip_archive("AndroidManifest.xml")) == apk


def test_an_unsniffable_non_inline_type_is_kept_whatever_the_bytes() -> None:
    assert recorded_content_type("image/svg+xml", b"<svg xmlns='x'/>") == "image/svg+xml"
    assert recorded_content_type("text/html", HTML) == "text/html"
    assert recorded_content_type("application/x-custom", b"\x00\x01\x02") == (
        "application/x-custom"
    )


# -- text types have no magic number: they must be UTF-8 ------------------------------------


@pytest.mark.parametrize(
    "declared", ["text/plain", "text/csv", "text/css", "application/json", "application/ld+json"]
)
def test_a_text_type_with_utf8_text_is_kept(declared: str) -> None:
    assert recorded_content_type(declared, "naïve café, 日本語 🎉\n".encode()) == declared


@pytest.mark.parametrize(
    "head",
    [
        b"text\x00with a NUL",
        b"\xff\xfe\x00\x00binary",
        b"caf\xe9 in latin-1, not UTF-8",
        bytes(range(256)),
    ],
)
def test_text_plain_with_binary_bytes_is_an_attachment(head: bytes) -> None:
    assert recorded_content_type("text/plain", head) == OCTET_STREAM
    assert recorded_content_type("application/json; charset=utf-8", head) == OCTET_STREAM


def test_text_cut_inside_a_multibyte_character_is_still_text() -> None:
    # The head is the first 8 KiB: it may end part-way through a character.
    text = "x" * 10 + "日本"
    head = text.encode()[:-1]
    assert recorded_content_type("text/plain", head) == "text/plain"


def test_an_invalid_byte_just_before_the_end_of_the_head_is_not_text() -> None:
    assert recorded_content_type("text/plain", b"plain text\xff") == OCTET_STREAM
    assert recorded_content_type("text/plain", b"plain text\xff\xffok") == OCTET_STREAM


def test_an_empty_text_file_is_text() -> None:
    assert recorded_content_type("text/plain", b"") == "text/plain"


def test_text_declared_with_the_bytes_of_an_image_is_the_image() -> None:
    assert recorded_content_type("text/plain", PNG) == "image/png"


# -- no usable declared type: the bytes decide ---------------------------------------


@pytest.mark.parametrize("declared", [None, "application/octet-stream", "nonsense", ""])
def test_without_a_declared_type_the_sniffed_one_is_used(declared: str | None) -> None:
    assert recorded_content_type(declared, PNG) == "image/png"
    assert recorded_content_type(declared, OGG) == "audio/ogg"
    assert recorded_content_type(declared, zip_archive("a.txt")) == "application/zip"


@pytest.mark.parametrize("declared", [None, "application/octet-stream", "APPLICATION/OCTET-STREAM"])
def test_without_a_declared_type_unrecognised_bytes_are_octet_stream(
    declared: str | None,
) -> None:
    assert recorded_content_type(declared, b"just some words") == OCTET_STREAM
    assert recorded_content_type(declared, HTML) == OCTET_STREAM
    assert recorded_content_type(declared, b"") == OCTET_STREAM


def test_an_empty_file_keeps_a_declared_attachment_type() -> None:
    assert recorded_content_type("application/pdf", b"") == "application/pdf"


def test_an_empty_file_declared_as_an_image_is_an_attachment() -> None:
    assert recorded_content_type("image/png", b"") == OCTET_STREAM


# -- what is served inline ------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "image/png",
        "IMAGE/PNG",
        "image/jpeg; foo=bar",
        "text/plain; charset=utf-8",
        " video/webm ",
        "audio/ogg",
        "application/json",
    ],
)
def test_spec_inline_types_are_inline_whatever_their_case_or_parameters(
    content_type: str,
) -> None:
    assert is_inline(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html",
        "image/svg+xml",
        "application/javascript",
        "text/javascript",
        "application/xhtml+xml",
        "application/pdf",
        OCTET_STREAM,
        DOCX,
        "",
        "image/png-but-not",
        "text/plainx",
    ],
)
def test_other_types_are_attachments(content_type: str) -> None:
    assert not is_inline(content_type)


def test_base_type_drops_parameters_and_case() -> None:
    assert base_type("Text/Plain ; charset=UTF-8") == "text/plain"
    assert base_type("image/png") == "image/png"


def test_every_inline_type_is_lower_case_type_and_subtype() -> None:
    assert all(base_type(content_type) == content_type for content_type in INLINE_CONTENT_TYPES)
