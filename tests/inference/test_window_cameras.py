"""Two overlapping windows of the shipped iggt-small on an engine sweep sequence, aligned by their
shared frames, against one pass over the same frames.

Tolerances, from the phase-13 weights (phase 11's, then phase 7's in brackets): the median angle
between the windowed and the one-pass camera rotations is at most ``ROTATION_DEGREES`` (aligned 5.0
[8.0, 8.7]; the second window left unaligned 23.1 [26.4, 38.6], moved by the inverse of its fit 63.5
[63.9, 77.3]), and the median distance between their camera centres, after one scale fitted between
them (both worlds are the first camera), at most ``CENTRE_FRACTION`` of the one-pass trajectory's
extent (aligned 0.098 [0.088, 0.131]; unaligned 0.224 [0.209, 0.324], inverse 0.339 [0.446, 0.640]).
Both bounds sit between the fit and either wrong one, so each part of the test fails with a broken
alignment.

Why this scene: iggt-small predicts a frame's camera differently in the context of other frames,
by an amount that changes from one set of weights to the next, and the test has to measure the
alignment, not that. The sweep of seed 12 turns the camera enough between the windows that leaving
the second unaligned is clearly wrong, and both weights agree with themselves across contexts
there. Each new set of weights has moved the sequences that do this (drift seed 6 until phase 5,
look-at seed 8 for phase 6); of 32 sequences scanned with phase 7 (look-at, orbit, sweep and walk,
seeds 5-12) this is the one where both weights pass and both wrong alignments fail: on the others
the fit is refused (the windows' shared frames do not agree on one Sim(3), 14 of them), or the
aligned windows miss a bound, or an unaligned one meets it (look-at seed 8 is refused with phase 7).
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
ROTATION_DEGREES = 10.0
CENTRE_FRACTION = 0.15


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
    scene = next(render_scenes([12], FRAMES, (84, 112), SceneConfig(trajectory_weights={"sweep": 1.0})))
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
        misplaced = merged(first, second, wrong)
        assert np.median(rotation_degrees(misplaced, one_pass.extrinsic)) > ROTATION_DEGREES
        assert centre_error(misplaced, one_pass.extrinsic) > CENTRE_FRACTION
