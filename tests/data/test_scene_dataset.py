"""Scene folders as training samples: view choice, resizing with exact intrinsics, the contract."""

import math

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from iggt.data.batch import check_training_batch
from iggt.data.scene_dataset import SceneFolderDataset
from iggt.data.transforms import resize_and_crop
from iggt.data.view_sampling import covisibility, sample_overlapping_views, sample_sequential_views
from iggt.errors import ConfigError, InputError
from iggt.geometry import depth_to_world_points, inverse_se3, project_points
from iggt.io.scene_format import write_scene
from iggt.synth.generate import render_scenes


@pytest.fixture(scope="module")
def scenes():
    return list(render_scenes([12, 13], 6, (36, 48)))


@pytest.fixture(scope="module")
def root(scenes, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    for index, scene in enumerate(scenes):
        write_scene(scene, folder / f"scene_{index}", depth_encoding="npy")
    return folder


def test_covisibility_is_one_for_a_view_with_itself_and_zero_for_opposite_views():
    depth = torch.full((2, 12, 16), 3.0)
    intrinsic = torch.tensor([[10.0, 0, 8], [0, 10.0, 6], [0, 0, 1]]).expand(2, 3, 3)
    turned = torch.tensor([[-1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, 0]])  # looking backwards
    extrinsic = torch.stack([torch.eye(3, 4), turned])
    overlap = covisibility(depth, intrinsic, extrinsic, stride=2)
    assert torch.allclose(overlap.diagonal(), torch.ones(2))
    assert overlap[0, 1] == 0 and overlap[1, 0] == 0


def test_overlapping_views_share_surfaces(scenes):
    scene = scenes[0]
    overlap = covisibility(*(torch.from_numpy(a) for a in (scene.depth, scene.intrinsic, scene.extrinsic))).numpy()
    picks = sample_overlapping_views(overlap, 4, np.random.default_rng(0), min_overlap=0.05)
    assert len(set(picks)) == 4
    mutual = np.minimum(overlap[picks[0]], overlap[:, picks[0]])
    eligible = (mutual >= 0.05).sum() - 1
    if eligible >= 3:  # enough overlapping frames: every pick overlaps the anchor
        assert (mutual[picks[1:]] >= 0.05).all()


def test_sequential_views_are_evenly_strided():
    for seed in range(20):
        picks = sample_sequential_views(10, 4, np.random.default_rng(seed), max_stride=3)
        steps = np.diff(picks)
        assert (steps == steps[0]).all() and 1 <= steps[0] <= 3 and picks[-1] < 10
    with pytest.raises(ConfigError, match="cannot pick 11 distinct views from 10 frames"):
        sample_sequential_views(10, 11, np.random.default_rng(0))


def test_resizing_keeps_depth_and_intrinsics_consistent(scenes):
    """Points lifted from resized depth project back into the original view at their source pixel."""
    scene = scenes[0]
    images, depth, (ids,), intrinsic = resize_and_crop(
        torch.from_numpy(scene.images),
        torch.from_numpy(scene.depth),
        [torch.from_numpy(scene.instance_ids)],
        torch.from_numpy(scene.intrinsic),
        (28, 28),
        (0.3, 0.7),
    )
    assert images.shape == (6, 28, 28, 3) and depth.shape == ids.shape == (6, 28, 28)
    extrinsic = torch.from_numpy(scene.extrinsic).double()
    points = depth_to_world_points(depth.double(), intrinsic.double(), extrinsic)
    uv, z = project_points(points.flatten(1, 2), torch.from_numpy(scene.intrinsic).double(), extrinsic)
    column, row = uv[..., 0].round().long(), uv[..., 1].round().long()
    source_depth = torch.from_numpy(scene.depth)[torch.arange(6)[:, None], row, column].double()
    # A point halfway between two source pixels may take either as its nearest: leave those out.
    untied = ((uv - uv.floor() - 0.5).abs() > 1e-3).all(-1)
    valid = (depth.flatten(1) > 0) & untied
    assert valid.float().mean() > 0.8
    # Each resized pixel carries its nearest source pixel's depth along its own (exact) ray.
    assert torch.allclose(z[valid], source_depth[valid], rtol=1e-5)
    source_ids = torch.from_numpy(scene.instance_ids)[torch.arange(6)[:, None], row, column]
    assert torch.equal(source_ids[valid], ids.flatten(1)[valid].int())


def test_dataset_items_meet_the_contract_and_collate(root):
    dataset = SceneFolderDataset(root, views=4, image_size=(28, 28), samples_per_scene=2)
    assert len(dataset) == 4
    item = dataset[1]
    assert item["images"].shape == (4, 3, 28, 28) and item["world_points"].shape == (4, 28, 28, 3)
    batch = default_collate([dataset[0], dataset[1]])
    check_training_batch(batch)
    assert torch.equal(batch["extrinsic"][:, 0], torch.eye(3, 4).expand(2, 3, 4))
    for b in range(2):
        distances = batch["world_points"][b].norm(dim=-1)[batch["valid_mask"][b]]
        assert math.isclose(distances.mean().item(), 1.0, rel_tol=1e-4)


def test_dataset_relative_poses_match_the_scene(root, scenes):
    """The sample's normalised poses are the scene's relative poses up to the sample's scale."""
    dataset = SceneFolderDataset(root, views=3, image_size=(36, 48), view_selection="sequential", seed=4)
    item = dataset[0]
    frames = dataset.choose_frames(0, np.random.default_rng([4, 0, 0]))
    indices = [scenes[0].frame_names.index(f) for f in frames]
    extrinsic = torch.from_numpy(scenes[0].extrinsic[indices]).double()
    homogeneous = torch.cat([extrinsic, torch.tensor([[[0.0, 0, 0, 1]]]).expand(3, 1, 4)], 1)
    relative = (homogeneous @ inverse_se3(homogeneous[0]))[:, :3]
    assert torch.allclose(item["extrinsic"][:, :, :3].double(), relative[:, :, :3], atol=1e-5)
    ratio = relative[1:, :, 3].norm(dim=-1) / item["extrinsic"][1:, :, 3].double().norm(dim=-1)
    assert torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-4)


def test_same_epoch_same_item_and_new_epoch_new_views(root):
    dataset = SceneFolderDataset(root, views=3, image_size=(28, 28), random_crop=True)
    first = dataset[0]
    assert torch.equal(dataset[0]["images"], first["images"])
    changed = False
    for epoch in range(1, 6):
        dataset.set_epoch(epoch)
        changed |= not torch.equal(dataset[0]["images"], first["images"])
    assert changed


def test_dataset_configuration_errors(root, tmp_path):
    with pytest.raises(ConfigError, match="has 6 frames but views=7"):
        SceneFolderDataset(root, views=7, image_size=(28, 28))
    with pytest.raises(InputError, match="no scene folders"):
        SceneFolderDataset(tmp_path, views=2, image_size=(28, 28))
    with pytest.raises(ConfigError, match="view_selection must be one of"):
        SceneFolderDataset(root, views=2, image_size=(28, 28), view_selection="random")
