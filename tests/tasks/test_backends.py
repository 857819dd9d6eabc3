"""The image-text backends, loaded from tiny randomly initialised models saved to disk."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import IMAGE_SIZE, OPEN_CLIP_CONFIG, PATCH_SIZE, save_tiny_clip, save_tiny_open_clip, save_tiny_siglip

from iggt.errors import InputError
from iggt.tasks.backends import ImageTextBackend, backend_names, load_backend

SAVERS = {"clip": save_tiny_clip, "open_clip": save_tiny_open_clip, "siglip": save_tiny_siglip}
CONFIG_FILES = {"clip": "config.json", "open_clip": "open_clip_config.json", "siglip": "config.json"}


@pytest.fixture(scope="module", params=sorted(SAVERS))
def backend(request, tmp_path_factory):
    folder = SAVERS[request.param](tmp_path_factory.mktemp(request.param))
    return load_backend(request.param, str(folder))


def images(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40 + 7 * i, 50, 3), dtype=np.uint8) for i in range(count)]


def test_registry_lists_the_backends():
    assert backend_names() == ["clip", "iggt-text", "open_clip", "siglip"]
    with pytest.raises(InputError, match=r"unknown backend 'blip'; choose from \['clip', 'iggt-text', 'open_clip'"):
        load_backend("blip", "x")


def test_image_and_text_embeddings_share_a_unit_norm_space(backend):
    assert isinstance(backend, ImageTextBackend)
    image_embeddings = backend.encode_images(images(3))
    text_embeddings = backend.encode_texts(["a chair", "a red sofa", "the floor"])
    assert image_embeddings.shape[0] == 3 and text_embeddings.shape[0] == 3
    assert image_embeddings.shape[1] == text_embeddings.shape[1]
    assert image_embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(image_embeddings, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(text_embeddings, axis=1), 1, atol=1e-5)
    assert not np.allclose(text_embeddings[0], text_embeddings[1])  # different words, different embeddings
    assert not np.allclose(image_embeddings[0], image_embeddings[1])


def test_embeddings_are_deterministic_and_independent_of_the_batch(backend):
    batch = images(3)
    first, again = backend.encode_images(batch), backend.encode_images(batch)
    np.testing.assert_array_equal(first, again)
    alone = backend.encode_images(batch[1:2])
    np.testing.assert_allclose(alone[0], first[1], atol=1e-5)  # float32 batched vs single matmuls
    np.testing.assert_array_equal(backend.encode_texts(["a lamp"]), backend.encode_texts(["a lamp"]))


def test_float_images_are_accepted_like_uint8(backend):
    image = images(1)[0]
    np.testing.assert_allclose(
        backend.encode_images([image.astype(np.float32) / 255])[0], backend.encode_images([image])[0], atol=1e-6
    )
    with pytest.raises(InputError, match=r"images must be \(H, W, 3\) RGB, got shape \(4, 4\)"):
        backend.encode_images([np.zeros((4, 4))])


def test_dense_features_are_a_patch_grid_in_the_joint_space(backend):
    assert backend.has_dense_features
    image = images(1)[0]
    dense = backend.dense_features(image)
    side = IMAGE_SIZE // PATCH_SIZE
    assert dense.shape == (side, side, backend.encode_texts(["a"]).shape[1])
    np.testing.assert_allclose(np.linalg.norm(dense, axis=-1), 1, atol=1e-5)
    np.testing.assert_array_equal(dense, backend.dense_features(image))
    assert not np.allclose(dense, backend.dense_features(images(1, seed=5)[0]))


@pytest.mark.parametrize("name", sorted(SAVERS))
def test_a_missing_folder_is_one_line(name, tmp_path):
    with pytest.raises(InputError, match=f"backend folder {tmp_path}/nothing does not exist"):
        load_backend(name, str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=f"{tmp_path}/empty has no {CONFIG_FILES[name]}; pass a "):
        load_backend(name, str(tmp_path / "empty"))


@pytest.mark.parametrize("name", sorted(SAVERS))
def test_a_hub_id_offline_is_one_line(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError) as caught:
        load_backend(name, "iggt-tests/no-such-model")
    message = str(caught.value)
    assert message.startswith(
        f"cannot load the {name} backend from hub id (offline: local cache only) 'iggt-tests/no-such-model': "
    )
    assert "\n" not in message


def test_open_clip_that_cannot_import_is_one_line(tmp_path, monkeypatch):
    """A real package named open_clip whose import fails as open_clip's does without torchvision."""
    broken = tmp_path / "site" / "open_clip"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("import torchvision_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "open_clip", raising=False)
    with pytest.raises(InputError) as caught:
        load_backend("open_clip", str(tmp_path))
    assert str(caught.value) == (
        "the open_clip backend needs open_clip_torch and a working torchvision (ModuleNotFoundError: "
        "No module named 'torchvision_that_is_not_installed'); use --backend clip or siglip"
    )


def test_open_clip_refuses_a_folder_without_weights_or_with_wrong_ones(tmp_path):
    folder = save_tiny_open_clip(tmp_path / "model")
    (folder / "open_clip_model.safetensors").unlink()
    with pytest.raises(InputError, match=r"model has open_clip_config.json but no weights file \(open_clip_model"):
        load_backend("open_clip", str(folder))
    save_tiny_open_clip(tmp_path / "other", model_cfg=dict(OPEN_CLIP_CONFIG, embed_dim=8))
    (tmp_path / "other" / "open_clip_model.safetensors").rename(folder / "open_clip_model.safetensors")
    with pytest.raises(InputError) as caught:
        load_backend("open_clip", str(folder))
    message = str(caught.value)
    assert message.startswith(f"cannot load the open_clip backend from folder '{folder}': Error(s) in loading")
    assert "\n" not in message


def test_open_clip_without_a_class_token_vit_is_crop_only(tmp_path):
    vision = dict(OPEN_CLIP_CONFIG["vision_cfg"], pool_type="avg")
    backend = load_backend(
        "open_clip", str(save_tiny_open_clip(tmp_path, model_cfg=dict(OPEN_CLIP_CONFIG, vision_cfg=vision)))
    )
    assert not backend.has_dense_features
    assert backend.encode_images(images(2)).shape == (2, OPEN_CLIP_CONFIG["embed_dim"])
    with pytest.raises(InputError, match="this open_clip model has no dense features .*; it is used through crops"):
        backend.dense_features(images(1)[0])


def _patch_grid(patches: torch.Tensor) -> np.ndarray:
    side = IMAGE_SIZE // PATCH_SIZE
    values = torch.nn.functional.normalize(patches[0], dim=-1).detach().numpy()
    return values.reshape(side, side, -1)


def test_clip_dense_features_are_the_last_attention_restricted_to_each_token(tmp_path):
    """MaskCLIP's value path equals the last attention layer run with each token attending only to
    itself (computed here by transformers' own attention), then the class token's way out."""
    backend = load_backend("clip", str(save_tiny_clip(tmp_path)))
    image = images(1)[0][:IMAGE_SIZE, :IMAGE_SIZE]  # the model's size: no resizing before the processor
    model, vision = backend.model, backend.model.vision_model
    pixels = backend.image_processor(images=[image], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        hidden = vision(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
        tokens = hidden.shape[1]
        only_itself = torch.full((tokens, tokens), float("-inf")).fill_diagonal_(0)[None, None]
        last = vision.encoder.layers[-1]
        attended = last.self_attn(last.layer_norm1(hidden), attention_mask=only_itself)[0]
        expected = model.visual_projection(vision.post_layernorm(attended[:, 1:]))
    np.testing.assert_allclose(backend.dense_features(image), _patch_grid(expected), atol=1e-5)


def test_siglip_dense_features_are_the_pooling_head_applied_to_each_token(tmp_path):
    """The attention-pooling head with every patch token as its own probe, attending only to itself."""
    backend = load_backend("siglip", str(save_tiny_siglip(tmp_path)))
    image = images(1)[0][:IMAGE_SIZE, :IMAGE_SIZE]
    head = backend.model.vision_model.head
    pixels = backend.image_processor(images=[image], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        tokens = backend.model.vision_model(pixel_values=pixels).last_hidden_state
        only_itself = ~torch.eye(tokens.shape[1], dtype=torch.bool)
        attended = head.attention(tokens, tokens, tokens, attn_mask=only_itself)[0]
        expected = attended + head.mlp(head.layernorm(attended))
    np.testing.assert_allclose(backend.dense_features(image), _patch_grid(expected), atol=1e-5)


def test_open_clip_dense_features_are_the_last_attention_restricted_to_each_token(tmp_path):
    """As for CLIP, computed here by open_clip's own blocks: its intermediates give the last block's
    input, its attention runs with each token attending only to itself, then ln_post and proj."""
    backend = load_backend("open_clip", str(save_tiny_open_clip(tmp_path)))
    image = images(1)[0][:IMAGE_SIZE, :IMAGE_SIZE]
    visual = backend.model.visual
    pixels = backend.preprocess(Image.fromarray(image))[None]
    with torch.no_grad():
        layers = len(visual.transformer.resblocks)
        _, (hidden,) = visual.transformer.forward_intermediates(visual._embeds(pixels), indices=[layers - 2])
        tokens = hidden.shape[1]
        only_itself = torch.full((tokens, tokens), float("-inf")).fill_diagonal_(0)
        last = visual.transformer.resblocks[-1]
        attended = last.attention(last.ln_1(hidden), attn_mask=only_itself)
        expected = visual.ln_post(attended[:, 1:]) @ visual.proj
    np.testing.assert_allclose(backend.dense_features(image), _patch_grid(expected), atol=1e-5)
