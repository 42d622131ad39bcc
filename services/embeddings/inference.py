"""How a loaded timm model is run: eager PyTorch, or ONNX Runtime over a graph exported from it at load time.

The timm model stays the source of truth: the ONNX graph is exported from the very module that was built and
checked (:mod:`services.embeddings.model`), in memory, every time the model loads, so no exported file can drift
from the weights. ONNX Runtime runs lite0 on one CPU thread three to four times faster than eager PyTorch (8 crops
at 224 px: about 60 ms against 250 ms on this project's two-core machine, see the embeddings README) and gives the
same embeddings within :data:`RUNTIME_TOLERANCE`.

Array contract of a :class:`FeatureRunner`: ``(N, 3, H, W) float32`` normalised pixels in, ``(N, D) float32``
pooled pre-logits features out (not yet L2-normalised).
"""

from __future__ import annotations

import io
import warnings
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import torch

from services.common.errors import ConfigurationError

RUNTIME_TOLERANCE = 1e-4
"""Largest difference, per component of an L2-normalised embedding, between ONNX Runtime and eager PyTorch."""

ONNX_OPSET = 17
"""ONNX operator set of the exported graph."""


class InferenceRuntime(StrEnum):
    """Which engine runs the model's forward pass."""

    TORCH = "torch"
    """Eager PyTorch on the timm module."""
    ONNX = "onnx"
    """ONNX Runtime (CPU) on a graph exported from the timm module at load time."""


class FeatureRunner(Protocol):
    """Maps a normalised NCHW batch to pooled features; the one thing :class:`TimmEmbedder` asks of a runtime."""

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """``(N, 3, H, W)`` float32 in, ``(N, D)`` float32 pre-logits features out."""
        ...


class _PreLogits(torch.nn.Module):
    """The timm model's ``forward_features`` then ``forward_head(pre_logits=True)``, as one traceable module."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Pooled pre-logits features of ``batch``."""
        features: torch.Tensor = self.model.forward_head(self.model.forward_features(batch), pre_logits=True)
        return features


class TorchRunner:
    """Eager PyTorch: the reference every other runtime is compared with."""

    def __init__(self, model: Any, device: torch.device) -> None:
        self._module = _PreLogits(model).eval()
        self._device = device

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Pre-logits features of ``batch``, computed by the timm module itself."""
        with torch.inference_mode():
            features = self._module(torch.from_numpy(batch).to(self._device))
        rows: np.ndarray = features.float().cpu().numpy()
        return rows


class OnnxRunner:
    """ONNX Runtime on the CPU, over the graph of a timm model exported in memory (dynamic batch size)."""

    def __init__(self, model: Any, input_size: tuple[int, int, int], *, threads: int = 1) -> None:
        """Export ``model`` and open an inference session on it.

        Args:
            model: the loaded timm module (evaluation mode, on the CPU).
            input_size: ``(3, H, W)`` the model is fed.
            threads: ONNX Runtime's intra-op threads; one per process fits small machines.

        Raises:
            ConfigurationError: onnx or onnxruntime is not installed, or the model does not export.
        """
        try:
            import onnxruntime
        except ImportError as exc:
            raise ConfigurationError(
                "EMBEDDINGS_RUNTIME=onnx needs onnxruntime and onnx: install the 'embeddings' extra, or set"
                " EMBEDDINGS_RUNTIME=torch"
            ) from exc
        graph = export_onnx(model, input_size)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No arena and no memory pattern: the arena keeps the peak of every batch size seen (~190 MB more resident
        # after 36 crops at 224 px); without them the service holds ~920 MB instead of ~1150 at the same speed
        # (measured: three passes of 12 crops, 1.64 s against 1.63 s, on this project's two-core machine).
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        self._session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Pre-logits features of ``batch``, computed by ONNX Runtime."""
        (features,) = self._session.run(None, {self._input: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.asarray(features, dtype=np.float32)


def export_onnx(model: Any, input_size: tuple[int, int, int]) -> bytes:
    """The ONNX graph (bytes) of ``model``'s pre-logits forward pass, with a dynamic batch dimension.

    Raises:
        ConfigurationError: the exporter needs the ``onnx`` package, or the model uses an operator it cannot export.
    """
    buffer = io.BytesIO()
    example = torch.zeros((1, *input_size), dtype=torch.float32)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            # The TorchScript-based exporter handles timm's TF "same" padding; it warns that it is deprecated.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _PreLogits(model).eval(),
                (example,),
                buffer,  # type: ignore[arg-type]  # a file-like object is accepted
                input_names=["pixels"],
                output_names=["features"],
                dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
    except Exception as exc:  # the exporter raises many unrelated types
        raise ConfigurationError(
            f"could not export the model to ONNX ({type(exc).__name__}: {exc}); set EMBEDDINGS_RUNTIME=torch"
        ) from exc
    return buffer.getvalue()


def make_runner(
    runtime: InferenceRuntime, model: Any, input_size: tuple[int, int, int], device: torch.device, threads: int
) -> FeatureRunner:
    """The runner for ``runtime``; ONNX Runtime is CPU-only here, so a CUDA device always runs eager PyTorch.

    Raises:
        ConfigurationError: see :class:`OnnxRunner`.
    """
    if runtime is InferenceRuntime.ONNX and device.type == "cpu":
        return OnnxRunner(model, input_size, threads=threads)
    return TorchRunner(model, device)
