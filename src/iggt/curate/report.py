"""What a curation run did: instances found, frames, and every rejected mask with its reason."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPORT_FILE = "curation_report.json"


@dataclass(frozen=True)
class RejectedMask:
    """A mask that got no instance: its frame, where it came from, and why."""

    frame: str
    source: str
    reason: str


@dataclass
class CurationReport:
    """Summary of one curated scene.

    Attributes:
        path: "masks", "mesh" or "video" (which curation path made it).
        scene: the scene folder's name.
        frames: frame names, in order.
        masks: masks read (path A) or 2D proposals given (path B).
        instances: one row per instance: id, frames it appears in, pixels, masks merged into it.
        rejected: every mask that got no instance.
        labelled_fraction: fraction of the pixels that could carry an ID and do: of the masked pixels
            (paths A and C), of the pixels with valid depth (path B).
        thresholds: the configuration used, field by field.
        notes: further measured facts (e.g. path B's agreement with sensor depth).
    """

    path: str
    scene: str
    frames: list[str]
    masks: int
    instances: list[dict]
    rejected: list[RejectedMask]
    labelled_fraction: float
    thresholds: dict
    notes: dict = field(default_factory=dict)

    def reasons(self) -> dict[str, int]:
        """Rejected masks per reason."""
        counts: dict[str, int] = {}
        for rejected in self.rejected:
            counts[rejected.reason] = counts.get(rejected.reason, 0) + 1
        return dict(sorted(counts.items()))

    def summary(self) -> str:
        """One line for the terminal."""
        reasons = ", ".join(f"{count} {reason}" for reason, count in self.reasons().items()) or "none"
        return (
            f"{self.scene}: {len(self.instances)} instances over {len(self.frames)} frames from {self.masks} masks; "
            f"{100 * self.labelled_fraction:.1f}% of pixels labelled; rejected: {reasons}"
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["rejected_by_reason"] = self.reasons()
        return data

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path
