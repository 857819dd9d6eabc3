"""Float16 heads: a pass whose outputs are not all finite (float16 overflowed) is recomputed in float32."""

import logging

import pytest
import torch

import iggt.model.iggt as iggt_module
from iggt.model.iggt import IGGT

DENSE_KEYS = ("depth", "depth_conf", "world_points", "world_points_conf", "instance_feat")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="float16 heads run on CUDA only")


def scale_past(model: IGGT, images: torch.Tensor, limit: float, **kwargs) -> None:
    """Scale the part head's first convolution so that every pass's largest output is ``limit``."""
    layer = model.part_head.scratch.layer1_rn
    largest = []
    hook = layer.register_forward_hook(lambda module, args, out: largest.append(out.abs().max().item()))
    model(images, frames_chunk_size=2, **kwargs)
    hook.remove()
    layer.weight.mul_(limit / min(largest))


def test_passes_with_non_finite_outputs_run_again_in_float32_and_say_so(caplog, monkeypatch):
    """The rerun itself, on the CPU: float32 overflowed on purpose (1e40 > 3.4e38) gives non-finite
    instance features, each pass is recomputed, and the log names its frames."""
    monkeypatch.setattr(iggt_module, "_overflows_possible", lambda images, head_dtype: True)
    torch.manual_seed(0)
    model = IGGT.from_preset("small").eval()
    images = torch.rand(1, 4, 3, 224, 224)
    with torch.inference_mode():
        scale_past(model, images, 1e40)
        with caplog.at_level(logging.WARNING, logger="iggt.model.iggt"):
            output = model(images, frames_chunk_size=2)
    assert "float16 heads overflowed on frames 0-1" in caplog.text and "frames 2-3" in caplog.text
    assert not torch.isfinite(output["instance_feat"]).all()  # float32 overflows too: nothing to recover


@needs_cuda
def test_float16_heads_that_overflow_are_recomputed_in_float32(caplog):
    """A part-head convolution scaled to put 1e6 (> 65,504) into every float16 pass: its NaN must reach
    the outputs (no fused kernel may swallow it), and the float32 rerun gives the float32 heads' result."""
    torch.manual_seed(0)
    model = IGGT.from_preset("small").cuda().eval()
    images = torch.rand(1, 4, 3, 224, 224, device="cuda")
    with torch.inference_mode():
        scale_past(model, images, 1e6, trunk_dtype=torch.bfloat16, head_dtype=torch.float32)
        with caplog.at_level(logging.WARNING, logger="iggt.model.iggt"):
            half = model(images, frames_chunk_size=2, trunk_dtype=torch.bfloat16, head_dtype=torch.float16)
        full = model(images, frames_chunk_size=2, trunk_dtype=torch.bfloat16, head_dtype=torch.float32)
    assert "float16 heads overflowed on frames 0-1" in caplog.text and "frames 2-3" in caplog.text
    for key in DENSE_KEYS:
        assert torch.isfinite(half[key]).all(), key
        torch.testing.assert_close(half[key], full[key], rtol=1e-5, atol=1e-5)


@needs_cuda
def test_float16_heads_in_range_run_once_and_stay_close_to_float32(caplog):
    torch.manual_seed(0)
    model = IGGT.from_preset("small").cuda().eval()
    images = torch.rand(1, 4, 3, 224, 224, device="cuda")
    with torch.inference_mode():
        with caplog.at_level(logging.WARNING, logger="iggt.model.iggt"):
            half = model(images, frames_chunk_size=2, trunk_dtype=torch.bfloat16, head_dtype=torch.float16)
        full = model(images, frames_chunk_size=2, trunk_dtype=torch.bfloat16, head_dtype=torch.float32)
    assert "overflowed" not in caplog.text
    for key in ("depth", "world_points"):
        error = ((half[key] - full[key]).abs().max() / full[key].abs().max()).item()
        assert 0 < error < 1e-2, (key, error)
    assert (half["instance_feat"] * full["instance_feat"]).sum(-1).min().item() > 0.99
