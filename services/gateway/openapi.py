"""OpenAPI documentation of the ``/identify`` body, which the handler parses itself (JSON or multipart), of its
answer's schemas, and of the catalogue's multipart bodies."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)

from services.common.schemas import K_MAX, LINK_PATTERN, OBJECT_ID_PATTERN, IdentifyRequest, IdentifyResponse
from services.gateway.inputs import CATALOGUE_FIELDS


def identify_schemas() -> dict[str, Any]:
    """JSON schemas of ``/identify``'s body (``IdentifyRequest``, ``IdentifyOptions``) and answer
    (``IdentifyResponse`` down to each candidate's ``CandidateEvidence``) for the document's components.

    msgspec writes them from the wire structs, their docstrings becoming the descriptions; they replace the ones
    Litestar derives from the handler's return type, which carry no descriptions.
    """
    _, components = msgspec.json.schema_components(
        [IdentifyRequest, IdentifyResponse], ref_template="#/components/schemas/{name}"
    )
    for schema in components.values():
        if "description" in schema:  # docstrings keep their source indentation
            schema["description"] = inspect.cleandoc(schema["description"])
    return components


_FLAG = r"^\s*(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0|[Yy][Ee][Ss]|[Nn][Oo]|[Oo][Nn]|[Oo][Ff][Ff])?\s*$"
"""Form flags are text: true/false, 1/0, yes/no or on/off, any case; empty means the default."""


def _flag() -> Schema:
    return Schema(type=OpenAPIType.STRING, pattern=_FLAG, description="true/false, 1/0, yes/no or on/off")


def _form_schema() -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["image"],
        properties={
            "image": Schema(
                type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description="The photo: JPEG, PNG or WebP"
            ),
            "k": Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=K_MAX),
            "threshold": Schema(type=OpenAPIType.NUMBER, minimum=0.0, maximum=1.0),
            "geometric_verification": _flag(),
            "include_alternatives": _flag(),
        },
    )


@dataclass
class IdentifyOperation(Operation):
    """The ``/identify`` operation with both body forms documented."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="A photo as base64 JSON (a data-URL prefix is allowed) or as a multipart file field.",
            content={
                "application/json": OpenAPIMediaType(schema=Reference("#/components/schemas/IdentifyRequest")),
                "multipart/form-data": OpenAPIMediaType(schema=_form_schema()),
            },
        )


def _catalogue_form(*, with_id: bool) -> Schema:
    text = Schema(type=OpenAPIType.STRING, max_length=2000)
    properties: dict[str, Any] = {
        "image": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description="The reference image"),
        **{field: text for field in CATALOGUE_FIELDS},
        "description": Schema(
            type=OpenAPIType.STRING, max_length=2000, description="A few sentences visitors read on the result card"
        ),
        "link": Schema(
            type=OpenAPIType.STRING,
            max_length=2000,
            pattern=LINK_PATTERN,
            description="Where visitors read more: an absolute http(s) URL (empty for none)",
        ),
    }
    if with_id:
        properties["object_id"] = Schema(type=OpenAPIType.STRING, pattern=OBJECT_ID_PATTERN)
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["image", "object_id"] if with_id else ["image"],
        properties=properties,
        additional_properties=text,
        description="Other text fields are kept as the artwork's extra catalogue fields.",
    )


@dataclass
class AddObjectOperation(Operation):
    """``POST /objects``: multipart image, object id and catalogue fields."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True, content={"multipart/form-data": OpenAPIMediaType(schema=_catalogue_form(with_id=True))}
        )


@dataclass
class ReplaceObjectOperation(Operation):
    """``PUT /objects/{object_id}``: multipart image and catalogue fields."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True, content={"multipart/form-data": OpenAPIMediaType(schema=_catalogue_form(with_id=False))}
        )
