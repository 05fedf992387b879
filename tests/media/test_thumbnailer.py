"""The thumbnailer: probing images from their headers, making thumbnails (upright,
never upscaled, stripped, animated when asked), refusing bombs and non-images,
and choosing the stored thumbnail that answers a request.

Every test image is drawn here with Pillow; no binary fixtures.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import AvifImagePlugin, ExifTags, Image, ImageCms

from homeserver.config.media import DEFAULT_THUMBNAIL_SIZES, ThumbnailMethod, ThumbnailSize
from homeserver.media.thumbnailer import (
    ImageInfo,
    ImageTooLarge,
    NotAnImage,
    Thumbnail,
    decode_for_sizes,
    make_thumbnail,
    preset_sizes_for,
    probe_image,
    select_thumbnail,
    thumbnail_dimensions,
    thumbnail_from,
)

MAX_PIXELS = 32 * 1024 * 1024
RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)

Colour = tuple[int, ...]


def saved(image: Image.Image, path: Path, format: str, **options: object) -> Path:
    image.save(path, format=format, **options)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_claiming(path: Path, width: int, height: int, idat: bytes = b"") -> Path:
    """A PNG whose header claims ``width`` x ``height`` (8-bit RGB) whatever the
    pixel data that follows: nothing, unless ``idat`` is given."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = png_chunk(b"IHDR", ihdr)
    if idat:
        body += png_chunk(b"IDAT", idat)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + png_chunk(b"IEND", b""))
    return path


def animated_gif(
    path: Path,
    colours: Sequence[Colour] = (RED, GREEN, BLUE),
    durations: Sequence[int] = (50, 100, 150),
    size: tuple[int, int] = (120, 80),
    loop: int | None = 0,
) -> Path:
    frames = [Image.new("RGB", size, colour) for colour in colours]
    options: dict[str, object] = {"duration": list(durations)}
    if loop is not None:
        options["loop"] = loop
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], **options)
    return path


def exif_oriented_jpeg(path: Path, orientation: int) -> Path:
    """400x300 as stored: white, with a red 100x100 block in the top-left corner."""
    image = Image.new("RGB", (400, 300), WHITE)
    image.paste(RED, (0, 0, 100, 100))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "Test Camera"
    return saved(image, path, "JPEG", exif=exif, quality=95)


def close(actual: object, expected: Colour, tolerance: int = 24) -> bool:
    assert isinstance(actual, tuple)
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False))


def thumb(
    source: Path,
    tmp_path: Path,
    *,
    width: int = 96,
    height: int = 96,
    method: ThumbnailMethod = "scale",
    animated: bool = False,
    max_pixels: int = MAX_PIXELS,
) -> tuple[Thumbnail, Path]:
    destination = tmp_path / "thumbnail"
    made = make_thumbnail(
        source,
        destination,
        width=width,
        height=height,
        method=method,
        animated=animated,
        max_pixels=max_pixels,
    )
    return made, destination


def reopened(path: Path) -> Image.Image:
    """The file, checked whole by Pillow, then opened again to look at."""
    with Image.open(path) as checked:
        checked.verify()
    return Image.open(path)


# probe_image


@pytest.mark.parametrize(
    ("format", "mimetype"),
    [
        ("PNG", "image/png"),
        ("JPEG", "image/jpeg"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
        pytest.param(
            "AVIF",
            "image/avif",
            marks=pytest.mark.skipif(not AvifImagePlugin.SUPPORTED, reason="no libavif"),
        ),
    ],
)
def test_probe_reports_size_and_real_type_of_a_still_image(
    tmp_path: Path, format: str, mimetype: str
) -> None:
    # No extension: the type comes from the bytes, not the name.
    path = saved(Image.new("RGB", (64, 48), RED), tmp_path / "upload", format)
    assert probe_image(path, max_pixels=MAX_PIXELS) == ImageInfo(64, 48, mimetype, False, 1)


def test_probe_of_exif_rotated_jpeg_reports_displayed_size(tmp_path: Path) -> None:
    path = exif_oriented_jpeg(tmp_path / "photo.jpg", orientation=6)
    info = probe_image(path, max_pixels=MAX_PIXELS)
    assert (info.width, info.height) == (300, 400)


def test_probe_reports_animated_gif_with_its_frame_count(tmp_path: Path) -> None:
    path = animated_gif(tmp_path / "anim.gif")
    assert probe_image(path, max_pixels=MAX_PIXELS) == ImageInfo(120, 80, "image/gif", True, 3)


def test_probe_reports_apng_as_animated_png(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (40, 30), colour) for colour in (RED, GREEN)]
    path = tmp_path / "anim.png"
    frames[0].save(path, format="PNG", save_all=True, append_images=frames[1:], duration=100)
    assert probe_image(path, max_pixels=MAX_PIXELS) == ImageInfo(40, 30, "image/png", True, 2)


def test_probe_reports_multi_picture_jpeg_as_a_still_jpeg(tmp_path: Path) -> None:
    # Cameras write MPO (a JPEG with a second image appended): not an animation.
    path = tmp_path / "camera.jpg"
    first, second = Image.new("RGB", (40, 30), RED), Image.new("RGB", (40, 30), BLUE)
    first.save(path, format="MPO", save_all=True, append_images=[second])
    with Image.open(path) as opened:
        assert opened.format == "MPO"
    assert probe_image(path, max_pixels=MAX_PIXELS) == ImageInfo(40, 30, "image/jpeg", False, 1)
    made, thumbnail = thumb(path, tmp_path, width=20, height=20, animated=True)
    assert (made.mimetype, made.animated) == ("image/jpeg", False)
    with reopened(thumbnail) as image:
        assert close(image.convert("RGB").getpixel((10, 7)), RED)


def test_probe_reads_only_the_header(tmp_path: Path) -> None:
    # Pixel data that cannot be inflated: the probe never looks at it, decoding does.
    path = png_claiming(tmp_path / "broken.png", 64, 64, idat=b"not zlib at all")
    assert probe_image(path, max_pixels=MAX_PIXELS) == ImageInfo(64, 64, "image/png", False, 1)
    with pytest.raises(NotAnImage):
        thumb(path, tmp_path)


def test_long_animation_is_not_refused_by_probe(tmp_path: Path) -> None:
    # Each frame fits the budget, all of them do not: a still thumbnail is possible.
    path = animated_gif(tmp_path / "anim.gif", size=(64, 64))
    info = probe_image(path, max_pixels=64 * 64 * 2)
    assert (info.animated, info.frames) == (True, 3)


# Refusals


def test_image_bomb_is_refused_without_decoding(tmp_path: Path) -> None:
    # 10^10 pixels claimed, no pixel data: only the header can be read.
    path = png_claiming(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(ImageTooLarge):
        probe_image(path, max_pixels=MAX_PIXELS)
    with pytest.raises(ImageTooLarge):
        thumb(path, tmp_path)
    assert not (tmp_path / "thumbnail").exists()


def test_image_over_max_pixels_is_refused(tmp_path: Path) -> None:
    # Within Pillow's own limit; over ours.
    claimed = png_claiming(tmp_path / "claimed.png", 5_000, 5_000)
    with pytest.raises(ImageTooLarge):
        probe_image(claimed, max_pixels=1_000_000)
    with pytest.raises(ImageTooLarge):
        thumb(claimed, tmp_path, max_pixels=1_000_000)
    real = saved(Image.new("RGB", (100, 100), RED), tmp_path / "real.png", "PNG")
    with pytest.raises(ImageTooLarge):
        thumb(real, tmp_path, max_pixels=100 * 100 - 1)
    assert probe_image(real, max_pixels=100 * 100).width == 100


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", id="pdf"),
        pytest.param(os.urandom(4096), id="random"),
        pytest.param(b"<!DOCTYPE html><html><body><img src=x></body></html>", id="html"),
        pytest.param(
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>', id="svg"
        ),
        # Pillow reads PostScript by running Ghostscript: never offered to it.
        pytest.param(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", id="eps"),
        pytest.param(b"", id="empty"),
    ],
)
def test_non_images_are_not_images(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "upload"
    path.write_bytes(content)
    with pytest.raises(NotAnImage):
        probe_image(path, max_pixels=MAX_PIXELS)
    with pytest.raises(NotAnImage):
        thumb(path, tmp_path)


@pytest.mark.parametrize("format", ["ICO", "PPM", "TGA", "PCX"])
def test_image_formats_outside_the_allowed_set_are_not_images(tmp_path: Path, format: str) -> None:
    path = saved(Image.new("RGB", (16, 16), RED), tmp_path / "upload", format)
    with pytest.raises(NotAnImage):
        probe_image(path, max_pixels=MAX_PIXELS)


def test_truncated_jpeg_is_not_an_image(tmp_path: Path) -> None:
    whole = saved(Image.effect_noise((300, 300), 50), tmp_path / "whole.jpg", "JPEG").read_bytes()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(NotAnImage):
        thumb(path, tmp_path)


def test_missing_source_is_an_os_error_not_a_verdict_on_the_image(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        thumb(tmp_path / "absent", tmp_path)
    with pytest.raises(FileNotFoundError):
        probe_image(tmp_path / "absent", max_pixels=MAX_PIXELS)


@pytest.mark.parametrize(
    ("width", "height", "method"), [(0, 10, "scale"), (10, -1, "crop"), (10, 10, "stretch")]
)
def test_impossible_request_is_a_value_error(
    tmp_path: Path, width: int, height: int, method: str
) -> None:
    path = saved(Image.new("RGB", (16, 16), RED), tmp_path / "a.png", "PNG")
    with pytest.raises(ValueError):
        thumb(path, tmp_path, width=width, height=height, method=method)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        thumbnail_dimensions(16, 16, width, height, method)  # type: ignore[arg-type]


# thumbnail_dimensions


@pytest.mark.parametrize(
    ("source", "box", "expected"),
    [
        ((4000, 3000), (320, 240), (320, 240)),
        ((3000, 4000), (320, 240), (180, 240)),
        ((4000, 1000), (320, 240), (320, 80)),
        ((1000, 10), (32, 32), (32, 1)),
        ((100, 50), (320, 240), (100, 50)),
        ((300, 50), (320, 240), (300, 50)),
        ((640, 480), (640, 480), (640, 480)),
    ],
)
def test_scale_fits_the_box_keeping_the_aspect_ratio_without_upscaling(
    source: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert thumbnail_dimensions(*source, *box, "scale") == expected


@pytest.mark.parametrize(
    ("source", "box", "expected"),
    [
        ((4000, 3000), (96, 96), (96, 96)),
        ((4000, 3000), (320, 100), (320, 100)),
        ((50, 80), (96, 96), (50, 50)),
        ((100, 40), (96, 96), (40, 40)),
        ((30, 200), (64, 32), (30, 15)),
        ((1, 1000), (96, 96), (1, 1)),
        ((1000, 1), (32, 64), (1, 1)),
    ],
)
def test_crop_is_the_box_or_the_largest_box_shaped_part_of_a_small_source(
    source: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert thumbnail_dimensions(*source, *box, "crop") == expected


@pytest.mark.parametrize("method", ["crop", "scale"])
def test_dimensions_are_never_zero_nor_larger_than_source_or_box(method: ThumbnailMethod) -> None:
    lengths = (1, 2, 3, 7, 32, 96, 240, 241, 320, 999, 4000)
    for source_width in lengths:
        for source_height in lengths:
            for width, height in ((32, 32), (96, 96), (320, 240), (1, 1), (800, 3)):
                out = thumbnail_dimensions(source_width, source_height, width, height, method)
                assert 1 <= out[0] <= min(width, source_width)
                assert 1 <= out[1] <= min(height, source_height)


# make_thumbnail: geometry


def test_exif_rotated_jpeg_thumbnail_is_upright(tmp_path: Path) -> None:
    # Orientation 6: the stored image is shown turned a quarter clockwise, so the
    # block in its top-left corner appears top-right.
    source = exif_oriented_jpeg(tmp_path / "photo.jpg", orientation=6)
    made, path = thumb(source, tmp_path, width=150, height=200, method="scale")
    assert (made.width, made.height, made.mimetype) == (150, 200, "image/jpeg")
    with reopened(path) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (150, 200)
        assert close(rgb.getpixel((140, 10)), RED)
        for corner in ((10, 10), (10, 190), (140, 190)):
            assert close(rgb.getpixel(corner), WHITE)


@pytest.mark.parametrize(
    ("orientation", "red_corner"),
    [(1, (0, 0)), (2, (1, 0)), (3, (1, 1)), (4, (0, 1)), (5, (0, 0)), (7, (1, 1)), (8, (0, 1))],
)
def test_every_exif_orientation_is_made_upright(
    tmp_path: Path, orientation: int, red_corner: tuple[int, int]
) -> None:
    source = exif_oriented_jpeg(tmp_path / "photo.jpg", orientation=orientation)
    made, path = thumb(source, tmp_path, width=1000, height=1000)
    expected_size = (300, 400) if orientation >= 5 else (400, 300)
    assert (made.width, made.height) == expected_size
    with reopened(path) as image:
        rgb = image.convert("RGB")
        x = expected_size[0] - 10 if red_corner[0] else 10
        y = expected_size[1] - 10 if red_corner[1] else 10
        assert close(rgb.getpixel((x, y)), RED)


def test_crop_gives_exactly_the_requested_size_from_the_centre(tmp_path: Path) -> None:
    image = Image.new("RGB", (600, 200), RED)
    image.paste(GREEN, (200, 0, 400, 200))
    image.paste(BLUE, (400, 0, 600, 200))
    source = saved(image, tmp_path / "stripes.png", "PNG")
    made, path = thumb(source, tmp_path, width=96, height=96, method="crop")
    assert (made.width, made.height) == (96, 96)
    with reopened(path) as thumbnail:
        rgb = thumbnail.convert("RGB")
        assert rgb.size == (96, 96)
        for point in ((2, 2), (93, 2), (48, 48), (2, 93), (93, 93)):
            assert close(rgb.getpixel(point), GREEN)


def test_scale_keeps_the_aspect_ratio(tmp_path: Path) -> None:
    source = saved(Image.effect_noise((1200, 300), 40).convert("RGB"), tmp_path / "w.png", "PNG")
    made, path = thumb(source, tmp_path, width=320, height=240, method="scale")
    assert (made.width, made.height) == (320, 80)
    with reopened(path) as image:
        assert image.size == (320, 80)


@pytest.mark.parametrize(("method", "expected"), [("scale", (50, 40)), ("crop", (40, 40))])
def test_thumbnail_is_never_upscaled(
    tmp_path: Path, method: ThumbnailMethod, expected: tuple[int, int]
) -> None:
    source = saved(Image.new("RGB", (50, 40), RED), tmp_path / "small.png", "PNG")
    made, path = thumb(source, tmp_path, width=800, height=800, method=method)
    assert (made.width, made.height) == expected
    with reopened(path) as image:
        assert image.size == expected


def test_thumbnail_is_smaller_than_its_source_and_valid(tmp_path: Path) -> None:
    photo = Image.merge("RGB", [Image.effect_noise((2000, 1500), 30)] * 3)
    source = saved(photo, tmp_path / "photo.jpg", "JPEG", quality=90)
    made, path = thumb(source, tmp_path, width=320, height=240)
    assert made.size == path.stat().st_size
    assert 0 < made.size < source.stat().st_size
    with reopened(path) as image:
        assert (image.format, image.size) == ("JPEG", (320, 240))


def test_large_jpeg_thumbnail_shows_its_content_in_place(tmp_path: Path) -> None:
    # Big enough to be decoded at reduced scale.
    image = Image.new("RGB", (4000, 3000), RED)
    image.paste(GREEN, (2000, 0, 4000, 1500))
    image.paste(BLUE, (0, 1500, 2000, 3000))
    source = saved(image, tmp_path / "quadrants.jpg", "JPEG")
    made, path = thumb(source, tmp_path, width=96, height=96, method="crop")
    assert (made.width, made.height) == (96, 96)
    with reopened(path) as thumbnail:
        rgb = thumbnail.convert("RGB")
        assert close(rgb.getpixel((5, 5)), RED)
        assert close(rgb.getpixel((90, 5)), GREEN)
        assert close(rgb.getpixel((5, 90)), BLUE)
        assert close(rgb.getpixel((90, 90)), RED)


# make_thumbnail: formats and metadata


def test_png_with_alpha_gives_png_keeping_transparency(tmp_path: Path) -> None:
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (50, 50, 150, 150))
    source = saved(image, tmp_path / "logo.png", "PNG")
    made, path = thumb(source, tmp_path, width=32, height=32, method="crop")
    assert (made.mimetype, made.width, made.height, made.animated) == ("image/png", 32, 32, False)
    with reopened(path) as thumbnail:
        assert thumbnail.format == "PNG"
        rgba = thumbnail.convert("RGBA")
        assert rgba.getpixel((0, 0)) == (0, 0, 0, 0)
        assert close(rgba.getpixel((16, 16)), (255, 0, 0, 255))


def test_palette_png_with_transparent_index_gives_png(tmp_path: Path) -> None:
    image = Image.new("P", (64, 64), 0)
    image.putpalette([0, 0, 0, 255, 0, 0])
    image.paste(1, (16, 16, 48, 48))
    source = saved(image, tmp_path / "palette.png", "PNG", transparency=0)
    made, path = thumb(source, tmp_path, width=32, height=32)
    assert made.mimetype == "image/png"
    with reopened(path) as thumbnail:
        assert close(thumbnail.convert("RGBA").getpixel((0, 0)), (0, 0, 0, 0), tolerance=0)


def test_opaque_rgba_png_gives_jpeg(tmp_path: Path) -> None:
    source = saved(Image.new("RGBA", (200, 100), (0, 0, 255, 255)), tmp_path / "s.png", "PNG")
    made, path = thumb(source, tmp_path, width=100, height=100)
    assert (made.mimetype, made.width, made.height) == ("image/jpeg", 100, 50)
    with reopened(path) as image:
        assert image.mode == "RGB"


def test_thumbnail_carries_no_metadata(tmp_path: Path) -> None:
    source = exif_oriented_jpeg(tmp_path / "photo.jpg", orientation=1)
    with Image.open(source) as original:
        assert original.getexif()[ExifTags.Base.Make] == "Test Camera"
    _, path = thumb(source, tmp_path, width=100, height=100)
    with reopened(path) as image:
        assert "exif" not in image.info
        assert "icc_profile" not in image.info
        assert len(image.getexif()) == 0


def test_png_text_and_profile_are_not_copied(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "private")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = Image.new("RGBA", (64, 64), (10, 200, 30, 128))
    source = saved(image, tmp_path / "t.png", "PNG", pnginfo=text, icc_profile=srgb)
    made, path = thumb(source, tmp_path, width=32, height=32)
    assert made.mimetype == "image/png"
    with reopened(path) as thumbnail:
        assert "Comment" not in thumbnail.info
        assert "icc_profile" not in thumbnail.info


def test_colour_profile_is_applied_not_copied(tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = saved(
        Image.new("RGB", (64, 64), (200, 120, 40)), tmp_path / "c.jpg", "JPEG", icc_profile=srgb
    )
    _, path = thumb(source, tmp_path, width=32, height=32)
    with reopened(path) as image:
        assert "icc_profile" not in image.info
        assert close(image.getpixel((16, 16)), (200, 120, 40), tolerance=8)


def test_unusable_colour_profile_is_ignored(tmp_path: Path) -> None:
    source = saved(
        Image.new("RGB", (64, 64), (200, 120, 40)),
        tmp_path / "c.jpg",
        "JPEG",
        icc_profile=b"definitely not an ICC profile",
    )
    _, path = thumb(source, tmp_path, width=32, height=32)
    with reopened(path) as image:
        assert close(image.getpixel((16, 16)), (200, 120, 40), tolerance=8)


def test_cmyk_jpeg_gives_rgb_jpeg(tmp_path: Path) -> None:
    source = saved(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), tmp_path / "p.jpg", "JPEG")
    made, path = thumb(source, tmp_path, width=32, height=32)
    assert made.mimetype == "image/jpeg"
    with reopened(path) as image:
        assert image.mode == "RGB"
        assert close(image.getpixel((16, 16)), RED, tolerance=40)


def test_sixteen_bit_grey_png_is_not_blown_out(tmp_path: Path) -> None:
    source = saved(Image.new("I;16", (64, 64), 32768), tmp_path / "g.png", "PNG")
    made, path = thumb(source, tmp_path, width=32, height=32)
    assert made.mimetype == "image/jpeg"
    with reopened(path) as image:
        grey = image.convert("L").getpixel((16, 16))
        assert isinstance(grey, int) and abs(grey - 128) <= 4


# make_thumbnail: animation


def webp_frames(path: Path) -> tuple[list[Image.Image], list[int], int]:
    frames, durations = [], []
    with reopened(path) as image:
        assert image.format == "WEBP"
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            image.load()  # the duration is known once the frame is read
            durations.append(image.info["duration"])
            frames.append(image.convert("RGB"))
        return frames, durations, image.info["loop"]


def test_animated_gif_gives_animated_webp_keeping_durations_and_loop(tmp_path: Path) -> None:
    source = animated_gif(tmp_path / "anim.gif")
    made, path = thumb(source, tmp_path, width=60, height=60, animated=True)
    assert made == Thumbnail(60, 40, "image/webp", path.stat().st_size, True)
    frames, durations, loop = webp_frames(path)
    assert durations == [50, 100, 150]
    assert loop == 0
    assert [frame.size for frame in frames] == [(60, 40)] * 3
    for frame, colour in zip(frames, (RED, GREEN, BLUE), strict=True):
        assert close(frame.getpixel((30, 20)), colour)


def test_animated_gif_cropped_gives_frames_of_the_requested_size(tmp_path: Path) -> None:
    source = animated_gif(tmp_path / "anim.gif")
    made, path = thumb(source, tmp_path, width=32, height=32, method="crop", animated=True)
    assert (made.width, made.height, made.animated) == (32, 32, True)
    frames, _, _ = webp_frames(path)
    assert [frame.size for frame in frames] == [(32, 32)] * 3


def test_gif_without_loop_extension_plays_once_as_webp(tmp_path: Path) -> None:
    source = animated_gif(tmp_path / "once.gif", loop=None)
    _, path = thumb(source, tmp_path, animated=True)
    _, _, loop = webp_frames(path)
    assert loop == 1


def test_animated_gif_gives_still_of_first_frame_when_animation_not_asked(
    tmp_path: Path,
) -> None:
    source = animated_gif(tmp_path / "anim.gif")
    made, path = thumb(source, tmp_path, width=60, height=60, animated=False)
    assert (made.mimetype, made.width, made.height, made.animated) == (
        "image/jpeg",
        60,
        40,
        False,
    )
    with reopened(path) as image:
        assert getattr(image, "n_frames", 1) == 1
        assert close(image.convert("RGB").getpixel((30, 20)), RED)


def test_animation_too_large_to_decode_whole_gives_still(tmp_path: Path) -> None:
    source = animated_gif(tmp_path / "anim.gif", size=(64, 64))
    made, path = thumb(source, tmp_path, width=32, height=32, animated=True, max_pixels=64 * 64 * 2)
    assert (made.mimetype, made.animated) == ("image/jpeg", False)
    with reopened(path) as image:
        assert close(image.convert("RGB").getpixel((16, 16)), RED)


def test_apng_gives_animated_webp(tmp_path: Path) -> None:
    frames = [Image.new("RGBA", (80, 80), (*colour, 255)) for colour in (RED, GREEN)]
    source = tmp_path / "anim.png"
    frames[0].save(
        source, format="PNG", save_all=True, append_images=frames[1:], duration=[200, 300], loop=2
    )
    made, path = thumb(source, tmp_path, width=40, height=40, animated=True)
    assert (made.mimetype, made.width, made.height, made.animated) == ("image/webp", 40, 40, True)
    decoded, durations, loop = webp_frames(path)
    assert (len(decoded), durations, loop) == (2, [200, 300], 2)


def test_animated_webp_gives_animated_webp(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (80, 80), colour) for colour in (RED, GREEN, BLUE)]
    source = tmp_path / "anim.webp"
    frames[0].save(
        source, format="WEBP", save_all=True, append_images=frames[1:], duration=70, loop=0
    )
    made, path = thumb(source, tmp_path, width=40, height=40, animated=True)
    assert made.animated
    decoded, durations, _ = webp_frames(path)
    assert (len(decoded), durations) == (3, [70, 70, 70])


def test_still_image_asked_for_animation_gives_still(tmp_path: Path) -> None:
    source = saved(Image.new("RGB", (100, 100), BLUE), tmp_path / "s.jpg", "JPEG")
    made, _ = thumb(source, tmp_path, width=50, height=50, animated=True)
    assert (made.mimetype, made.animated) == ("image/jpeg", False)


# select_thumbnail

Sized = tuple[int, int, str]


def select(
    candidates: Sequence[Sized], width: int, height: int, method: ThumbnailMethod
) -> Sized | None:
    return select_thumbnail(candidates, width, height, method, lambda size: size)


DEFAULT_OUTPUTS: list[Sized] = [
    (32, 32, "crop"),
    (96, 96, "crop"),
    (320, 240, "scale"),
    (640, 480, "scale"),
    (800, 600, "scale"),
]


def test_select_picks_exact_match() -> None:
    assert select(DEFAULT_OUTPUTS, 96, 96, "crop") == (96, 96, "crop")
    assert select(DEFAULT_OUTPUTS, 640, 480, "scale") == (640, 480, "scale")


def test_select_picks_the_smallest_at_least_as_large_as_requested() -> None:
    assert select(DEFAULT_OUTPUTS, 100, 100, "scale") == (320, 240, "scale")
    assert select(DEFAULT_OUTPUTS, 330, 100, "scale") == (640, 480, "scale")
    assert select(DEFAULT_OUTPUTS, 20, 20, "crop") == (32, 32, "crop")


def test_select_prefers_the_requested_method_among_large_enough() -> None:
    candidates: list[Sized] = [(60, 50, "scale"), (96, 96, "crop"), (50, 60, "scale")]
    assert select(candidates, 40, 40, "crop") == (96, 96, "crop")
    assert select(candidates, 40, 40, "scale") == (60, 50, "scale")


def test_select_never_answers_with_smaller_than_requested_to_match_the_method() -> None:
    # The spec's MUST NOT (smaller than asked) outranks the aspect ratio.
    assert select(DEFAULT_OUTPUTS, 100, 100, "crop") == (320, 240, "scale")


def test_select_falls_back_to_the_largest_when_none_is_large_enough() -> None:
    assert select(DEFAULT_OUTPUTS, 1000, 1000, "crop") == (800, 600, "scale")
    assert select([(50, 50, "scale"), (50, 50, "crop")], 96, 96, "crop") == (50, 50, "crop")


def test_select_of_no_candidates_is_none() -> None:
    assert select([], 32, 32, "crop") is None


def test_select_works_on_any_candidate_type() -> None:
    sizes = list(DEFAULT_THUMBNAIL_SIZES)
    chosen = select_thumbnail(
        sizes, 300, 200, "scale", lambda size: (size.width, size.height, size.method)
    )
    assert chosen == ThumbnailSize(320, 240, "scale")


# preset_sizes_for


def info(width: int, height: int) -> ImageInfo:
    return ImageInfo(width, height, "image/jpeg", False)


def test_large_image_gets_every_preset() -> None:
    assert preset_sizes_for(info(4000, 3000), DEFAULT_THUMBNAIL_SIZES) == list(
        DEFAULT_THUMBNAIL_SIZES
    )


def test_presets_the_image_fits_in_are_made_once_at_its_own_size() -> None:
    assert preset_sizes_for(info(400, 300), DEFAULT_THUMBNAIL_SIZES) == [
        ThumbnailSize(32, 32, "crop"),
        ThumbnailSize(96, 96, "crop"),
        ThumbnailSize(320, 240, "scale"),
        ThumbnailSize(640, 480, "scale"),  # the whole image, 400x300
    ]


def test_small_image_keeps_shrunk_crops_and_one_whole_copy() -> None:
    # 96x96 crop of 50x40 is 40x40 (a real crop); scale presets all give 50x40.
    assert preset_sizes_for(info(50, 40), DEFAULT_THUMBNAIL_SIZES) == [
        ThumbnailSize(32, 32, "crop"),
        ThumbnailSize(96, 96, "crop"),
        ThumbnailSize(320, 240, "scale"),
    ]


def test_tiny_image_gets_a_single_preset() -> None:
    # Every preset of a 20x20 image is the whole image.
    assert preset_sizes_for(info(20, 20), DEFAULT_THUMBNAIL_SIZES) == [
        ThumbnailSize(32, 32, "crop")
    ]


def test_presets_keep_their_configured_order() -> None:
    sizes = [ThumbnailSize(800, 600, "scale"), ThumbnailSize(32, 32, "crop")]
    assert preset_sizes_for(info(4000, 3000), sizes) == sizes


def test_probe_reads_exif_without_decoding_png(tmp_path: Path) -> None:
    # An eXIf chunk before the pixel data counts, like in a JPEG.
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 8
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), RED).save(buffer, format="PNG", exif=exif)
    path = tmp_path / "rotated.png"
    path.write_bytes(buffer.getvalue())
    assert probe_image(path, max_pixels=MAX_PIXELS) == ImageInfo(20, 40, "image/png", False, 1)
    made, _ = thumb(path, tmp_path, width=1000, height=1000)
    assert (made.width, made.height) == (20, 40)


def test_presets_from_one_decode_match_thumbnails_made_one_by_one(tmp_path: Path) -> None:
    # EXIF-rotated, so the batch also has to turn every size upright.
    source = exif_oriented_jpeg(tmp_path / "rotated.jpg", 6)
    jobs: list[tuple[Path, int, int, ThumbnailMethod]] = [
        (
            tmp_path / f"preset-{size.width}x{size.height}-{size.method}",
            size.width,
            size.height,
            size.method,
        )
        for size in DEFAULT_THUMBNAIL_SIZES
    ]
    decoded = decode_for_sizes(source, [job[1:] for job in jobs], max_pixels=10**8)
    for destination, width, height, method in jobs:
        made = thumbnail_from(decoded, destination, width=width, height=height, method=method)
        single = make_thumbnail(
            source,
            tmp_path / "single",
            width=width,
            height=height,
            method=method,
            animated=False,
            max_pixels=10**8,
        )
        assert (made.width, made.height, made.mimetype) == (
            single.width,
            single.height,
            single.mimetype,
        )
        image = reopened(destination)
        assert image.size == (made.width, made.height)
        # Upright: the red corner block lands at the top right after a 90° turn.
        assert close(image.getpixel((made.width - 1, 0)), RED)
        assert close(image.getpixel((0, made.height - 1)), WHITE)


def test_presets_from_one_decode_refuse_a_bomb_before_decoding(tmp_path: Path) -> None:
    bomb = png_claiming(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(ImageTooLarge):
        decode_for_sizes(bomb, [(32, 32, "crop")], max_pixels=10**8)
