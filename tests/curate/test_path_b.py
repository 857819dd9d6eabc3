"""Path B on an engine scene exported as a labelled mesh (ScanNet layout): the z-buffer projection
reproduces the engine's instance masks, proposals sharpen a coarse mesh's borders, the sensor depth
check clears what the mesh got wrong, and malformed mesh files are one line."""

import json

import numpy as np
import pytest

from iggt.curate.degrade import Degradation, degrade_masks
from iggt.curate.engine_mesh import layout_mesh
from iggt.curate.from_mesh import curate_with_mesh
from iggt.curate.mesh_labels import read_scannet_mesh, write_scannet_mesh
from iggt.errors import InputError
from iggt.synth.config import RenderConfig, SceneConfig
from iggt.synth.generate import render_scenes
from iggt.synth.prepare import SceneRequest, prepare_scene

CONFIG = SceneConfig(trajectory_weights={"orbit": 1.0, "look_at": 1.0})
SEED, VIEWS, SIZE = 7, 6, (60, 80)


@pytest.fixture(scope="module")
def room():
    """An engine scene and its layout (prepare_scene is what render_scenes draws for the seed)."""
    scene = next(render_scenes([SEED], VIEWS, SIZE, CONFIG, RenderConfig(shadows=False)))
    layout, _ = prepare_scene(SceneRequest(SEED, VIEWS, SIZE), CONFIG)
    return scene, layout


def _interior(ids: np.ndarray) -> np.ndarray:
    """(S, H, W) pixels whose 8 neighbours carry the same ID (away from edges)."""
    padded = np.pad(ids, ((0, 0), (1, 1), (1, 1)), mode="edge")
    same = np.ones(ids.shape, dtype=bool)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            same &= padded[:, 1 + dr : 1 + dr + ids.shape[1], 1 + dc : 1 + dc + ids.shape[2]] == ids
    return same


def _per_instance_iou(curated, truth, where):
    return {
        i: ((curated == i) & (truth == i) & where).sum() / (((curated == i) | (truth == i)) & where).sum()
        for i in np.unique(truth[where])
        if i > 0 and ((truth == i) & where).sum() >= 20
    }


def test_projection_of_the_exported_mesh_reproduces_the_engine_masks(room, tmp_path):
    scene, layout = room
    paths = write_scannet_mesh(layout_mesh(layout), tmp_path, "scene0000_00")
    curated = curate_with_mesh(scene, read_scannet_mesh(*paths))
    ious = _per_instance_iou(curated.scene.instance_ids, scene.instance_ids, _interior(scene.instance_ids))
    assert len(ious) >= 5 and min(ious.values()) >= 0.98
    assert curated.report.notes["rendered_depth_agrees_with_sensor"] > 0.99
    assert curated.scene.instances[1].class_name == "floor"


def test_proposals_sharpen_the_borders_of_a_coarse_mesh(room):
    scene, layout = room
    coarse = layout_mesh(layout, segments=6)  # hexagonal spheres and cylinders: wrong silhouettes
    rng = np.random.default_rng(0)
    proposals = [degrade_masks(ids, Degradation(split=0.1, drop=0.1), rng) for ids in scene.instance_ids]
    raw = curate_with_mesh(scene, coarse).scene.instance_ids
    refined = curate_with_mesh(scene, coarse, proposals)
    border = ~_interior(scene.instance_ids)
    truth = scene.instance_ids
    assert (refined.scene.instance_ids == truth)[border].mean() > (raw == truth)[border].mean() + 0.02
    assert (refined.scene.instance_ids == truth).mean() > (raw == truth).mean()


def test_a_moved_object_disagrees_with_the_sensor_depth_and_is_cleared(room):
    scene, layout = room
    mesh = layout_mesh(layout)
    visible = [i for i in np.unique(scene.instance_ids) if i > 6 and (scene.instance_ids == i).sum() > 100]
    moved = visible[0]
    moved_segments = [s for s, i in mesh.segment_instance.items() if i == moved]
    mesh.vertices[np.isin(mesh.vertex_segment, moved_segments)] += [0.0, 0.0, 0.6]
    curated = curate_with_mesh(scene, mesh)
    was_there = scene.instance_ids == moved
    assert (curated.scene.instance_ids[was_there] == moved).mean() < 0.5
    assert curated.report.notes["rendered_depth_agrees_with_sensor"] < 0.99


def test_malformed_mesh_files_are_one_line(room, tmp_path):
    _, layout = room
    ply, segments, aggregation = write_scannet_mesh(layout_mesh(layout), tmp_path, "s")
    good_segments = segments.read_text()
    segments.write_text(json.dumps({"segIndices": [0, 1, 2]}))
    with pytest.raises(InputError, match="labels 3 vertices but mesh .* has"):
        read_scannet_mesh(ply, segments, aggregation)
    segments.write_text(good_segments)
    aggregation.write_text("{}")
    with pytest.raises(InputError, match="has no 'segGroups' list"):
        read_scannet_mesh(ply, segments, aggregation)
    ply.write_text("not a ply")
    with pytest.raises(InputError, match="is not a PLY"):
        read_scannet_mesh(ply, segments, aggregation)
