"""Instance IDs kept across the windows of a long capture, on an engine walk-through's exact labels.

Each window gets the ground-truth instance masks of its frames under its own random IDs (as
separate clustering runs would give) and features that are one vector per object plus noise; the
linking must recover one ID per object over the whole capture, also for object 10, which leaves
the view for two whole windows and comes back.
"""

import numpy as np

from iggt.inference.windows import plan_windows
from iggt.instances.linking import WindowInstances, link_consecutive, link_windows
from walkthrough import OVERLAP, RETURNING_OBJECT, WINDOW, object_features, walkthrough


def relabelled_windows(plan, seed: int = 0, noise: float = 0.1) -> list[WindowInstances]:
    """The walk-through's ground-truth masks, per window under a random permutation of its IDs."""
    scene, _ = walkthrough()
    rng = np.random.default_rng(seed)
    windows = []
    for frames in plan.windows:
        truth = scene.instance_ids[frames.start : frames.stop]
        present = np.unique(truth[truth > 0])
        local = rng.permutation(len(present)) + 1
        lookup = np.zeros(truth.max() + 1, np.int32)
        lookup[present] = local
        features = object_features(present) + rng.normal(scale=noise, size=(len(present), 16))
        features /= np.linalg.norm(features, axis=1, keepdims=True)
        order = np.argsort(local)
        windows.append(WindowInstances(frames, lookup[truth], local[order], features[order].astype(np.float32)))
    return windows


def link(windows, plan, features=None):
    scene, points = walkthrough()
    confidence = np.ones(scene.depth.shape, np.float32)
    features = object_features(scene.instance_ids) if features is None else features
    return link_windows(windows, plan.owner, points, confidence, features)


def ids_per_object(labels: np.ndarray, truth: np.ndarray) -> dict[int, set[int]]:
    return {int(obj): set(np.unique(labels[truth == obj]).tolist()) for obj in np.unique(truth[truth > 0])}


def test_every_object_keeps_one_id_over_the_whole_capture_also_after_leaving_the_view():
    scene, _ = walkthrough()
    plan = plan_windows(scene.num_views, WINDOW, OVERLAP)
    windows = relabelled_windows(plan)
    seen = [w for w in windows if (scene.instance_ids[w.frames.start : w.frames.stop] == RETURNING_OBJECT).any()]
    assert [plan.windows.index(w.frames) for w in seen] == [0, 3, 4, 5]  # gone for windows 1 and 2
    instances = link(windows, plan)
    found = ids_per_object(instances.labels, scene.instance_ids)
    assert all(len(ids) == 1 for ids in found.values()), found
    assert len({next(iter(ids)) for ids in found.values()}) == len(found)  # and no two objects share one
    returning = instances.labels[scene.instance_ids == RETURNING_OBJECT]
    first_frame = np.flatnonzero((scene.instance_ids == RETURNING_OBJECT).any((1, 2)))[0]
    assert set(returning.tolist()) == set(instances.labels[first_frame][scene.instance_ids[first_frame] == 10])


def test_ids_are_numbered_by_first_sight():
    scene, _ = walkthrough()
    plan = plan_windows(scene.num_views, WINDOW, OVERLAP)
    instances = link(relabelled_windows(plan, seed=3), plan)
    first_seen = [int(np.flatnonzero(row > 0)[0]) for row in instances.pixel_counts]
    assert instances.ids.tolist() == list(range(1, len(instances.ids) + 1))
    assert first_seen == sorted(first_seen)


def test_objects_with_different_features_are_not_merged_after_a_gap():
    """The returning object with features of another object is a new object: no shared frame vouches for it."""
    scene, _ = walkthrough()
    plan = plan_windows(scene.num_views, WINDOW, OVERLAP)
    features = object_features(scene.instance_ids)
    after_gap = np.zeros(scene.instance_ids.shape, bool)
    after_gap[plan.windows[3].start :] = scene.instance_ids[plan.windows[3].start :] == RETURNING_OBJECT
    features[after_gap] = object_features(np.array([1]), seed=99)[0]  # the object looks different when back
    instances = link(relabelled_windows(plan), plan, features)
    found = ids_per_object(instances.labels, scene.instance_ids)
    returning = instances.labels[scene.instance_ids == RETURNING_OBJECT]
    assert len(set(returning.tolist())) == 2  # before and after the gap
    assert all(len(ids) == 1 for obj, ids in found.items() if obj != RETURNING_OBJECT)


def test_consecutive_windows_link_by_their_shared_pixels():
    scene, _ = walkthrough()
    plan = plan_windows(scene.num_views, WINDOW, OVERLAP)
    earlier, later = relabelled_windows(plan)[:2]
    links = link_consecutive(earlier, later)
    shared = scene.instance_ids[later.frames.start : earlier.frames.stop]
    for obj in np.unique(shared):
        local_later = int(later.labels[: len(shared)][shared == obj][0])
        local_earlier = int(earlier.labels[-len(shared) :][shared == obj][0])
        assert links[local_later] == local_earlier
    assert len(links) == len(np.unique(shared))  # nothing else is linked
