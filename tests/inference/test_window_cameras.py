"""Two overlapping windows of the shipped iggt-small on an engine drift, aligned by their shared
frames, against one pass over the same frames.

Tolerance: the median angle between the windowed and the one-pass camera rotations is at most
``ROTATION_DEGREES`` (measured with the phase-5 weights: 2.34; the second window left unaligned: 3.48,
moved by the inverse of its fit: 7.67; the bound sits between the first two, and was 3.5 for the
phase-4 weights' 2.2 / 4.4 / 9.5), and the median distance between their camera centres, after
one scale fitted between them (both worlds are the first camera), at most ``CENTRE_FRACTION`` of the
one-pass trajectory's extent (measured 0.10). The centre bound does not tell a good fit from a bad
one: iggt-small predicts a frame's camera differently in the context of other frames. On the walk
this test used before (seed 5) the phase-4 weights do so by more than any alignment can undo
(aligned 62.7 degrees, unaligned 46.2; the phase-3 weights: 3.9 and 7.2), so the scene is a drift,
where the network agrees with itself across contexts and the test measures the alignment.
"""

import numpy as np
import pytest

from iggt.eval.ground_truth import prepare_views
from iggt.geometry.similarity import Similarity
from iggt.inference.runner import run_model
from iggt.inference.windows import fit_to_previous, to_world
from iggt.model.hub import load_model
from iggt.synth.config import SceneConfig
from iggt.synth.generate import render_scenes

FRAMES, WINDOW, OVERLAP = 12, 8, 4
ROTATION_DEGREES = 2.9
CENTRE_FRACTION = 0.35


def centres(extrinsic: np.ndarray) -> np.ndarray:
    return -np.einsum("sji,sj->si", extrinsic[:, :, :3].astype(np.float64), extrinsic[:, :, 3].astype(np.float64))


def rotation_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    relative = np.einsum("sij,skj->sik", a[:, :, :3].astype(np.float64), b[:, :, :3].astype(np.float64))
    return np.degrees(np.arccos(np.clip((np.trace(relative, axis1=1, axis2=2) - 1) / 2, -1, 1)))


def centre_error(windowed: np.ndarray, one_pass: np.ndarray) -> float:
    """Median centre distance after the least-squares scale, over the one-pass extent."""
    c, r = centres(windowed), centres(one_pass)
    scale = (c * r).sum() / (c * c).sum()
    return float(np.median(np.linalg.norm(scale * c - r, axis=1)) / np.linalg.norm(r - r[0], axis=1).max())


@pytest.fixture(scope="module")
def passes():
    scene = next(render_scenes([6], FRAMES, (84, 112), SceneConfig(trajectory_weights={"drift": 1.0})))
    model = load_model("iggt-small")
    images, _ = prepare_views(scene, np.arange(FRAMES), model.config.img_size, model.config.patch_size)
    first = run_model(model, images[:WINDOW], device="cpu")
    second = run_model(model, images[WINDOW - OVERLAP :], device="cpu")
    return run_model(model, images, device="cpu"), first, second


def merged(first, second, similarity: Similarity) -> np.ndarray:
    """Frames 0-5 from the first window, 6-11 from the second (each nearest its window's centre)."""
    handover = WINDOW - OVERLAP // 2
    moved = to_world(second, similarity)
    return np.concatenate([first.extrinsic[:handover], moved.extrinsic[handover - (WINDOW - OVERLAP) :]])


def test_aligned_windows_agree_with_one_pass_within_the_stated_tolerance(passes):
    one_pass, first, second = passes
    similarity, _ = fit_to_previous(first, second, OVERLAP, "windows 0 and 1")
    windowed = merged(first, second, similarity)
    assert np.median(rotation_degrees(windowed, one_pass.extrinsic)) <= ROTATION_DEGREES
    assert centre_error(windowed, one_pass.extrinsic) <= CENTRE_FRACTION
    inverse_scale = 1 / similarity.scale
    inverse = Similarity(
        inverse_scale, similarity.rotation.T, -inverse_scale * similarity.rotation.T @ similarity.translation
    )
    for wrong in (Similarity.identity(), inverse):
        assert np.median(rotation_degrees(merged(first, second, wrong), one_pass.extrinsic)) > ROTATION_DEGREES
