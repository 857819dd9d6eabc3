"""The instance step's parts: recorded inside instance_profile only, nested parts left out of the outer."""

import time

import numpy as np
from synthetic_groups import CHANNELS, features_for, group_map, make_predictions, separated_unit_vectors

import iggt.instances.profile as profile
from iggt.instances import extract_instances
from iggt.instances.profile import instance_profile, timed_part


def test_nested_parts_add_up_to_the_outer_block(monkeypatch):
    clock = iter(range(100))  # each reading of the clock is one second later
    monkeypatch.setattr(profile.time, "perf_counter", lambda: float(next(clock)))
    with instance_profile() as parts:
        with timed_part("outer"):  # reads 0 ... 5
            with timed_part("inner"):  # 1, 2
                pass
            with timed_part("inner"):  # 3, 4
                pass
        with timed_part("inner"):  # 6, 7
            pass
    assert parts == {"outer": 3.0, "inner": 3.0}
    with timed_part("outer"):  # no profile open: nothing is read or recorded
        pass
    assert parts == {"outer": 3.0, "inner": 3.0} and next(clock) == 8


def test_extract_instances_records_its_parts(rng):
    groups = group_map()
    predictions = make_predictions(features_for(groups, separated_unit_vectors(6, CHANNELS, 0.8, rng), 0.03, rng))
    start = time.perf_counter()
    with instance_profile() as parts:
        instances = extract_instances(predictions)
    wall = time.perf_counter() - start
    assert list(parts) == ["points", "clustering", "assignment", "majority filter", "lifting"]  # the step's order
    assert all(seconds >= 0 for seconds in parts.values()) and sum(parts.values()) <= wall
    assert np.array_equal(extract_instances(predictions).labels, instances.labels)  # no profile: same result
