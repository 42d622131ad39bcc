"""Decoding untrusted image bytes into RGB pixels, safely.

Every service that accepts an image goes through :func:`decode_image`: format allow-list (JPEG, PNG, WebP), a
pixel limit checked from the header before any pixel is decoded (decompression bombs), EXIF orientation applied,
and every failure mapped to an error of :mod:`services.common.errors`.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from services.common.errors import BadRequest, ImageTooLarge, InvalidImage, UnsupportedMediaType

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
"""PIL format names we accept."""

DEFAULT_MAX_PIXELS = 40_000_000
"""Default decoded-pixel limit: a 40-megapixel photo is the largest a phone sends."""

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(;[\w-]+=[\w.-]+)*;base64,", re.IGNORECASE)


def decode_base64(text: str, *, field: str = "image") -> bytes:
    """Decode base64 text, with or without a ``data:image/...;base64,`` prefix.

    Raises:
        BadRequest: the text is not valid base64.
        InvalidImage: it decodes to nothing.
    """
    body = _DATA_URL.sub("", text.strip(), count=1)
    body = "".join(body.split())
    try:
        data = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"'{field}' is not valid base64", details={"field": field}) from exc
    if not data:
        raise InvalidImage(f"'{field}' is empty", details={"field": field})
    return data


def encode_base64(data: bytes) -> str:
    """Plain base64 text of ``data``."""
    return base64.b64encode(data).decode("ascii")


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int | None = None) -> Image.Image:
    """Decode image bytes into an upright RGB PIL image.

    Args:
        data: the raw file bytes.
        max_pixels: the largest width × height accepted, checked before decoding.
        max_side: the longest side the caller will use, when it downscales anyway: a larger JPEG is decoded at the
            smallest of libjpeg's scales (1/2, 1/4, 1/8) that keeps its longest side at least this long, which
            skips most of the decoding (a 12-megapixel phone photo for a 1024-px query: decode, downscale and
            re-encode 100 -> 36 ms). The image returned can be larger than ``max_side``; other formats decode whole.

    Raises:
        InvalidImage: empty, truncated, corrupt or non-image bytes.
        UnsupportedMediaType: an image in a format other than JPEG, PNG or WebP.
        ImageTooLarge: more pixels than ``max_pixels``.
    """
    if not data:
        raise InvalidImage("the image is empty")
    try:
        image = _open(data)
    except UnidentifiedImageError as exc:
        raise InvalidImage("the bytes are not a readable image") from exc
    except Exception as exc:  # PIL raises many types for hostile headers
        raise InvalidImage(f"the image header is unreadable: {exc}") from exc
    fmt = image.format or "unknown"
    if fmt not in ALLOWED_FORMATS:
        raise UnsupportedMediaType(
            f"image format {fmt} is not supported; send JPEG, PNG or WebP",
            details={"format": fmt, "allowed": sorted(ALLOWED_FORMATS)},
        )
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InvalidImage("the image has no pixels")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image has {width}x{height} pixels, more than the limit of {max_pixels}",
            details={"width": width, "height": height, "max_pixels": max_pixels},
        )
    if max_side is not None and fmt == "JPEG" and max(width, height) > max_side:
        scale = max_side / max(width, height)
        image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
            upright = ImageOps.exif_transpose(image)
            rgb = upright.convert("RGB")
    except Exception as exc:  # truncated or corrupt pixel data
        raise InvalidImage(f"the image data is corrupt or truncated: {exc}") from exc
    return rgb


def _open(data: bytes) -> Image.Image:
    """Parse the image's header (no pixels yet), with :func:`decode_image`'s explicit limit instead of PIL's.

    PIL checks sizes against its process-wide ``Image.MAX_IMAGE_PIXELS``: above it, a warning (silenced here);
    above twice it, ``DecompressionBombError`` before the size can be read. Rather than change that global for
    every PIL user in the process, a header PIL refuses is parsed again by its format's plugin directly, so that
    the caller's ``max_pixels`` decides (and reports the size).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            return _open_past_pil_limit(data)


def _open_past_pil_limit(data: bytes) -> Image.Image:
    """The header as ``Image.open`` parses it (same plugins, same order), without PIL's global pixel check."""
    prefix = data[:16]
    for name in Image.ID:
        factory, accept = Image.OPEN[name]
        accepted = accept(prefix) if accept else True
        if not accepted or isinstance(accepted, str):
            continue
        try:
            return factory(io.BytesIO(data), "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue
    raise UnidentifiedImageError("no image plugin reads this header")


def resize_max_side(image: Image.Image, max_side: int) -> Image.Image:
    """Downscale so that the longest side is at most ``max_side`` (never upscales)."""
    width, height = image.size
    scale = max_side / max(width, height)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def to_jpeg(image: Image.Image, *, quality: int = 92) -> bytes:
    """Encode an RGB image as JPEG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def to_array(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB array of ``image``."""
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def sniff_media_type(data: bytes) -> str:
    """The media type of image bytes from their magic number, or ``application/octet-stream``."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"
