"""Dataset classes for predicted instances through an image-text backend: the labeller `iggt eval` uses.

Evaluation is closed-set, as in the paper: every instance takes the best of the dataset's class
names (embedded with the prompt), never "other". The predicted label maps are lifted to an
in-memory result, so labelling goes through exactly the code of `iggt segment`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from iggt.instances import lift_instances
from iggt.structures.predictions import Predictions
from iggt.tasks.backends.base import ImageTextBackend
from iggt.tasks.open_vocab import OpenVocabConfig, segment
from iggt.tasks.result import SavedResult

CLOSED_SET = -2.0
"""An other-threshold below every cosine (>= -1 up to rounding): every instance takes its best class."""


def backend_labeller(backend: ImageTextBackend, prompt: str = OpenVocabConfig.prompt, method: str = "auto"):
    """A labeller (:data:`iggt.eval.semantic.Labeller`) that asks ``backend`` for each instance's class."""
    config = OpenVocabConfig(method=method, prompt=prompt, other_threshold=CLOSED_SET)

    def label(predictions: Predictions, instance_labels: np.ndarray, truth, class_names: dict[int, str]):
        return instance_classes(predictions, instance_labels, class_names, backend, config)

    return label


def instance_classes(
    predictions: Predictions,
    instance_labels: np.ndarray,
    class_names: dict[int, str],
    backend: ImageTextBackend,
    config: OpenVocabConfig,
) -> dict[int, int]:
    """{instance ID: class ID} for the instances of (S, H, W) ``instance_labels``, by ``backend``."""
    if not (instance_labels > 0).any():
        return {}
    instances = lift_instances(
        instance_labels.astype(np.int32),
        predictions.world_points,
        predictions.world_points_conf,
        predictions.instance_feat,
    )
    names = [f"view_{view:03d}" for view in range(predictions.num_views)]
    result = SavedResult(Path("in-memory"), predictions, instances, names)
    class_ids = sorted(class_names)
    labels = segment(result, backend, [class_names[c] for c in class_ids], config)
    return {label.instance_id: class_ids[label.class_id - 1] for label in labels}
