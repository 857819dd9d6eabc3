"""A saved reconstruction read back into memory: the one entry point of every task.

Tasks never re-run the network: they start from the export folder that ``iggt reconstruct`` /
:meth:`iggt.inference.reconstruct.Reconstruction.save` wrote. The arrays come from
``predictions.npz`` and ``instances.npz`` through :meth:`Predictions.load` and
:meth:`Instances.load` (their layout is documented in :mod:`iggt.export.npz`); view names come
from ``reconstruction.json`` when it is there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from iggt.errors import InputError
from iggt.export.naming import view_names
from iggt.export.npz import INSTANCES_FILENAME, PREDICTIONS_FILENAME
from iggt.export.reconstruction import SUMMARY_FILENAME
from iggt.export.selection import check_matching
from iggt.structures import Instances, Predictions


@dataclass
class SavedResult:
    """A reconstruction of S views at the network's H x W, as saved.

    Attributes:
        folder: the export folder it was read from.
        predictions: images, cameras, depth (+ confidence), world points, features.
        instances: per-view instance ID maps (S, H, W) and the per-instance table.
        view_names: S names of the input views (file names), or view_000, ... when unknown.
    """

    folder: Path
    predictions: Predictions
    instances: Instances
    view_names: list[str]

    @property
    def num_views(self) -> int:
        return self.predictions.num_views

    def check_instance(self, instance_id: int) -> int:
        """The row of ``instance_id`` in the instance table; InputError naming the valid IDs otherwise."""
        ids = self.instances.ids.tolist()
        if instance_id not in ids:
            shown = ids if len(ids) <= 30 else ids[:30] + ["..."]
            raise InputError(f"no instance with ID {instance_id} in {self.folder}; IDs are {shown}")
        return ids.index(instance_id)

    def check_view(self, view: int) -> None:
        if not 0 <= view < self.num_views:
            raise InputError(f"view {view} is out of range; the result has views 0..{self.num_views - 1}")


def load_result(folder: str | Path) -> SavedResult:
    """Read an export folder; InputError with one line when it is not one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"result folder {folder} does not exist; pass the --out folder of `iggt reconstruct`")
    missing = [name for name in (PREDICTIONS_FILENAME, INSTANCES_FILENAME) if not (folder / name).is_file()]
    if missing:
        raise InputError(
            f"{folder} has no {' or '.join(missing)}; it must be written by `iggt reconstruct` with the npz format"
        )
    predictions = Predictions.load(folder / PREDICTIONS_FILENAME)
    instances = Instances.load(folder / INSTANCES_FILENAME)
    check_matching(predictions, instances)
    return SavedResult(folder, predictions, instances, _view_names(folder, predictions.num_views))


def _view_names(folder: Path, num_views: int) -> list[str]:
    """Input names from reconstruction.json, falling back to generated names when absent or inconsistent."""
    try:
        views = json.loads((folder / SUMMARY_FILENAME).read_text())["views"]
        names = [str(view["name"]) for view in views]
    except (OSError, ValueError, KeyError, TypeError):
        names = []
    return names if len(names) == num_views else view_names(num_views, "view", suffix="")
