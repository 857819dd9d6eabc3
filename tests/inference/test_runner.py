"""run_model: shapes, chunking invariance, device/dtype resolution and memory errors."""

import numpy as np
import pytest
import torch

from iggt.errors import InputError
from iggt.inference import runner
from iggt.inference.runner import HEAD_CHUNK_PIXELS, _forward_progress, head_chunk_size, max_head_chunk, run_model
from iggt.model.config import get_config


def test_outputs_have_the_documented_shapes(tiny_model):
    images = torch.rand(3, 3, 42, 56, generator=torch.Generator().manual_seed(1))
    predictions = run_model(tiny_model, images, device="cpu")
    assert predictions.images.shape == (3, 42, 56, 3)
    assert predictions.depth.shape == (3, 42, 56)
    assert predictions.world_points.shape == (3, 42, 56, 3)
    assert predictions.extrinsic.shape == (3, 3, 4) and predictions.intrinsic.shape == (3, 3, 3)
    assert predictions.instance_feat.shape == (3, 42, 56, tiny_model.config.instance_dim)
    np.testing.assert_allclose(predictions.images, images.permute(0, 2, 3, 1).numpy())
    assert all(np.isfinite(getattr(predictions, name)).all() for name in ("depth", "world_points", "extrinsic"))


def test_chunked_and_unchunked_runs_agree_and_the_config_is_untouched(tiny_model):
    images = torch.rand(5, 3, 28, 42, generator=torch.Generator().manual_seed(2))
    config = tiny_model.config
    whole = run_model(tiny_model, images, device="cpu", chunk_size=5)
    chunked = run_model(tiny_model, images, device="cpu", dtype="float32", chunk_size=2)
    for name in ("depth", "depth_conf", "world_points", "world_points_conf", "instance_feat", "pose_enc"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-5, atol=1e-5)
    assert tiny_model.config is config and config == get_config("tiny")


def test_default_head_passes_keep_to_the_pixel_budget_in_as_few_even_passes_as_it_allows():
    rng = np.random.default_rng(0)
    for frames, height, width in [(48, 336, 504), (100, 518, 518), (30, 336, 504), (1, 2058, 2058), (8, 224, 224)]:
        most = max_head_chunk(height, width)
        chunk = head_chunk_size(frames, height, width)
        passes = -(-frames // chunk)
        assert 1 <= chunk <= most and (most == 1 or most * height * width <= HEAD_CHUNK_PIXELS)
        assert passes == -(-frames // most)  # no more passes than the budget needs
        assert chunk == -(-frames // passes)  # and those as even as they can be
    assert [head_chunk_size(*case) for case in [(48, 336, 504), (100, 518, 518), (30, 336, 504)]] == [24, 15, 15]
    for frames, height, width in zip(
        rng.integers(1, 2000, 200), rng.integers(1, 80, 200) * 14, rng.integers(1, 80, 200) * 14, strict=True
    ):
        chunk, most = head_chunk_size(frames, height, width), max_head_chunk(height, width)
        passes = -(-frames // chunk)
        assert chunk <= most and passes == -(-frames // most) and passes * chunk - frames < passes


def test_run_model_gives_the_heads_the_default_chunk_unless_told(tiny_model, monkeypatch):
    monkeypatch.setattr(runner, "HEAD_CHUNK_PIXELS", 2 * 28 * 28)  # two 28 x 28 frames a pass
    seen = []
    forward = tiny_model.forward

    def recording_forward(*args, **kwargs):
        seen.append(kwargs["frames_chunk_size"])
        return forward(*args, **kwargs)

    monkeypatch.setattr(tiny_model, "forward", recording_forward)
    images = torch.rand(5, 3, 28, 28, generator=torch.Generator().manual_seed(4))
    run_model(tiny_model, images, device="cpu")
    run_model(tiny_model, images, device="cpu", chunk_size=4)
    assert seen == [2, 4]  # 5 frames, at most 2 a pass: three passes of 2


def test_progress_bar_leaves_the_outputs_unchanged(tiny_model):
    images = torch.rand(2, 3, 28, 28, generator=torch.Generator().manual_seed(3))
    quiet = run_model(tiny_model, images, device="cpu")
    shown = run_model(tiny_model, images, device="cpu", progress=True)
    for name in ("depth", "world_points", "instance_feat", "pose_enc"):
        np.testing.assert_array_equal(getattr(shown, name), getattr(quiet, name))


def test_progress_bar_counts_every_block_and_head_call(tiny_model):
    images = torch.rand(1, 3, 3, 28, 28)
    with torch.inference_mode(), _forward_progress(tiny_model, 3, 2, enabled=True) as bar:
        tiny_model(images, frames_chunk_size=2)
        assert bar.total == 2 * tiny_model.config.depth + 2 + 4 * 2  # blocks, embed + camera, 4 heads x 2 chunks
        assert bar.n == bar.total


def test_images_off_the_patch_grid_are_refused(tiny_model):
    with pytest.raises(InputError, match="not a multiple of the patch size 14"):
        run_model(tiny_model, torch.rand(2, 3, 30, 28), device="cpu")


class ExhaustedModel(torch.nn.Module):
    """Stands in for a network that runs out of memory."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.config = get_config("tiny")
        self.error = error

    def forward(self, images, **settings):
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
        RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes"),
    ],
    ids=["gpu", "cpu"],
)
def test_out_of_memory_becomes_a_one_line_hint(error):
    with pytest.raises(
        InputError, match=r"out of (GPU|CPU) memory running 4 frames at 28x28 .*--chunk .*--max-frames"
    ) as info:
        run_model(ExhaustedModel(error), torch.rand(4, 3, 28, 28), device="cpu")
    assert "\n" not in str(info.value)


def test_other_runtime_errors_are_not_disguised():
    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_model(ExhaustedModel(RuntimeError("shape mismatch")), torch.rand(1, 3, 28, 28), device="cpu")
