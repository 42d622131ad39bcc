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

ONNX_PASS_CROPS = 4
"""Most crops in one ONNX Runtime pass. On the CPU a crop costs more in larger passes, as their activations outgrow
the caches (lite0 at 224 px, one thread, with the arena: 5.6 ms a crop in passes of 1-2, 6.2 in 4, 7.4 in 8, 8.1
in 16), and the arena holds the largest pass's buffers: a request or micro-batch of 16 crops runs as four passes."""


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
        # The arena keeps the buffers of one pass for the next: without it every pass maps and faults in its
        # activations again (measured in this process with torch loaded: 13-14 ms a crop at 224 px, half of it
        # system time, against 5.6-6.2 ms). Passes of at most ONNX_PASS_CROPS bound what the arena holds (the
        # embeddings service holds ~60 MiB more than without it), and the memory pattern, which keeps one plan per
        # batch size, stays off.
        options.enable_cpu_mem_arena = True
        options.enable_mem_pattern = False
        self._session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        width = self._session.get_outputs()[0].shape[1]
        self._width = width if isinstance(width, int) else 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Pre-logits features of ``batch``, computed by ONNX Runtime in passes of at most :data:`ONNX_PASS_CROPS`."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        passes = [
            self._session.run(None, {self._input: batch[start : start + ONNX_PASS_CROPS]})[0]
            for start in range(0, len(batch), ONNX_PASS_CROPS)
        ]
        if not passes:
            return np.zeros((0, self._width), dtype=np.float32)
        return np.concatenate(passes).astype(np.float32, copy=False)


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
