"""Image thumbnailing for the content repository: what an image is (without decoding
it), the thumbnails made of it, and which stored thumbnail answers a request.

spec: client-server-api/modules/content_repo.md#thumbnails, for the sizes, the
"crop" and "scale" methods, never upscaling and never answering with less than
was asked for; data/api/client-server/authed-content-repo.yaml for ``animated``
(an animated thumbnail only when asked for, WebP preferred, a still one when the
media cannot be animated).

Everything here is synchronous and touches no file but the ones it is given: the
media handler runs it in the media thread pool (:mod:`homeserver.media.threads`).
The bytes are attacker-controlled (#content-repo-security-considerations), so
only a short list of formats is opened at all (Pillow would otherwise hand
PostScript to Ghostscript), and the size the header claims is checked against
``max_pixels`` before a single pixel is decoded.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final, TypeVar

import attrs
from PIL import (
    AvifImagePlugin,
    BmpImagePlugin,
    ExifTags,
    GifImagePlugin,
    Image,
    ImageCms,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from homeserver.config.media import ThumbnailMethod, ThumbnailSize

T = TypeVar("T")


@attrs.frozen
class ImageInfo:
    #: As displayed: after the EXIF orientation is applied.
    width: int
    height: int
    #: What the bytes are, whatever the uploader called them.  MPO (a camera's
    #: JPEG with extra images) is image/jpeg and APNG image/png, as browsers see them.
    mimetype: str
    #: More than one frame of an animation (GIF, APNG, WebP, AVIF sequence).
    animated: bool
    #: Frames of the animation; 1 for still images (and for TIFF pages and MPO
    #: images, which are not animations).
    frames: int = 1


class NotAnImage(Exception):
    """Not an image we read: unidentified, undecodable, or a refused type (SVG,
    PDF, PostScript, ...)."""


class ImageTooLarge(Exception):
    """More pixels than ``max_pixels``: an image bomb, or just too big to decode."""


@attrs.frozen
class Thumbnail:
    width: int
    height: int
    #: image/jpeg, image/png, or image/webp when animated.
    mimetype: str
    #: Bytes written to the destination.
    size: int
    #: False when a still was made although an animation was asked for (the source
    #: is still, or animating it would decode more than ``max_pixels``).
    animated: bool


# Registering the plugins here (rather than leaving Image.open to load them all on
# first use) keeps the set of decoders this module can reach explicit.
_MIMETYPES: Final[dict[str, str]] = {
    JpegImagePlugin.JpegImageFile.format: "image/jpeg",
    "MPO": "image/jpeg",
    PngImagePlugin.PngImageFile.format: "image/png",
    GifImagePlugin.GifImageFile.format: "image/gif",
    WebPImagePlugin.WebPImageFile.format: "image/webp",
    BmpImagePlugin.BmpImageFile.format: "image/bmp",
    TiffImagePlugin.TiffImageFile.format: "image/tiff",
}
if AvifImagePlugin.SUPPORTED:
    _MIMETYPES[AvifImagePlugin.AvifImageFile.format] = "image/avif"

# The formats Image.open may try; MPO is opened by the JPEG plugin.
_OPEN_FORMATS: Final = tuple(name for name in _MIMETYPES if name != "MPO")

# Formats whose extra frames are an animation.  TIFF pages and MPO images (a
# stereo pair, a depth map) are not: browsers show their first image.
_ANIMATION_FORMATS: Final = frozenset({"GIF", "PNG", "WEBP", "AVIF"})

# What a malformed file makes Pillow raise, while identifying or decoding it
# (Image.open itself treats the middle four as "not this format").
_DECODE_ERRORS: Final = (
    OSError,
    SyntaxError,
    IndexError,
    TypeError,
    struct.error,
    ValueError,
    EOFError,
)

# EXIF orientation -> the transposition that shows the image upright (EXIF 2.32,
# tag 0x0112).
_UPRIGHT: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES: Final = frozenset({5, 6, 7, 8})

_ALPHA_MODES: Final = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_JPEG_QUALITY: Final = 80
_WEBP_QUALITY: Final = 80
# Pillow first shrinks by an integer factor to within 3x of the target, then
# resamples: far faster on big images, and not visibly different (Pillow's docs).
_REDUCING_GAP: Final = 3.0
# Beyond these, the encoders refuse the image.
_JPEG_MAX_SIDE: Final = 65_535
_WEBP_MAX_SIDE: Final = 16_383
# A tiny canvas makes the pixel budget allow millions of frames, each still a
# seek, a conversion and a WebP frame; a minute at 15 frames a second fits.
_MAX_ANIMATION_FRAMES: Final = 1_000
# A frame without a delay: what browsers wait.
_DEFAULT_FRAME_MS: Final = 100


def probe_image(path: Path, *, max_pixels: int) -> ImageInfo:
    """What the image at ``path`` is, from its header alone: no pixel is decoded,
    so this is cheap enough to run on every upload.

    Raises NotAnImage, or ImageTooLarge if one frame has more than ``max_pixels``.
    A long animation is not refused here: its first frame still makes a thumbnail
    (see :func:`make_thumbnail`)."""
    with path.open("rb") as file, _refusing_bad_input(), _open(file) as image:
        info, _ = _describe(image, max_pixels)
        return info


def thumbnail_dimensions(
    source_width: int, source_height: int, width: int, height: int, method: ThumbnailMethod
) -> tuple[int, int]:
    """The size of the thumbnail of a ``source_width`` x ``source_height`` image
    asked for as ``width`` x ``height`` by ``method``.

    scale: the largest size with the source's aspect ratio that fits in the box.
    crop: the box itself, or, when the source is smaller than the box in some
    dimension, the largest size with the box's aspect ratio that fits in the source.
    Neither is ever larger than the source (the spec forbids upscaling) nor 0
    wide or high.  Integer arithmetic, so the answer never depends on rounding of
    floats: the handler looks stored thumbnails up by it.
    """
    _check_request(width, height, method)
    if min(source_width, source_height) < 1:
        raise ValueError("source dimensions must be positive")
    if method == "scale":
        if width >= source_width and height >= source_height:
            return source_width, source_height
        if width * source_height <= height * source_width:
            return width, max(1, _div_round(source_height * width, source_width))
        return max(1, _div_round(source_width * height, source_height)), height
    if source_width >= width and source_height >= height:
        return width, height
    if source_width * height <= source_height * width:
        return source_width, max(1, _div_round(height * source_width, width))
    return max(1, _div_round(width * source_height, height)), source_height


def make_thumbnail(
    source: Path,
    destination: Path,
    *,
    width: int,
    height: int,
    method: ThumbnailMethod,
    animated: bool,
    max_pixels: int,
) -> Thumbnail:
    """Write a thumbnail of the image at ``source`` to ``destination`` (replacing
    it), of the size :func:`thumbnail_dimensions` gives.

    Upright (EXIF orientation applied), converted to sRGB when it carries a colour
    profile, and stripped of all metadata (EXIF, XMP, ICC, text).  A PNG when it
    has any transparent pixel (or is too long a strip for JPEG), else a JPEG.  An
    animated WebP, keeping each frame's duration and the loop count, when
    ``animated`` is asked for, the source is animated, and all of its frames
    together have no more than ``max_pixels`` (and there are at most 1000); else,
    as the spec asks when media cannot be animated, a still of the first frame:
    ``Thumbnail.animated`` tells which.

    Raises NotAnImage, or ImageTooLarge (before decoding when the header says so).
    """
    # Before decoding starts, where a ValueError would read as a broken image.
    _check_request(width, height, method)
    with source.open("rb") as file, _refusing_bad_input(), _open(file) as image:
        info, orientation = _describe(image, max_pixels)
        target = thumbnail_dimensions(info.width, info.height, width, height, method)
        frames: list[Image.Image] = []
        durations: list[int] = []
        loop = 0
        if animated and _can_animate(info, target, max_pixels):
            frames, durations, loop = _animation(image, info, orientation, target, method)
        if len(frames) < 2:
            image.seek(0)
            frames = [_still(image, info, orientation, target, method)]

    return _save(frames, durations, loop, target, destination)


@attrs.define
class DecodedImage:
    """An image decoded once, to make thumbnails of at several sizes (the preset
    sizes made at upload cost one decode, not one each).  Use it from one thread at
    a time."""

    image: Image.Image
    info: ImageInfo
    orientation: int


def decode_for_sizes(
    source: Path,
    sizes: Sequence[tuple[int, int, ThumbnailMethod]],
    *,
    max_pixels: int,
) -> DecodedImage:
    """Decode the image at ``source`` (its first frame) at the resolution the most
    demanding of ``sizes`` needs: a JPEG is decoded at a reduced scale when that
    is enough.  Raises NotAnImage, or ImageTooLarge (before decoding when the
    header says so)."""
    for width, height, method in sizes:
        _check_request(width, height, method)
    with source.open("rb") as file, _refusing_bad_input(), _open(file) as image:
        info, orientation = _describe(image, max_pixels)
        targets = [
            thumbnail_dimensions(info.width, info.height, width, height, method)
            for width, height, method in sizes
        ]
        largest = max(targets, key=lambda t: max(t[0] / info.width, t[1] / info.height))
        _load(image, info, orientation, largest)
        # A copy outlives the file (and keeps the ICC profile in its info).
        return DecodedImage(image.copy(), info, orientation)


def thumbnail_from(
    decoded: DecodedImage,
    destination: Path,
    *,
    width: int,
    height: int,
    method: ThumbnailMethod,
) -> Thumbnail:
    """A still thumbnail of a decoded image, as :func:`make_thumbnail` makes it."""
    _check_request(width, height, method)
    info = decoded.info
    target = thumbnail_dimensions(info.width, info.height, width, height, method)
    with _refusing_bad_input():
        frame = _still_from_loaded(decoded.image, decoded.orientation, target, method)
    return _save([frame], [], 0, target, destination)


def _save(
    frames: list[Image.Image],
    durations: list[int],
    loop: int,
    target: tuple[int, int],
    destination: Path,
) -> Thumbnail:
    """Write ``frames`` (one: a still) in the format :func:`make_thumbnail` says."""
    for frame in frames:
        # Resized and converted images inherit the source's info (EXIF, XMP, ICC
        # profile, PNG text), and some encoders write what they find there.
        frame.info = {}
    if len(frames) > 1:
        frames[0].save(
            destination,
            format="WEBP",
            save_all=True,
            append_images=frames[1:],
            duration=durations,
            loop=loop,
            quality=_WEBP_QUALITY,
        )
        mimetype = "image/webp"
    elif frames[0].mode == "RGBA" or max(target) > _JPEG_MAX_SIDE:
        frames[0].save(destination, format="PNG")
        mimetype = "image/png"
    else:
        frames[0].save(destination, format="JPEG", quality=_JPEG_QUALITY, optimize=True)
        mimetype = "image/jpeg"
    return Thumbnail(
        width=target[0],
        height=target[1],
        mimetype=mimetype,
        size=destination.stat().st_size,
        animated=len(frames) > 1,
    )


def select_thumbnail(
    candidates: Sequence[T],
    width: int,
    height: int,
    method: ThumbnailMethod,
    size_of: Callable[[T], tuple[int, int, str]],
) -> T | None:
    """The candidate (``size_of``: its width, height and method) that best answers
    a request for ``width`` x ``height`` by ``method``; None if there are none.

    The spec's rule is that a thumbnail is never smaller than asked for unless the
    image is, so: the smallest (in area) of the candidates at least as large in
    both dimensions, one of the asked-for method first, since its aspect ratio is
    the one the client wants.  If none is that large, the image is smaller than
    the request, and the spec would serve it whole: the largest candidate, which
    comes closest, preferring the asked-for method among equals.
    """
    sized = [(candidate, *size_of(candidate)) for candidate in candidates]
    large_enough = [entry for entry in sized if entry[1] >= width and entry[2] >= height]
    if large_enough:
        return min(large_enough, key=lambda entry: (entry[3] != method, entry[1] * entry[2]))[0]
    if sized:
        return max(sized, key=lambda entry: (entry[1] * entry[2], entry[3] == method))[0]
    return None


def preset_sizes_for(info: ImageInfo, sizes: Sequence[ThumbnailSize]) -> list[ThumbnailSize]:
    """The configured presets worth making for an image, in the given order.

    Presets that would come out as the same picture are made once, by the first
    of them: a preset for which the image is already small enough comes out as
    the whole image at its own size, whatever its method, and every larger one of
    the same kind would be that same picture again (likewise crops shrunk to fit
    a small image).  One such full-size copy is still worth making, although a
    request larger than the image may be answered with the original: it is
    upright, in a format every client shows inline, carries no metadata, and
    answers requests from clients the handler does give a thumbnail.
    """
    chosen: list[ThumbnailSize] = []
    seen: set[tuple[int, int, str]] = set()
    for size in sizes:
        out = thumbnail_dimensions(info.width, info.height, size.width, size.height, size.method)
        whole = out == (info.width, info.height)
        identity = (*out, "whole" if whole else size.method)
        if identity not in seen:
            seen.add(identity)
            chosen.append(size)
    return chosen


def _check_request(width: int, height: int, method: str) -> None:
    if width < 1 or height < 1:
        raise ValueError("thumbnail dimensions must be positive")
    if method not in ("crop", "scale"):
        raise ValueError(f"unknown thumbnail method {method!r}")


def _can_animate(info: ImageInfo, target: tuple[int, int], max_pixels: int) -> bool:
    """Whether an animated thumbnail may be made: decoding every frame costs
    frames x pixels, and each frame some fixed work however small it is."""
    return (
        info.animated
        and info.frames <= _MAX_ANIMATION_FRAMES
        and info.frames * info.width * info.height <= max_pixels
        and max(target) <= _WEBP_MAX_SIDE
    )


def _div_round(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)


@contextmanager
def _refusing_bad_input() -> Iterator[None]:
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow's own limit (its warning only arrives here if warnings are errors;
        # ours is checked first anyway, as long as max_pixels is below Pillow's).
        raise ImageTooLarge(str(e)) from e
    except _DECODE_ERRORS as e:
        raise NotAnImage(str(e) or type(e).__name__) from e


@contextmanager
def _open(file: io.BufferedReader) -> Iterator[ImageFile.ImageFile]:
    with Image.open(file, formats=_OPEN_FORMATS) as image:
        yield image


def _describe(image: ImageFile.ImageFile, max_pixels: int) -> tuple[ImageInfo, int]:
    """The image's ImageInfo and EXIF orientation, from what the header says."""
    width, height = image.size
    if width < 1 or height < 1:
        raise NotAnImage("the image has no pixels")
    if width * height > max_pixels:
        raise ImageTooLarge(f"{width}x{height} is more than {max_pixels} pixels")
    orientation = _orientation(image)
    if orientation in _SWAPS_AXES:
        width, height = height, width
    frames = 1
    if image.format in _ANIMATION_FORMATS:
        frames = max(1, int(getattr(image, "n_frames", 1)))
    mimetype = _MIMETYPES.get(image.format or "")
    if mimetype is None:  # pragma: no cover - Image.open only tries our formats
        raise NotAnImage(f"unexpected format {image.format}")
    return ImageInfo(width, height, mimetype, frames > 1, frames), orientation


def _orientation(image: ImageFile.ImageFile) -> int:
    # Image.Image.getexif reads only what identifying the image already stored;
    # PNG's override decodes all the pixels to look for an eXIf chunk after them.
    # Reading it the same way for probe_image and make_thumbnail (rather than with
    # ImageOps.exif_transpose after decoding) keeps the two agreeing on the size.
    try:
        orientation = Image.Image.getexif(image).get(ExifTags.Base.Orientation, 1)
    except Exception:
        # Mangled EXIF is common and harmless: show the image as stored.
        return 1
    return orientation if isinstance(orientation, int) and orientation in _UPRIGHT else 1


def _still(
    image: ImageFile.ImageFile,
    info: ImageInfo,
    orientation: int,
    target: tuple[int, int],
    method: ThumbnailMethod,
) -> Image.Image:
    _load(image, info, orientation, target)
    return _still_from_loaded(image, orientation, target, method)


def _load(
    image: ImageFile.ImageFile, info: ImageInfo, orientation: int, target: tuple[int, int]
) -> None:
    if isinstance(image, JpegImagePlugin.JpegImageFile):
        # libjpeg can decode at 1/2, 1/4 or 1/8 scale, far faster than decoding
        # it all; ask for no less than the resize below needs.
        scale = max(target[0] / info.width, target[1] / info.height)
        needed = (math.ceil(info.width * scale), math.ceil(info.height * scale))
        if orientation in _SWAPS_AXES:
            needed = (needed[1], needed[0])
        image.draft(image.mode, needed)
    image.load()


def _still_from_loaded(
    image: Image.Image, orientation: int, target: tuple[int, int], method: ThumbnailMethod
) -> Image.Image:
    frame = _resized(_normalised(image), target, method, orientation)
    frame = _to_srgb(image.info.get("icc_profile"), frame.mode)(frame)
    if frame.mode == "RGBA" and _alpha_is_opaque(frame):
        # Screenshots are often RGBA with every pixel opaque: a JPEG is smaller.
        frame = frame.convert("RGB")
    return frame


def _animation(
    image: ImageFile.ImageFile,
    info: ImageInfo,
    orientation: int,
    target: tuple[int, int],
    method: ThumbnailMethod,
) -> tuple[list[Image.Image], list[int], int]:
    """Every frame of an animated image at ``target``, upright, with each frame's
    duration (ms) and the loop count (0: for ever, as WebP counts).

    Frames come composited as shown (Pillow applies GIF disposal and APNG
    blending); a frame with no duration gets :data:`_DEFAULT_FRAME_MS`, as browsers
    do.  If a frame cannot be decoded (a truncated file), the frames before it are
    kept: that is what a browser would have played.
    """
    # No loop setting (a GIF without the NETSCAPE extension) means play once.
    loop_setting = image.info.get("loop")
    loop = 1 if loop_setting is None else int(loop_setting)
    frames: list[Image.Image] = []
    durations: list[int] = []
    convert = _to_srgb(image.info.get("icc_profile"), "RGBA")
    for index in range(info.frames):
        try:
            image.seek(index)
            image.load()
        except _DECODE_ERRORS:
            break
        duration = image.info.get("duration")
        durations.append(
            int(duration)
            if isinstance(duration, int | float) and duration > 0
            else _DEFAULT_FRAME_MS
        )
        frames.append(convert(_resized(image.convert("RGBA"), target, method, orientation)))
    return frames, durations, loop


def _normalised(image: Image.Image) -> Image.Image:
    """The image in a mode that resizes well and that JPEG or PNG can hold:
    RGBA if it has transparency, L if grey, CMYK (converted with its profile
    later), else RGB."""
    if image.mode == "RGBA":
        return image
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return image.convert("RGBA")
    if image.mode in ("RGB", "L", "CMYK"):
        return image
    if image.mode == "I" or image.mode.startswith("I;16"):
        # 16-bit grey (PNG, TIFF): converting clips everything above 255 to white.
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode in ("1", "F"):
        return image.convert("L")
    return image.convert("RGB")


def _resized(
    image: Image.Image, target: tuple[int, int], method: ThumbnailMethod, orientation: int
) -> Image.Image:
    """``image`` (as stored) at ``target`` (as displayed), upright; for crop, of
    its centre.  Resizing before turning it upright turns fewer pixels."""
    out_width, out_height = target
    if orientation in _SWAPS_AXES:
        out_width, out_height = out_height, out_width
    src_width, src_height = image.size
    box_width, box_height = float(src_width), float(src_height)
    if method == "crop":
        # The largest centred region with the thumbnail's aspect ratio.
        box_width = min(src_width, src_height * out_width / out_height)
        box_height = min(src_height, src_width * out_height / out_width)
    left = (src_width - box_width) / 2
    top = (src_height - box_height) / 2
    resized = image.resize(
        (out_width, out_height),
        Image.Resampling.LANCZOS,
        box=(left, top, left + box_width, top + box_height),
        reducing_gap=_REDUCING_GAP,
    )
    transpose = _UPRIGHT.get(orientation)
    return resized if transpose is None else resized.transpose(transpose)


def _to_srgb(icc_profile: object, mode: str) -> Callable[[Image.Image], Image.Image]:
    """A conversion of ``mode`` frames to sRGB (RGB, RGBA or L) by their embedded
    colour profile.  Thumbnails carry no profile, and clients show untagged images
    as sRGB: a wide-gamut photo (a phone's Display P3) or a CMYK one would come
    out in the wrong colours if its values were kept as they are."""

    def plain(frame: Image.Image) -> Image.Image:
        return frame if frame.mode in ("RGB", "RGBA", "L") else frame.convert("RGB")

    if not isinstance(icc_profile, bytes) or not icc_profile or mode not in ("RGB", "RGBA", "CMYK"):
        return plain
    output_mode = "RGBA" if mode == "RGBA" else "RGB"
    try:
        transform = ImageCms.buildTransform(
            ImageCms.ImageCmsProfile(io.BytesIO(icc_profile)),
            ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")),
            mode,
            output_mode,
        )
    except (ImageCms.PyCMSError, *_DECODE_ERRORS):
        # A profile littleCMS cannot use, or one for another colour space.
        return plain

    def convert(frame: Image.Image) -> Image.Image:
        try:
            converted = ImageCms.applyTransform(frame, transform)
        except (ImageCms.PyCMSError, *_DECODE_ERRORS):
            converted = None
        return plain(frame) if converted is None else converted

    return convert


def _alpha_is_opaque(image: Image.Image) -> bool:
    return image.getchannel("A").getextrema()[0] == 255
