"""The files every server gets: made once per run, the same bytes for a given seed.

- two random binaries (incompressible), ``small`` and ``large``;
- ``photo``: a photo-like JPEG (colour gradients, blurred shapes, coarse grain and
  fine noise; quality 90), about 3.3 MB at 4000x3000;
- ``image``: a PNG of the same kind of picture, 1024x768.

Thumbnail trials upload each image many times; every copy is made distinct (a
JPEG comment, a PNG ``tEXt`` chunk with a counter) so that no server could answer
from thumbnails of identical bytes.  The pixels stay the same.
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib

import attrs
from PIL import Image, ImageDraw, ImageFilter

MB = 1_000_000


@attrs.frozen
class BenchFile:
    key: str  # "small", "large", "photo", "image"
    label: str  # for people: "1 MB binary"
    content_type: str
    filename: str
    data: bytes
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def describe(self) -> dict[str, object]:
        """What the JSON record says about the file."""
        return {
            "label": self.label,
            "content_type": self.content_type,
            "bytes": self.size,
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
        }

    def distinct_copy(self, number: int) -> bytes:
        """The same picture in different bytes (images only)."""
        text = f"bench copy {number}".encode()
        if self.content_type == "image/jpeg":
            # A COM segment straight after SOI.
            return (
                self.data[:2]
                + b"\xff\xfe"
                + struct.pack(">H", len(text) + 2)
                + text
                + self.data[2:]
            )
        if self.content_type == "image/png":
            # A tEXt chunk straight after IHDR (8-byte signature + 25-byte IHDR chunk).
            body = b"Comment\x00" + text
            chunk = struct.pack(">I", len(body)) + b"tEXt" + body
            chunk += struct.pack(">I", zlib.crc32(b"tEXt" + body))
            return self.data[:33] + chunk + self.data[33:]
        raise ValueError(f"no distinct copies of {self.content_type}")


def _random_binary(key: str, size: int, rng: random.Random) -> BenchFile:
    label = f"{size / MB:g} MB binary"
    return BenchFile(key, label, "application/octet-stream", f"{key}.bin", rng.randbytes(size))


def _picture(width: int, height: int, rng: random.Random) -> Image.Image:
    """Smooth colour gradients, some blurred discs, coarse grain and a little noise:
    compresses about like a photo."""
    red = Image.linear_gradient("L").resize((width, height))
    green = Image.radial_gradient("L").resize((width, height))
    blue = Image.linear_gradient("L").rotate(90).resize((width, height))
    picture = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(picture)
    for _ in range(40):
        x, y = rng.randrange(width), rng.randrange(height)
        radius = rng.randrange(max(1, width // 40), max(2, width // 6))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    picture = picture.filter(ImageFilter.GaussianBlur(width / 400))
    grain_size = (max(1, width // 4), max(1, height // 4))
    grain = Image.frombytes("RGB", grain_size, rng.randbytes(grain_size[0] * grain_size[1] * 3))
    picture = Image.blend(picture, grain.resize((width, height), Image.Resampling.BICUBIC), 0.25)
    noise = Image.frombytes("L", (width, height), rng.randbytes(width * height)).convert("RGB")
    return Image.blend(picture, noise, 8 / 255)


def _encoded(picture: Image.Image, fmt: str, **options: int) -> bytes:
    out = io.BytesIO()
    picture.save(out, fmt, **options)
    return out.getvalue()


@attrs.frozen
class BenchFiles:
    small: BenchFile
    large: BenchFile
    photo: BenchFile
    image: BenchFile

    @property
    def binaries(self) -> tuple[BenchFile, BenchFile]:
        return (self.small, self.large)

    @property
    def images(self) -> tuple[BenchFile, BenchFile]:
        return (self.photo, self.image)

    def describe(self) -> dict[str, dict[str, object]]:
        return {f.key: f.describe() for f in (self.small, self.large, self.photo, self.image)}


def make_files(
    *,
    small_bytes: int,
    large_bytes: int,
    photo_size: tuple[int, int],
    image_size: tuple[int, int],
    seed: int,
) -> BenchFiles:
    rng = random.Random(seed)
    small = _random_binary("small", small_bytes, rng)
    large = _random_binary("large", large_bytes, rng)
    photo_w, photo_h = photo_size
    photo = BenchFile(
        "photo",
        f"{photo_w}x{photo_h} JPEG",
        "image/jpeg",
        "photo.jpg",
        _encoded(_picture(photo_w, photo_h, rng), "JPEG", quality=90),
        photo_w,
        photo_h,
    )
    image_w, image_h = image_size
    image = BenchFile(
        "image",
        f"{image_w}x{image_h} PNG",
        "image/png",
        "image.png",
        _encoded(_picture(image_w, image_h, rng), "PNG"),
        image_w,
        image_h,
    )
    return BenchFiles(small, large, photo, image)
