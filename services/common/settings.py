"""Typed settings shared by every service; each service subclasses with its own env prefix."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.images import DEFAULT_MAX_PIXELS
from services.common.topology import ServiceFacts


def port_field(service: ServiceFacts) -> Any:
    """The ``port`` field of a service's settings: its declared port (``services/common/topology.py``) by default."""
    return Field(default=service.port, ge=1, le=65535)


class ServiceSettings(BaseSettings):
    """Fields every service has. Subclasses set ``env_prefix`` and the ``port`` default from their service's facts
    (:mod:`services.common.topology`)."""

    model_config = SettingsConfigDict(use_attribute_docstrings=True, extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    """Interface to listen on; loopback by default so internal services are not exposed."""
    port: int = Field(ge=1, le=65535)
    """TCP port to listen on."""
    log_level: str = "INFO"
    """Python logging level name."""
    log_format: Literal["json", "text"] = "json"
    """``json``: one JSON object per line with the request id (for log collectors); ``text``: for people."""
    max_body_bytes: int = Field(default=25_000_000, ge=1024)
    """Largest request body accepted, bytes (413 above)."""
    max_image_pixels: int = Field(default=DEFAULT_MAX_PIXELS, ge=1)
    """Largest decoded image accepted, width × height pixels (413 above)."""
    threads: int = Field(default=1, ge=1, le=64)
    """Threads for numeric libraries (torch, OpenCV, FAISS, BLAS) in this process; 1 avoids oversubscription."""
