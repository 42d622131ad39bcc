"""Decoding untrusted image bytes: format allow-list, pixel limit, EXIF orientation, base64 input."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from services.common.errors import BadRequest, ImageTooLarge, InvalidImage, ServiceError, UnsupportedMediaType
from services.common.images import (
    decode_base64,
    decode_image,
    encode_base64,
    resize_max_side,
    sniff_media_type,
    to_array,
    to_jpeg,
)
from tests.services.fakes import encode, textured


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    return textured(3, (64, 48))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepts_jpeg_png_and_webp_as_upright_rgb(picture, fmt):
    decoded = decode_image(encode(picture, fmt))

    assert decoded.mode == "RGB"
    assert decoded.size == picture.size


def test_lossless_png_decodes_to_the_same_pixels(picture):
    assert np.array_equal(to_array(decode_image(encode(picture, "PNG"))), to_array(picture))


def test_grey_and_alpha_images_are_converted_to_rgb(picture):
    for mode in ("L", "RGBA", "P"):
        assert decode_image(encode(picture.convert(mode), "PNG")).mode == "RGB"


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_rejects_real_images_in_other_formats_as_unsupported(picture, fmt):
    with pytest.raises(UnsupportedMediaType) as caught:
        decode_image(encode(picture, fmt))

    assert caught.value.status == 415
    assert caught.value.details["format"] == fmt
    assert caught.value.details["allowed"] == ["JPEG", "PNG", "WEBP"]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), id="random"),
        pytest.param(b"GIF89a" + b"\x00" * 3, id="hostile-header"),
        pytest.param(b"<html>not an image</html>", id="text"),
    ],
)
def test_rejects_bytes_that_are_not_an_image_as_invalid(data):
    with pytest.raises(InvalidImage) as caught:
        decode_image(data)

    assert caught.value.status == 400


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_rejects_truncated_images_as_invalid(picture, fmt):
    data = encode(picture, fmt)

    with pytest.raises(InvalidImage, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2])


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` but which carries a few pixels only."""
    data = bytearray(encode(Image.new("RGB", (4, 4)), "PNG"))
    ihdr = 8  # after the signature: length (4), type (4), then width and height
    data[ihdr + 8 : ihdr + 16] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr + 4 : ihdr + 8 + 13]))
    data[ihdr + 8 + 13 : ihdr + 8 + 17] = struct.pack(">I", crc)
    return bytes(data)


def test_rejects_a_decompression_bomb_from_its_header_before_decoding_pixels():
    # The pixel data is missing: decoding would fail as InvalidImage, so ImageTooLarge proves the early check.
    with pytest.raises(ImageTooLarge) as caught:
        decode_image(_png_claiming(100_000, 100_000))

    assert caught.value.status == 413
    assert caught.value.details["width"] == 100_000


def test_the_callers_limit_decides_even_above_pils_own_process_wide_limit(monkeypatch):
    # PIL refuses headers beyond twice its global limit before anyone sees the size; ours must still decide.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    data = encode(textured(1, (40, 30)), "PNG")

    assert decode_image(data, max_pixels=1200).size == (40, 30)
    with pytest.raises(ImageTooLarge) as caught:
        decode_image(data, max_pixels=1199)
    assert (caught.value.details["width"], caught.value.details["height"]) == (40, 30)
    with pytest.raises(UnsupportedMediaType):  # a format we refuse is still named as such past PIL's limit
        decode_image(encode(textured(1, (40, 30)), "GIF"), max_pixels=1200)


def test_importing_the_module_leaves_pils_global_pixel_limit_alone():
    check = (
        "from PIL import Image; Image.MAX_IMAGE_PIXELS = 12345; "
        "import services.common.images; assert Image.MAX_IMAGE_PIXELS == 12345, Image.MAX_IMAGE_PIXELS"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr


def test_pixel_limit_is_inclusive():
    data = encode(Image.new("RGB", (100, 50)), "PNG")

    assert decode_image(data, max_pixels=5000).size == (100, 50)
    with pytest.raises(ImageTooLarge):
        decode_image(data, max_pixels=4999)


def test_applies_exif_orientation_so_the_image_is_upright():
    image = Image.new("RGB", (60, 40))
    image.paste((255, 0, 0), (0, 0, 30, 40))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° clockwise for display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=95)

    decoded = decode_image(buffer.getvalue())

    assert decoded.size == (40, 60)
    pixels = to_array(decoded)
    # After a clockwise turn the red left half of the stored frame is the top half.
    assert pixels[:30, :, 0].mean() > 200 and pixels[:30, :, 1].mean() < 50
    assert pixels[30:, :, 0].mean() < 50


def test_base64_round_trips_with_and_without_a_data_url_prefix(picture):
    data = encode(picture, "PNG")
    text = encode_base64(data)

    assert decode_base64(text) == data
    assert decode_base64(f"data:image/png;base64,{text}") == data
    assert decode_base64(f"DATA:image/jpeg;charset=utf-8;base64,{text}") == data
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert decode_base64(f"  {wrapped}\n") == data


@pytest.mark.parametrize("text", ["not base64!", "abc", "data:image/png;base64,@@@@"])
def test_invalid_base64_is_a_bad_request_naming_the_field(text):
    with pytest.raises(BadRequest) as caught:
        decode_base64(text, field="images[2]")

    assert caught.value.status == 400
    assert caught.value.details == {"field": "images[2]"}


def test_base64_of_nothing_is_a_client_error():
    for text in ("", "data:image/png;base64,"):
        with pytest.raises(ServiceError) as caught:
            decode_base64(text)
        assert caught.value.status == 400


def test_sniffs_media_type_from_magic_numbers(picture):
    assert sniff_media_type(encode(picture, "JPEG")) == "image/jpeg"
    assert sniff_media_type(encode(picture, "PNG")) == "image/png"
    assert sniff_media_type(encode(picture, "WEBP")) == "image/webp"
    assert sniff_media_type(encode(picture, "GIF")) == "application/octet-stream"


def _big_jpeg(size: tuple[int, int], exif: Image.Exif | None = None) -> bytes:
    buffer = io.BytesIO()
    textured(5, size).save(buffer, format="JPEG", quality=95, **({"exif": exif} if exif is not None else {}))
    return buffer.getvalue()


def test_a_large_jpeg_is_decoded_at_the_smallest_scale_still_covering_max_side():
    data = _big_jpeg((1700, 1200))

    whole = decode_image(data)
    reduced = decode_image(data, max_side=400)

    assert whole.size == (1700, 1200)
    assert reduced.size == (425, 300)  # 1/4: the longest side stays >= 400; 1/8 (213) would not
    assert decode_image(data, max_side=900).size == (1700, 1200)  # 1/2 (850) would be too small
    assert decode_image(data, max_side=2000).size == (1700, 1200)
    # the same picture, downscaled: what the caller gets after its own resize differs from decoding it whole by
    # less than the JPEG itself differs from the original
    ours = to_array(resize_max_side(reduced, 400)).astype(np.int16)
    full = to_array(resize_max_side(whole, 400)).astype(np.int16)
    assert np.abs(ours - full).mean() < 4.0


def test_max_side_keeps_exif_orientation_and_leaves_other_formats_whole(picture):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° clockwise for display
    data = _big_jpeg((1600, 800), exif)

    assert decode_image(data, max_side=200).size == (100, 200)  # 1/8 of the stored frame, then turned upright
    big_png = encode(picture.resize((640, 480)), "PNG")
    assert decode_image(big_png, max_side=100).size == (640, 480)


def test_resize_max_side_downscales_keeping_aspect_and_never_upscales(picture):
    assert resize_max_side(picture, 32).size == (32, 24)
    assert resize_max_side(picture, 1000) is picture
    assert resize_max_side(Image.new("RGB", (1000, 3)), 10).size == (10, 1)


def test_to_jpeg_writes_a_decodable_jpeg(picture):
    data = to_jpeg(picture)

    assert sniff_media_type(data) == "image/jpeg"
    assert decode_image(data).size == picture.size
