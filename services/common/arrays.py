"""Arrays on the wire: base64 of raw little-endian bytes, shape checked on arrival."""

from __future__ import annotations

import base64
import binascii

import numpy as np

from services.common.errors import InvalidFields


def encode_array(array: np.ndarray) -> str:
    """Base64 of the array's raw little-endian bytes (C order)."""
    dtype = np.dtype(array.dtype).newbyteorder("<")
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def decode_array(text: str, dtype: np.dtype | type, columns: int, rows: int, *, field: str) -> np.ndarray:
    """Decode :func:`encode_array` output into a ``(rows, columns)`` array of ``dtype``.

    Raises:
        InvalidFields: bad base64 or a byte count that does not fit ``(rows, columns)``.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidFields(f"'{field}' is not valid base64", details={"field": field}) from exc
    item = np.dtype(dtype).newbyteorder("<")
    expected = rows * columns * item.itemsize
    if len(raw) != expected:
        raise InvalidFields(
            f"'{field}' holds {len(raw)} bytes; ({rows}, {columns}) {item.name} needs {expected}",
            details={"field": field, "bytes": len(raw), "expected": expected},
        )
    return np.frombuffer(raw, dtype=item).reshape(rows, columns).astype(np.dtype(dtype), copy=True)
