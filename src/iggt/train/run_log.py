"""What a run records: a JSONL and a CSV line per logged step, TensorBoard scalars, throughput.

The JSONL/CSV pair is the plain record meant to be committed; on resume, lines past the resumed
step (logged by a run that stopped before its next checkpoint) are dropped so the record follows
the trajectory that actually continues.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path

logger = logging.getLogger(__name__)

JSONL_FILENAME = "log.jsonl"
CSV_FILENAME = "log.csv"


class RunLog:
    """Appends one record per logged step to log.jsonl, log.csv and TensorBoard (main rank only)."""

    def __init__(self, output_dir: Path, resume_step: int, tensorboard: bool = True) -> None:
        self.jsonl_path = Path(output_dir) / JSONL_FILENAME
        self.csv_path = Path(output_dir) / CSV_FILENAME
        self.records = _read_records(self.jsonl_path, resume_step)
        self.columns: list[str] = []
        self._rewrite()
        self.writer = _tensorboard_writer(Path(output_dir) / "tensorboard", resume_step) if tensorboard else None

    def write(self, record: dict) -> None:
        """Append ``record`` ({"step": int, name: float, ...})."""
        self.records.append(record)
        if list(record) == self.columns:
            with open(self.jsonl_path, "a") as stream:
                stream.write(json.dumps(record) + "\n")
            with open(self.csv_path, "a", newline="") as stream:
                csv.DictWriter(stream, self.columns).writerow(record)
        else:
            self._rewrite()
        if self.writer is not None:
            for name, value in record.items():
                if name != "step":
                    self.writer.add_scalar(name, value, record["step"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def _rewrite(self) -> None:
        """Write both files from self.records (the CSV's columns are the union of all keys)."""
        with open(self.jsonl_path, "w") as stream:
            stream.writelines(json.dumps(record) + "\n" for record in self.records)
        self.columns = list(dict.fromkeys(key for record in self.records for key in record))
        with open(self.csv_path, "w", newline="") as stream:
            if self.columns:
                writer = csv.DictWriter(stream, self.columns)
                writer.writeheader()
                writer.writerows(self.records)


def _tensorboard_writer(directory: Path, resume_step: int):
    """A SummaryWriter, or None (with a warning) where tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        logger.warning("tensorboard is not installed: logging to log.jsonl and log.csv only")
        return None
    return SummaryWriter(str(directory), purge_step=resume_step + 1)


def _read_records(path: Path, resume_step: int) -> list[dict]:
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [record for record in records if record["step"] <= resume_step]


class Throughput:
    """Samples and views per second between two calls of :meth:`rates`."""

    def __init__(self) -> None:
        self.last_time = time.perf_counter()
        self.samples = 0

    def add(self, samples: int) -> None:
        self.samples += samples

    def rates(self, views_per_sample: int) -> dict[str, float]:
        now = time.perf_counter()
        elapsed = max(now - self.last_time, 1e-9)
        samples_per_second = self.samples / elapsed
        self.last_time, self.samples = now, 0
        return {"samples_per_s": samples_per_second, "views_per_s": samples_per_second * views_per_sample}
