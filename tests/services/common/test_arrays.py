"""Arrays on the wire: base64 of little-endian bytes, shape checked on arrival."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from services.common.arrays import decode_array, encode_array
from services.common.errors import InvalidFields


def test_round_trips_float32_and_uint8_arrays_exactly():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(7, 2)).astype(np.float32)
    descriptors = rng.integers(0, 256, size=(7, 32), dtype=np.uint8)

    assert np.array_equal(decode_array(encode_array(points), np.float32, 2, 7, field="kp"), points)
    assert np.array_equal(decode_array(encode_array(descriptors), np.uint8, 32, 7, field="desc"), descriptors)


def test_encodes_little_endian_whatever_the_input_byte_order():
    values = np.array([[1.5, -2.25]], dtype=">f4")

    raw = base64.b64decode(encode_array(values))

    assert raw == np.array([[1.5, -2.25]], dtype="<f4").tobytes()
    decoded = decode_array(encode_array(values), np.float32, 2, 1, field="kp")
    assert decoded.dtype == np.float32 and decoded.tolist() == [[1.5, -2.25]]


def test_decoded_array_is_writable_and_owns_its_memory():
    decoded = decode_array(encode_array(np.zeros((2, 2), np.float32)), np.float32, 2, 2, field="kp")

    decoded[0, 0] = 1.0
    assert decoded.flags.owndata


def test_empty_array_round_trips():
    decoded = decode_array(encode_array(np.zeros((0, 32), np.uint8)), np.uint8, 32, 0, field="desc")

    assert decoded.shape == (0, 32)


def test_invalid_base64_is_rejected_naming_the_field():
    with pytest.raises(InvalidFields, match=r"'query\.keypoints' is not valid base64") as caught:
        decode_array("%%%not-base64", np.float32, 2, 1, field="query.keypoints")

    assert caught.value.details == {"field": "query.keypoints"}


@pytest.mark.parametrize("rows", [2, 4])
def test_byte_count_that_does_not_fit_the_shape_is_rejected(rows):
    text = encode_array(np.zeros((3, 2), np.float32))

    with pytest.raises(InvalidFields) as caught:
        decode_array(text, np.float32, 2, rows, field="kp")

    assert caught.value.status == 422
    assert caught.value.details == {"field": "kp", "bytes": 24, "expected": rows * 8}
