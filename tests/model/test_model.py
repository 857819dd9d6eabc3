"""The IGGT network at the tiny and small presets: output contract, invariances, training."""

import pytest
import torch

from iggt.errors import InputError
from iggt.geometry import pose_encoding_to_cameras
from iggt.model.config import get_config
from iggt.model.iggt import IGGT

DENSE_KEYS = ("depth", "depth_conf", "world_points", "world_points_conf", "instance_feat")


def build(name: str, seed: int = 0, **overrides) -> IGGT:
    torch.manual_seed(seed)
    return IGGT.from_preset(name, **overrides).eval()


@pytest.fixture(scope="module")
def tiny() -> IGGT:
    return build("tiny")


def check_contract(output: dict, batch: int, frames: int, height: int, width: int, channels: int) -> None:
    shapes = {
        "pose_enc": (batch, frames, 9),
        "extrinsic": (batch, frames, 3, 4),
        "intrinsic": (batch, frames, 3, 3),
        "depth": (batch, frames, height, width, 1),
        "depth_conf": (batch, frames, height, width),
        "world_points": (batch, frames, height, width, 3),
        "world_points_conf": (batch, frames, height, width),
        "instance_feat": (batch, frames, height, width, channels),
        "images": (batch, frames, 3, height, width),
    }
    assert {k: tuple(output[k].shape) for k in shapes} == shapes
    # An untrained camera head may predict a zero field of view (ReLU), hence infinite focal lengths.
    assert all(torch.isfinite(output[k]).all() for k in shapes if k != "intrinsic")
    assert output["depth"].min() > 0
    assert output["depth_conf"].min() > 1 and output["world_points_conf"].min() > 1
    norms = output["instance_feat"].norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones_like(norms))
    extrinsic, intrinsic = pose_encoding_to_cameras(output["pose_enc"], (height, width))
    torch.testing.assert_close(output["extrinsic"], extrinsic)
    torch.testing.assert_close(output["intrinsic"], intrinsic)


def test_tiny_output_contract_on_a_non_square_batch(tiny):
    images = torch.rand(2, 3, 3, 56, 84)
    with torch.no_grad():
        output = tiny(images)
    check_contract(output, 2, 3, 56, 84, tiny.config.instance_dim)
    assert "pose_enc_list" not in output
    assert output["images"] is images


def test_unbatched_input_is_treated_as_one_scene(tiny):
    images = torch.rand(2, 3, 56, 56)
    with torch.no_grad():
        single, batched = tiny(images), tiny(images[None])
    torch.testing.assert_close(single["depth"], batched["depth"])


def test_small_preset_budget_and_contract():
    model = build("small")
    assert model.num_parameters() <= 25_000_000
    with torch.no_grad():
        output = model(torch.rand(1, 2, 3, 112, 112))
    check_contract(output, 1, 2, 112, 112, model.config.instance_dim)


def test_permuting_frames_after_the_first_permutes_per_frame_outputs(tiny):
    images = torch.rand(1, 4, 3, 56, 56)
    order = [0, 3, 1, 2]
    with torch.no_grad():
        output, permuted = tiny(images), tiny(images[:, order])
    for key in ("pose_enc", *DENSE_KEYS):
        torch.testing.assert_close(permuted[key], output[key][:, order], atol=1e-5, rtol=1e-4)


def test_first_frame_is_the_reference_frame(tiny):
    images = torch.rand(1, 3, 3, 56, 56)
    with torch.no_grad():
        output, swapped = tiny(images), tiny(images[:, [1, 0, 2]])
    assert not torch.allclose(swapped["pose_enc"][:, 1], output["pose_enc"][:, 0], atol=1e-4)


def test_chunked_heads_equal_unchunked(tiny):
    images = torch.rand(1, 5, 3, 56, 56)
    config = tiny.config
    with torch.no_grad():
        whole = tiny(images)
        chunked = tiny(images, frames_chunk_size=2)
    for key in DENSE_KEYS:
        torch.testing.assert_close(chunked[key], whole[key], atol=1e-5, rtol=1e-5)
    assert tiny.config is config and config == get_config("tiny")


def test_a_chunk_below_one_frame_is_refused(tiny):
    with pytest.raises(InputError, match="frames_chunk_size must be at least 1 frame, got 0"):
        tiny(torch.rand(1, 2, 3, 56, 56), frames_chunk_size=0)


def training_step(model: IGGT, images: torch.Tensor) -> tuple[dict, dict]:
    model.zero_grad()
    torch.manual_seed(1)
    output = model(images)
    loss = sum(output[key].sum() for key in DENSE_KEYS) + sum(p.sum() for p in output["pose_enc_list"])
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return output, grads


def test_training_reaches_every_trainable_parameter():
    model = build("tiny").train()
    output, grads = training_step(model, torch.rand(1, 3, 3, 56, 56))
    assert len(output["pose_enc_list"]) == model.config.camera_iterations
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable - set(grads) == set()
    assert all(torch.isfinite(g).all() for g in grads.values())


def test_activation_checkpointing_changes_neither_outputs_nor_gradients():
    images = torch.rand(1, 2, 3, 56, 56)
    model = build("tiny").train()
    plain_output, plain_grads = training_step(model, images)
    model.set_activation_checkpointing(True)
    assert model.config == get_config("tiny")  # a training setting, not the architecture
    checkpointed_output, checkpointed_grads = training_step(model, images)
    torch.testing.assert_close(checkpointed_output["depth"], plain_output["depth"])
    for name, grad in plain_grads.items():
        torch.testing.assert_close(checkpointed_grads[name], grad, msg=name)


@pytest.mark.parametrize(
    ("shape", "message"),
    [((1, 2, 1, 56, 56), "must be"), ((1, 2, 3, 50, 56), "multiple of the patch size")],
)
def test_bad_images_raise_input_error(tiny, shape, message):
    with pytest.raises(InputError, match=message):
        tiny(torch.rand(shape))


def test_query_points_without_a_track_head_raise(tiny):
    with pytest.raises(InputError, match="no track head"):
        tiny(torch.rand(1, 2, 3, 56, 56), query_points=torch.rand(1, 4, 2) * 56)


def test_query_points_are_tracked_through_every_frame():
    model = build("tiny", enable_track=True)
    with torch.no_grad():
        output = model(torch.rand(1, 3, 3, 56, 56), query_points=torch.rand(4, 2) * 56)
    assert output["track"].shape == (1, 3, 4, 2)
    assert output["vis"].shape == output["conf"].shape == (1, 3, 4)
