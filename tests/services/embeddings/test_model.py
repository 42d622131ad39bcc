"""Behaviour of the embedding model: exact weight mapping, real ImageNet predictions, the embedding contract."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageEnhance
from skimage import data

from services.common.errors import ConfigurationError, NotReady
from services.embeddings.inference import ONNX_PASS_CROPS, RUNTIME_TOLERANCE, InferenceRuntime, OnnxRunner
from services.embeddings.model import (
    DEFAULT_MODEL,
    TimmEmbedder,
    _import_timm_offline,
    _package_weights,
    check_embeddings,
    check_tf_variant,
    load_lukemelas_weights,
    map_lukemelas_to_timm,
)

timm = _import_timm_offline()

CAT_CLASSES = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
ESPRESSO = 967


def _image(name: str) -> Image.Image:
    return Image.fromarray(getattr(data, name)()).convert("RGB")


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: on a small, shared CPU a second spinning thread only adds contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def embedder() -> TimmEmbedder:
    """The real default model, loaded once; a small batch size so that batching is exercised."""
    model = TimmEmbedder(batch_size=4)
    model.load()
    return model


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every Hub download and every socket connection fail loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network or Hub access attempted")

    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr(timm.models._hub, "hf_hub_download", refuse)
    for name in ("load_state_dict_from_hf", "load_state_dict_from_url", "download_cached_file"):
        monkeypatch.setattr(timm.models._builder, name, refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


# --- (a) the mapping is exact ---------------------------------------------------------------------------------


def test_mapping_renames_blocks_by_stage_and_block_type() -> None:
    source = {
        "_conv_stem.weight": 1,
        "_bn0.running_var": 2,
        "_blocks.0._depthwise_conv.weight": 3,
        "_blocks.0._bn1.bias": 4,
        "_blocks.0._project_conv.weight": 5,
        "_blocks.0._bn2.weight": 6,
        "_blocks.1._expand_conv.weight": 7,
        "_blocks.1._bn0.weight": 8,
        "_blocks.1._depthwise_conv.weight": 9,
        "_blocks.1._bn1.weight": 10,
        "_blocks.1._project_conv.weight": 11,
        "_blocks.1._bn2.num_batches_tracked": 12,
        "_blocks.2._expand_conv.weight": 13,
        "_conv_head.weight": 14,
        "_bn1.running_mean": 15,
        "_fc.bias": 16,
    }
    assert map_lukemelas_to_timm(source, stage_depths=(1, 2)) == {
        "conv_stem.weight": 1,
        "bn1.running_var": 2,
        "blocks.0.0.conv_dw.weight": 3,
        "blocks.0.0.bn1.bias": 4,
        "blocks.0.0.conv_pw.weight": 5,
        "blocks.0.0.bn2.weight": 6,
        "blocks.1.0.conv_pw.weight": 7,
        "blocks.1.0.bn1.weight": 8,
        "blocks.1.0.conv_dw.weight": 9,
        "blocks.1.0.bn2.weight": 10,
        "blocks.1.0.conv_pwl.weight": 11,
        "blocks.1.0.bn3.num_batches_tracked": 12,
        "blocks.1.1.conv_pw.weight": 13,
        "conv_head.weight": 14,
        "bn2.running_mean": 15,
        "classifier.bias": 16,
    }


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"_blocks.0._se_reduce.weight": 0, "_blocks.1._bn1.weight": 0}, "no timm counterpart"),
        ({"_blocks.0._bn1.weight": 0, "_blocks.1._bn1.weight": 0, "_stem.weight": 0}, "no timm counterpart"),
        ({"_blocks.0._bn1.weight": 0, "_blocks.2._bn1.weight": 0}, "expected 0..1"),
    ],
)
def test_mapping_rejects_keys_it_cannot_place(source: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        map_lukemelas_to_timm(source, stage_depths=(1, 1))


@pytest.mark.model
def test_packaged_weights_map_onto_every_timm_key_with_equal_shapes(embedder: TimmEmbedder) -> None:
    source = _package_weights()
    mapped = map_lukemelas_to_timm(source)
    loaded = embedder._loaded().state_dict()

    assert len(mapped) == len(source)
    assert set(mapped) == set(loaded)
    for key, value in mapped.items():
        assert value.shape == loaded[key].shape, key
        assert torch.equal(value, loaded[key].cpu()), key


@pytest.mark.model
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"_fc.bias": torch.zeros(10)}, r"classifier\.bias: \(10,\) != \(1000,\)"),
        ({"_blocks.15._se_reduce.weight": torch.zeros(1)}, "no timm counterpart"),
        ({"_bn1.extra": torch.zeros(1)}, r"unexpected bn2\.extra"),
        ({"_conv_head.weight": None}, r"missing conv_head\.weight"),
    ],
)
def test_loading_refuses_weights_that_do_not_fit(change: dict[str, torch.Tensor | None], message: str) -> None:
    model = timm.create_model(DEFAULT_MODEL, pretrained=False)
    weights = {k: v for k, v in {**_package_weights(), **change}.items() if v is not None}

    with pytest.raises(ConfigurationError, match=message):
        load_lukemelas_weights(model, weights)


def test_tf_variant_check_accepts_tf_model_and_rejects_pytorch_padding_or_eps() -> None:
    check_tf_variant(timm.create_model(DEFAULT_MODEL, pretrained=False))
    with pytest.raises(ConfigurationError, match="padding"):
        check_tf_variant(timm.create_model("efficientnet_lite0", pretrained=False))
    wrong_eps = timm.create_model(DEFAULT_MODEL, pretrained=False)
    wrong_eps.bn2.eps = 1e-5
    with pytest.raises(ConfigurationError, match="bn2"):
        check_tf_variant(wrong_eps)


# --- (b) real ImageNet predictions ----------------------------------------------------------------------------


@pytest.mark.model
def test_classifier_recognises_cat_and_espresso(embedder: TimmEmbedder) -> None:
    logits = embedder.classify([_image("chelsea"), _image("coffee")])

    assert logits.shape == (2, 1000)
    assert int(logits[0].argmax()) in CAT_CLASSES
    assert int(logits[1].argmax()) == ESPRESSO


# --- (c) the embedding contract -------------------------------------------------------------------------------


@pytest.mark.model
def test_embed_returns_unit_rows_deterministically_across_batches(embedder: TimmEmbedder) -> None:
    images = [_image(name) for name in ("chelsea", "coffee", "astronaut", "rocket")] * 2 + [_image("chelsea")]

    batched = embedder.embed(images)

    assert batched.shape == (9, 1280) and batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(batched, embedder.embed(images))
    np.testing.assert_allclose(batched[8], embedder.embed(images[:1])[0], atol=1e-5)
    assert embedder.embed([]).shape == (0, 1280)


@pytest.mark.model
def test_onnx_runs_a_large_batch_in_passes_of_a_few_crops_with_the_same_rows(embedder: TimmEmbedder) -> None:
    one_call = TimmEmbedder(batch_size=16)  # nine crops reach the runner at once, which runs them 4 + 4 + 1
    images = [_image(name) for name in ("chelsea", "coffee", "astronaut", "rocket", "camera")] * 2
    images = images[:9]
    one_call.load()
    runner = one_call._runner
    assert isinstance(runner, OnnxRunner)
    seen: list[int] = []
    session_run = runner._session.run
    runner._session.run = lambda names, feeds: seen.append(len(feeds["pixels"])) or session_run(names, feeds)

    rows = one_call.embed(images)

    assert seen == [ONNX_PASS_CROPS, ONNX_PASS_CROPS, 9 - 2 * ONNX_PASS_CROPS]
    np.testing.assert_allclose(rows, embedder.embed(images), atol=1e-5)
    assert runner(np.zeros((0, 3, 224, 224), dtype=np.float32)).shape == (0, 1280)


@pytest.mark.model
def test_perturbed_image_stays_closer_to_its_original_than_to_other_images(embedder: TimmEmbedder) -> None:
    original = _image("chelsea")
    others = [_image(name) for name in ("coffee", "astronaut", "rocket")]
    perturbed = [ImageEnhance.Brightness(original).enhance(1.15), _jpeg(original, quality=60)]

    vectors = embedder.embed([original, *others, *perturbed])

    for copy in vectors[4:]:
        assert _cosine(copy, vectors[0]) > 0.9
        assert _cosine(copy, vectors[0]) > max(_cosine(copy, other) for other in vectors[1:4])


@pytest.mark.model
def test_embed_sees_the_whole_image_not_a_centre_crop(embedder: TimmEmbedder) -> None:
    square = _image("chelsea").resize((256, 256))
    framed = square.copy()
    # A 12-pixel frame lies wholly outside the 224-pixel centre crop of a 256-pixel image.
    ImageDraw.Draw(framed).rectangle((0, 0, 255, 255), outline=(255, 0, 0), width=12)

    plain, with_frame = embedder.embed([square, framed])
    crop_logits = embedder.classify([square, framed])

    assert _cosine(plain, with_frame) < 0.99
    np.testing.assert_allclose(crop_logits[0], crop_logits[1], atol=1e-4)


@pytest.mark.model
def test_onnx_runtime_gives_the_timm_models_embeddings_within_tolerance(embedder: TimmEmbedder) -> None:
    reference = TimmEmbedder(batch_size=4, runtime=InferenceRuntime.TORCH)
    images = [_image(name) for name in ("chelsea", "coffee", "astronaut", "rocket", "camera")]
    images.append(_image("chelsea").crop((40, 30, 200, 250)))

    exported, eager = embedder.embed(images), reference.embed(images)

    assert embedder.runtime is InferenceRuntime.ONNX and reference.runtime is InferenceRuntime.TORCH
    assert np.abs(exported - eager).max() < RUNTIME_TOLERANCE
    assert np.all(np.sum(exported * eager, axis=1) > 1 - 1e-6)
    # Not vacuous: the two runtimes tell the images apart in the same way.
    np.testing.assert_allclose(exported @ exported.T, eager @ eager.T, atol=RUNTIME_TOLERANCE)
    assert (exported @ exported.T)[0, 1] < 0.9


def test_unknown_runtime_is_refused_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="runtime 'tensorrt'"):
        TimmEmbedder(runtime="tensorrt")


def test_dimension_is_unknown_until_loaded() -> None:
    with pytest.raises(NotReady, match="load"):
        _ = TimmEmbedder().dimension


# --- (d) configuration and local weights for other models -----------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_name": "resnet10t"}, "needs weights_path"),
        ({"model_name": "hf-hub:timm/resnet10t.c3_in1k", "weights_path": "w.pth"}, "registry name"),
        ({"pretrained_cfg_overlay": {"source": "hf-hub"}}, "use weights_path"),
        ({"batch_size": 0}, "must be positive"),
    ],
)
def test_invalid_configuration_fails_at_construction(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        TimmEmbedder(**kwargs)  # type: ignore[arg-type]


def test_missing_weights_file_or_unknown_model_fails_at_load(tmp_path: Path, no_hub: None) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        TimmEmbedder("test_vit", weights_path=tmp_path / "absent.pth").load()
    (tmp_path / "w.pth").write_bytes(b"")
    with pytest.raises(ConfigurationError, match="not a timm model"):
        TimmEmbedder("no_such_net", weights_path=tmp_path / "w.pth").load()


def test_hub_guard_catches_a_hub_download(no_hub: None) -> None:
    with pytest.raises(AssertionError, match="Hub access"):
        timm.create_model("test_vit", pretrained=True)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_other_model_loads_local_weights_without_network(tmp_path: Path, suffix: str, no_hub: None) -> None:
    torch.manual_seed(0)
    weights = timm.create_model("test_vit", pretrained=False).state_dict()
    path = tmp_path / f"test_vit{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(weights, str(path))
    else:
        torch.save(weights, path)

    model = TimmEmbedder("test_vit", weights_path=path, batch_size=2)
    model.load()
    vectors = model.embed([_image("coffee"), _image("rocket"), _image("chelsea").convert("L")])

    assert model.name == "test_vit" and model.dimension == 64
    for key, value in model._loaded().state_dict().items():
        assert torch.equal(value, weights[key]), key
    check_embeddings(vectors, 64)
    assert vectors.shape == (3, 64)


def test_concurrent_loads_build_the_model_once(tmp_path: Path, no_hub: None, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "test_vit.pth"
    torch.save(timm.create_model("test_vit").state_dict(), path)
    calls: list[str] = []
    create = timm.create_model

    def counting_create(name: str, **kwargs: object) -> torch.nn.Module:
        calls.append(name)
        return create(name, **kwargs)

    monkeypatch.setattr(timm, "create_model", counting_create)
    model = TimmEmbedder("test_vit", weights_path=path)

    threads = [threading.Thread(target=model.load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    model.load()

    assert calls == ["test_vit"]


# --- (e) the array contract -----------------------------------------------------------------------------------


def _unit_rows(n: int, d: int) -> np.ndarray:
    x = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_check_embeddings_accepts_unit_rows_and_empty() -> None:
    check_embeddings(_unit_rows(3, 8), 8)
    check_embeddings(np.zeros((0, 8), dtype=np.float32), 8)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (_unit_rows(3, 8).astype(np.float64), "float32"),
        (_unit_rows(3, 8) * 2, "L2-normalised"),
        (np.where(np.eye(3, 8, dtype=bool), np.nan, _unit_rows(3, 8)).astype(np.float32), "NaN"),
        (_unit_rows(3, 4), r"shape \(N, 8\)"),
        (_unit_rows(1, 8)[0], r"shape \(N, 8\)"),
    ],
)
def test_check_embeddings_rejects_contract_violations(array: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_embeddings(array, 8)
