"""IGGT.store_trunk_weights: the trunk's matrix weights held in bf16 give the autocast outputs bit for bit."""

import pytest
import torch
from torch import nn

from iggt.errors import InputError
from iggt.inference.runner import store_weights_for_inference
from iggt.model.iggt import IGGT


def build(name: str = "tiny", seed: int = 0) -> IGGT:
    torch.manual_seed(seed)
    return IGGT.from_preset(name).eval()


def trunk_layers(model: IGGT, images: torch.Tensor, device_type: str) -> dict[int, torch.Tensor]:
    with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16):
        layers, _ = model.aggregator(images)
    return layers


def test_stored_weights_leave_the_autocast_trunk_bit_identical():
    model = build()
    images = torch.rand(1, 3, 3, 56, 70, generator=torch.Generator().manual_seed(1))
    before = trunk_layers(model, images, "cpu")
    model.store_trunk_weights(torch.bfloat16)
    after = trunk_layers(model, images, "cpu")
    assert before.keys() == after.keys()
    for index in before:
        assert torch.equal(before[index], after[index]), f"trunk layer {index} changed"


def test_only_matrix_weights_are_stored_and_the_bytes_freed_are_counted():
    model = build()
    matrices = [m for m in model.aggregator.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    matrix_values = sum(t.numel() for m in matrices for t in (m.weight, m.bias) if t is not None)
    freed = model.store_trunk_weights(torch.bfloat16)
    assert freed == 2 * matrix_values
    assert model.trunk_weight_dtype == torch.bfloat16
    matrix_ids = {id(t) for m in matrices for t in (m.weight, m.bias) if t is not None}
    others = [(n, p) for n, p in model.named_parameters() if id(p) not in matrix_ids]
    # Norms, layer scales, tokens and every head stay float32: autocast computes with them in float32.
    assert others and all(p.dtype == torch.float32 for _, p in others), [
        n for n, p in others if p.dtype != torch.float32
    ]
    assert any(".norm" in n for n, _ in others) and any("camera_token" in n for n, _ in others)
    assert model.store_trunk_weights(torch.bfloat16) == 0  # already stored


def test_a_stored_model_refuses_what_would_change_its_results():
    model = build()
    model.store_trunk_weights(torch.bfloat16)
    images = torch.rand(1, 2, 3, 28, 28)
    with pytest.raises(InputError, match="stored in torch.bfloat16.*load the checkpoint again"):
        model(images)  # the CPU runs the trunk in float32
    with pytest.raises(InputError, match="store_trunk_weights takes bfloat16 or float16"):
        build().store_trunk_weights(torch.float32)


def test_the_runner_stores_only_for_autocast_on_cuda():
    model = build()
    assert store_weights_for_inference(model, "cpu", torch.bfloat16) == 0
    assert store_weights_for_inference(model, torch.device("cuda"), torch.float32) == 0
    assert model.trunk_weight_dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_stored_weights_leave_the_cuda_model_unchanged():
    model = build("small").cuda()
    images = torch.rand(1, 4, 3, 224, 224, device="cuda", generator=torch.Generator("cuda").manual_seed(2))

    def forward():
        with torch.inference_mode():
            return model(images, frames_chunk_size=2, trunk_dtype=torch.bfloat16)

    before, trunk_before = forward(), trunk_layers(model, images, "cuda")
    assert store_weights_for_inference(model, "cuda", torch.bfloat16) > 0
    after, trunk_after = forward(), trunk_layers(model, images, "cuda")
    for index in trunk_before:
        assert torch.equal(trunk_before[index], trunk_after[index]), f"trunk layer {index} changed"
    for key in ("pose_enc", "depth", "world_points", "instance_feat"):
        torch.testing.assert_close(after[key], before[key], rtol=1e-5, atol=1e-6)
