"""Property tests of image decoding on hostile bytes: random data and mutated real files (truncations, bit flips,
spliced headers) either decode to an RGB image within the pixel limit or raise one of our client errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from services.common.errors import ServiceError
from services.common.images import decode_base64, decode_image
from tests.services.fakes import encode, textured

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
MUSEUM_PHOTO = Path(__file__).resolve().parents[3].parent / "shared/data/museum-dev/objects/mcv_bbdd_00000.jpg"


def _seeds() -> list[bytes]:
    picture = textured(4, (96, 72))
    seeds = [encode(picture, "JPEG"), encode(picture, "PNG"), encode(picture, "WEBP")]
    if MUSEUM_PHOTO.exists():
        seeds.append(MUSEUM_PHOTO.read_bytes())
    return seeds


SEEDS = _seeds()
MAGIC = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP", b"GIF89a", b"BM"]


def _check(data: bytes, max_pixels: int = 4_000_000) -> None:
    try:
        image = decode_image(data, max_pixels=max_pixels)
    except ServiceError as exc:
        assert 400 <= exc.status < 500, exc
        assert exc.to_body()["error"] == exc.code
        return
    assert isinstance(image, Image.Image) and image.mode == "RGB"
    assert image.width * image.height <= max_pixels


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] ^= 1 << draw(st.integers(0, 7))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        start = draw(st.integers(0, min(64, len(data))))
        data[start:start] = draw(st.binary(max_size=32))
    return bytes(data)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_decode_or_raise_a_client_error(data: bytes) -> None:
    _check(data)


@FUZZ
@given(st.sampled_from(MAGIC), st.binary())
def test_image_magic_followed_by_garbage_decodes_or_raises_a_client_error(magic: bytes, rest: bytes) -> None:
    _check(magic + rest)


@FUZZ
@given(mutated())
def test_mutated_real_files_decode_or_raise_a_client_error(data: bytes) -> None:
    _check(data)


@FUZZ
@given(mutated(), st.integers(1, 20_000))
def test_the_pixel_limit_holds_for_mutated_files(data: bytes, max_pixels: int) -> None:
    _check(data, max_pixels=max_pixels)


@FUZZ
@given(st.text(max_size=200))
def test_random_base64_text_decodes_or_raises_a_client_error(text: str) -> None:
    try:
        decode_base64(text)
    except ServiceError as exc:
        assert exc.code in {"bad_request", "invalid_image"}


def test_the_seeds_themselves_decode():
    assert len(SEEDS) >= 3
    for data in SEEDS:
        assert decode_image(data).mode == "RGB"


@pytest.mark.parametrize("cut", [1, 10, 100, 1000])
def test_truncated_seed_files_are_client_errors_or_partial_images(cut: int) -> None:
    for data in SEEDS:
        _check(data[:cut])
