"""Windows of a long capture: the plan, the Sim(3) alignment of each window, and the merge.

Exact case: every window gets the engine walk-through's ground truth in the frame a network
would give it (its first camera, at a scale of its own), so the merged capture must equal what
one pass over all frames gives, up to float32 rounding.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from inference_inputs import FAST_INSTANCES

from iggt.errors import InputError
from iggt.geometry.similarity import Similarity, umeyama
from iggt.inference.windowed import reconstruct_windows
from iggt.inference.windows import fit_to_previous, plan_windows, to_world
from walkthrough import OVERLAP, RETURNING_OBJECT, WINDOW, exact_predictions, walkthrough, window_frame

SCALES = (1.0, 2.5, 0.4, 1.7, 0.8, 3.0)
"""Each window's own scale, as far apart as separate network runs could put them."""
TOLERANCE = 1e-4
"""Float32 rounding of points of a few metres (about 5e-7 relative), compounded over five
chained fits, stays below 1e-5; a wrong scale, rotation or chain order is off by 1e-1 or more."""


def windowed_truth(plan):
    scene, _ = walkthrough()

    def predict(frames: range):
        return exact_predictions(frames, window_frame(scene, frames, SCALES[plan.windows.index(frames)]))

    return predict


def test_plan_covers_every_frame_with_full_windows():
    plan = plan_windows(24, WINDOW, OVERLAP)
    assert [(w.start, w.stop) for w in plan.windows] == [(0, 6), (4, 10), (8, 14), (12, 18), (16, 22), (18, 24)]
    assert plan.owner.tolist() == [0] * 5 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 3 + [5] * 4
    assert all(f in plan.windows[w] for f, w in enumerate(plan.owner))
    assert plan.describe().startswith("6 windows of 6 frames (overlap 2/4): frames 0-5, 4-9")
    assert len(plan_windows(5, 6, 2).windows) == 1


@pytest.mark.parametrize(
    ("window", "overlap", "message"),
    [
        (6, 1, r"^overlap=1 is below the minimum of 2 frames that consecutive windows must share"),
        (6, 0, r"^overlap=0 is below the minimum of 2 frames .* use overlap=2 or more$"),
        (4, 4, r"^window=4 must be larger than overlap=4 .* use window=6 or more$"),
    ],
)
def test_too_little_overlap_is_one_clear_line(window, overlap, message):
    with pytest.raises(InputError, match=message):
        plan_windows(24, window, overlap)


def test_aligned_windows_agree_with_one_pass():
    scene, _ = walkthrough()
    plan = plan_windows(scene.num_views, WINDOW, OVERLAP)
    run = reconstruct_windows(windowed_truth(plan), plan, FAST_INSTANCES)
    one_pass = exact_predictions(range(scene.num_views), window_frame(scene, range(WINDOW), SCALES[0]))
    np.testing.assert_allclose(run.predictions.extrinsic, one_pass.extrinsic, atol=TOLERANCE)
    np.testing.assert_allclose(run.predictions.world_points, one_pass.world_points, atol=TOLERANCE)
    np.testing.assert_allclose(run.predictions.depth, one_pass.depth, rtol=TOLERANCE)
    scales = [s.scale for s in run.similarities]
    np.testing.assert_allclose(scales, [SCALES[0] / s for s in SCALES], rtol=TOLERANCE)
    assert run.instances.labels.shape == scene.instance_ids.shape


def test_the_whole_pipeline_keeps_the_returning_objects_id():
    """Clustering each window's exact features, aligning and linking: object 10 keeps one ID."""
    scene, _ = walkthrough()
    plan = plan_windows(scene.num_views, WINDOW, OVERLAP)
    run = reconstruct_windows(windowed_truth(plan), plan, replace(FAST_INSTANCES, min_instance_size=20))
    returning = run.instances.labels[scene.instance_ids == RETURNING_OBJECT]
    ids, counts = np.unique(returning, return_counts=True)
    assert counts.max() / counts.sum() > 0.95, dict(zip(ids.tolist(), counts.tolist(), strict=True))
    before, after = (scene.instance_ids[:4] == RETURNING_OBJECT), (scene.instance_ids[16:] == RETURNING_OBJECT)
    assert (
        np.bincount(run.instances.labels[:4][before]).argmax() == np.bincount(run.instances.labels[16:][after]).argmax()
    )


@pytest.mark.parametrize("prefetch", [False, True])
def test_a_result_stored_on_disk_is_the_result_in_memory(tmp_path, prefetch):
    """With a store the capture's result is written to memory-mapped .npy files, which are the
    returned arrays, equal to the run in memory; so is a run that predicts the next window ahead."""
    scene, _ = walkthrough()
    plan = plan_windows(scene.num_views, WINDOW, OVERLAP)
    settings = replace(FAST_INSTANCES, min_instance_size=20)
    in_memory = reconstruct_windows(windowed_truth(plan), plan, settings)
    stored = reconstruct_windows(windowed_truth(plan), plan, settings, store=tmp_path, prefetch=prefetch)
    for name in ("depth", "world_points", "instance_feat", "extrinsic"):
        array = getattr(stored.predictions, name)
        assert isinstance(array, np.memmap) and Path(array.filename) == tmp_path / f"{name}.npy"
        np.testing.assert_array_equal(array, getattr(in_memory.predictions, name))
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), array)
    assert not stored.instances.labels.flags.owndata  # a view of the map, not a copy in memory
    np.testing.assert_array_equal(np.load(tmp_path / "instance_labels.npy"), in_memory.instances.labels)
    np.testing.assert_array_equal(stored.instances.pixel_counts, in_memory.instances.pixel_counts)
    np.testing.assert_allclose(stored.instances.centroids, in_memory.instances.centroids, atol=1e-6)


def corrupted_pair(fraction: float, seed: int = 0):
    """Windows 0 and 1 (window 0 already in the world), with ``fraction`` of window 1's shared
    points thrown far off at full confidence (a broken depth prediction)."""
    scene, _ = walkthrough()
    plan = plan_windows(scene.num_views, WINDOW, OVERLAP)
    predict = windowed_truth(plan)
    previous, current = predict(plan.windows[0]), predict(plan.windows[1])
    rng = np.random.default_rng(seed)
    points = current.world_points.copy()
    shared = points[:OVERLAP].reshape(-1, 3)
    broken = rng.random(len(shared)) < fraction
    shared[broken] += rng.normal(scale=5.0, size=(broken.sum(), 3))
    points[:OVERLAP] = shared.reshape(points[:OVERLAP].shape)
    return previous, replace(current, world_points=points), plan


def test_outliers_are_rejected_by_the_robust_fit():
    previous, current, plan = corrupted_pair(fraction=0.2)
    similarity, agreeing = fit_to_previous(previous, current, OVERLAP, "windows 0 and 1")
    truth = SCALES[0] / SCALES[1]
    assert similarity.scale == pytest.approx(truth, rel=1e-4)
    clean = to_world(current, similarity).extrinsic
    expected = exact_predictions(plan.windows[1], window_frame(walkthrough()[0], plan.windows[0], SCALES[0]))
    np.testing.assert_allclose(clean, expected.extrinsic, atol=1e-3)
    assert agreeing < 0.85 * previous.world_points[-OVERLAP:, ..., 0].size  # the broken fifth does not agree
    # the plain least-squares fit on the same pairs is pulled far off: the rejection is what fixes it
    plain = umeyama(current.world_points[:OVERLAP].reshape(-1, 3), previous.world_points[-OVERLAP:].reshape(-1, 3))
    assert abs(plain.scale / truth - 1) > 1e-2


def test_windows_whose_shared_frames_disagree_are_one_clear_line():
    previous, current, _ = corrupted_pair(fraction=0.9)
    with pytest.raises(InputError, match=r"^windows 0 and 1 share 2 frames but only \d+ of \d+ confident point pairs"):
        fit_to_previous(previous, current, OVERLAP, "windows 0 and 1")


def test_identity_alignment_changes_nothing():
    predictions = exact_predictions(range(3), Similarity.identity())
    moved = to_world(predictions, Similarity.identity())
    np.testing.assert_allclose(moved.extrinsic, predictions.extrinsic, atol=1e-6)
    np.testing.assert_array_equal(moved.depth, predictions.depth)


def test_a_capture_without_instances_gives_none():
    """No window finds an instance (all below the size floor): zero instances, not a crash."""
    scene, _ = walkthrough()
    plan = plan_windows(scene.num_views, WINDOW, OVERLAP)
    run = reconstruct_windows(windowed_truth(plan), plan, replace(FAST_INSTANCES, min_instance_size=10**6))
    assert run.instances.num_instances == 0
    assert not run.instances.labels.any() and run.instances.labels.shape == scene.instance_ids.shape


def disagreeing_run(strict: bool):
    """The walk-through with window 1's shared points thrown off (as corrupted_pair), in a whole run."""
    scene, _ = walkthrough()
    plan = plan_windows(scene.num_views, WINDOW, OVERLAP)
    truth = windowed_truth(plan)
    rng = np.random.default_rng(0)

    def predict(frames):
        window = truth(frames)
        if frames != plan.windows[1]:
            return window
        points = window.world_points.copy()
        points[:OVERLAP] += rng.normal(scale=5.0, size=points[:OVERLAP].shape).astype(np.float32)
        return replace(window, world_points=points)

    return reconstruct_windows(predict, plan, FAST_INSTANCES, strict=strict), scene


def test_a_window_its_overlap_does_not_confirm_is_reported_not_dropped():
    run, scene = disagreeing_run(strict=False)
    assert run.predictions.num_views == scene.num_views and run.instances.labels.shape[0] == scene.num_views
    assert len(run.notes) == 1, run.notes
    assert run.notes[0].startswith("windows 0 and 1 (frames 0-5 and 4-9) share 2 frames but only ")
    assert run.notes[0].endswith(
        "frames 5-23 are placed through this unconfirmed fit (a larger overlap or frames closer together tie them)"
    )
    with pytest.raises(InputError, match=r"^windows 0 and 1 .* use a larger overlap=3 or sample frames closer"):
        disagreeing_run(strict=True)


def test_every_frame_lies_in_a_window_and_is_taken_from_one():
    """No frame is left out of the windows, whatever the capture's length, window and overlap."""
    for frames in range(1, 60):
        for window in range(4, 14):
            for overlap in range(2, window):
                plan = plan_windows(frames, window, overlap)
                assert all(f in plan.windows[w] for f, w in enumerate(plan.owner))
                assert sorted(np.concatenate([plan.owned(i) + w.start for i, w in enumerate(plan.windows)])) == list(
                    range(frames)
                )
                assert all(len(plan.shared(i)) >= overlap for i in range(1, len(plan.windows)))
