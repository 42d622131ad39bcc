"""Parsing ``/identify`` and admin inputs from raw bodies and form fields into validated values."""

from __future__ import annotations

from typing import Any

import msgspec

from services.common import errors
from services.common.schemas import IdentifyOptions, IdentifyRequest, ObjectMetadata

_BOOL = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
CATALOGUE_FIELDS = ("title", "artist", "date", "room", "description", "link")


def parse_identify_json(body: bytes) -> IdentifyRequest:
    """Decode a JSON ``/identify`` body.

    Raises:
        BadRequest: not JSON. InvalidFields: wrong shape, unknown fields, out-of-range options.
    """
    if not body:
        raise errors.BadRequest("the request body is empty; send JSON with an 'image' field or a multipart form")
    try:
        return msgspec.json.decode(body, type=IdentifyRequest)
    except msgspec.ValidationError as exc:
        raise errors.InvalidFields(f"invalid request: {exc}", details={"errors": [str(exc)]}) from exc
    except msgspec.DecodeError as exc:
        raise errors.BadRequest(f"the body is not valid JSON: {exc}") from exc


def parse_options_form(form: dict[str, Any]) -> IdentifyOptions:
    """Options from multipart form fields (strings), validated like the JSON ones."""
    raw: dict[str, Any] = {}
    for key in ("k", "threshold", "geometric_verification", "include_alternatives"):
        value = form.get(key)
        if value is None or value == "":
            continue
        text = str(value).strip().lower()
        if key in ("geometric_verification", "include_alternatives"):
            if text not in _BOOL:
                raise errors.InvalidFields(f"'{key}' must be true or false", details={"field": key})
            raw[key] = _BOOL[text]
        else:
            try:
                raw[key] = int(text) if key == "k" else float(text)
            except ValueError as exc:
                raise errors.InvalidFields(f"'{key}' must be a number", details={"field": key}) from exc
    try:
        return msgspec.convert(raw, IdentifyOptions)
    except msgspec.ValidationError as exc:
        raise errors.InvalidFields(f"invalid options: {exc}", details={"errors": [str(exc)]}) from exc


def metadata_from_form(form: dict[str, Any], object_id: str) -> ObjectMetadata:
    """Catalogue metadata from admin form fields; fields beyond the known ones go to ``extra``."""
    values = {k: str(form.get(k) or "").strip() for k in CATALOGUE_FIELDS}
    extra = {
        str(k): str(v).strip()
        for k, v in form.items()
        if k not in (*CATALOGUE_FIELDS, "image", "object_id") and isinstance(v, str)
    }
    for key, value in {**values, **extra}.items():
        if len(value) > 2000:
            raise errors.InvalidFields(f"'{key}' is longer than 2000 characters", details={"field": key})
    try:
        return msgspec.convert({"object_id": object_id, "extra": extra, **values}, ObjectMetadata)
    except msgspec.ValidationError as exc:
        field = "link" if "$.link" in str(exc) else None
        message = "'link' must be an absolute http:// or https:// URL" if field else str(exc)
        raise errors.InvalidFields(message, details={"field": field} if field else {}) from exc
