"""The synthetic training stream: the batch contract, its normalisation, and exact resumption."""

import math
from itertools import islice

import pytest
import torch

from iggt.data.batch import check_training_batch
from iggt.data.synthetic_stream import SyntheticSceneStream, SyntheticStreamConfig
from iggt.errors import ConfigError
from iggt.geometry import depth_to_world_points
from iggt.synth.config import RenderConfig


def small_config(**overrides) -> SyntheticStreamConfig:
    values = {
        "num_views": 3,
        "image_size": (24, 32),
        "batch_size": 2,
        "base_seed": 5,
        "render": RenderConfig(shadows=False),
    }
    return SyntheticStreamConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def batches():
    return list(islice(iter(SyntheticSceneStream(small_config())), 3))


def test_batch_meets_the_contract(batches):
    batch = batches[0]
    check_training_batch(batch)
    assert batch["images"].shape == (2, 3, 3, 24, 32)
    assert batch["images"].min() >= 0 and batch["images"].max() <= 1
    assert (batch["instance_ids"][batch["valid_mask"]] > 0).all()
    assert (batch["class_ids"][batch["valid_mask"]] > 0).all()


def test_batch_is_normalised(batches):
    batch = batches[0]
    assert torch.equal(batch["extrinsic"][:, 0], torch.eye(3, 4).expand(2, 3, 4))
    for scene in range(2):
        distances = batch["world_points"][scene].norm(dim=-1)[batch["valid_mask"][scene]]
        assert math.isclose(distances.mean().item(), 1.0, rel_tol=1e-4)
    # The points are the depth maps lifted with the normalised cameras.
    lifted = depth_to_world_points(batch["depth"], batch["intrinsic"], batch["extrinsic"])
    mask = batch["valid_mask"]
    assert torch.allclose(lifted[mask], batch["world_points"][mask], atol=1e-4)


def test_consecutive_batches_differ(batches):
    assert not torch.equal(batches[0]["images"], batches[1]["images"])
    assert batches[0]["images"].shape == batches[1]["images"].shape


def test_restored_stream_continues_exactly(batches):
    stream = SyntheticSceneStream(small_config())
    iterator = iter(stream)
    next(iterator)
    state = stream.state_dict()
    assert state == {"base_seed": 5, "step": 1}
    resumed = SyntheticSceneStream(small_config(base_seed=0))
    resumed.load_state_dict(state)
    for expected in batches[1:]:
        got = next(iter(resumed))
        for key in expected:
            assert torch.equal(got[key], expected[key]), key


def test_batch_at_is_independent_of_position(batches):
    stream = SyntheticSceneStream(small_config())
    assert torch.equal(stream.batch_at(2)["depth"], batches[2]["depth"])


def test_bad_configs_are_config_errors():
    with pytest.raises(ConfigError, match="num_views and batch_size"):
        SyntheticStreamConfig(num_views=0)
    with pytest.raises(ConfigError, match="rank must be in"):
        SyntheticSceneStream(small_config(), rank=2, world_size=2)
    with pytest.raises(ConfigError, match="supersample must be an odd number"):
        RenderConfig(supersample=2)


def test_worker_processes_prepare_the_same_scenes(batches):
    stream = SyntheticSceneStream(small_config(prepare_workers=1, prefetch_steps=2))
    for expected, got in zip(batches, islice(iter(stream), 2), strict=False):
        assert torch.equal(got["images"], expected["images"])
    assert stream.state_dict()["step"] == 2
