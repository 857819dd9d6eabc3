"""Writing benchmark results: per-scene CSV, summary JSON and a Markdown table.

Machine-readable files (CSV, JSON) hold the metrics as computed (fractions, ground-truth units);
the Markdown table prints the paper's units: percentages (x100) for every fraction and for AbsRel.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from iggt.eval.intervals import bootstrap_mean

PER_SCENE_CSV = "per_scene.csv"
SUMMARY_JSON = "summary.json"
TABLE_MD = "results.md"

TASK_COLUMNS: dict[str, tuple[str, ...]] = {
    "depth": ("abs_rel", "delta_1.25", "tau_1.03"),
    "points": ("accuracy", "completeness", "chamfer", "normal_consistency"),
    "cameras": ("rra@5", "rta@5", "rra@15", "rta@15", "rra@30", "rta@30", "auc@30"),
    "instances": ("t_miou", "t_sr", "id_consistency", "num_objects", "num_matched", "num_predicted"),
    "semantic": ("miou_2d", "macc_2d", "miou_3d", "macc_3d"),
}
# Printed x100 in the Markdown table (as the paper does); others are printed as they are.
PERCENT_COLUMNS = {
    "abs_rel", "delta_1.25", "tau_1.03", "normal_consistency", "rra@5", "rta@5", "rra@15", "rta@15",
    "rra@30", "rta@30", "auc@30", "t_miou", "t_sr", "id_consistency", "miou_2d", "macc_2d", "miou_3d", "macc_3d",
}  # fmt: skip
TABLE_EXCLUDED = {"num_objects", "num_matched", "num_predicted"}


def metric_columns(tasks: Sequence[str]) -> list[str]:
    """The metric columns of the selected tasks, in the order of :data:`TASK_COLUMNS`."""
    return [column for task in TASK_COLUMNS if task in tasks for column in TASK_COLUMNS[task]]


def summarise(rows: list[dict], columns: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """{method: {column: mean over the scenes where it is defined (None if nowhere)}}."""
    return {
        method: {column: float(np.mean(values)) if values else None for column, values in by_column.items()}
        for method, by_column in _defined_values(rows, columns).items()
    }


def interval_summary(rows: list[dict], columns: Sequence[str]) -> dict[str, dict[str, list[float] | None]]:
    """{method: {column: [low, high] bootstrap 95 % interval of its mean over scenes (None if undefined)}}."""
    intervals: dict[str, dict[str, list[float] | None]] = {}
    for method, by_column in _defined_values(rows, columns).items():
        intervals[method] = {}
        for column, values in by_column.items():
            interval = bootstrap_mean(np.array(values, dtype=np.float64)) if values else None
            intervals[method][column] = [interval.low, interval.high] if interval else None
    return intervals


def _defined_values(rows: list[dict], columns: Sequence[str]) -> dict[str, dict[str, list[float]]]:
    """{method (in row order): {column: its values over the scenes where it is defined}}."""
    values: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        by_column = values.setdefault(row["method"], {column: [] for column in columns})
        for column in columns:
            if _defined(row.get(column)):
                by_column[column].append(row[column])
    return values


def _defined(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _replace_all(texts: dict[Path, str]) -> None:
    """Write every file to a temporary first, then rename each into place, so a report is never
    half written and a full disk leaves the previous reports whole."""
    temporaries = {path: path.with_name(path.name + ".tmp") for path in texts}
    try:
        for path, text in texts.items():
            temporaries[path].write_text(text)
    except BaseException:
        for temporary in temporaries.values():
            temporary.unlink(missing_ok=True)
        raise
    for path, temporary in temporaries.items():
        os.replace(temporary, path)


def csv_text(rows: list[dict], columns: Sequence[str]) -> str:
    """per_scene.csv: one line per (scene, method); empty cells where a metric does not apply or is undefined."""
    header = ["scene", "method", "num_views", *columns, "seconds"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_csv_cell(row.get(key)) for key in header] for row in rows)
    return buffer.getvalue()


def _csv_cell(value) -> str:
    if not _defined(value):
        return ""
    return repr(float(value)) if isinstance(value, float | np.floating) else str(value)


def summary_text(summary: dict, metadata: dict, intervals: dict | None = None) -> str:
    """summary.json: the run's metadata, the per-method means and their 95 % intervals over scenes."""
    record = {**metadata, "metrics": summary}
    if intervals is not None:
        record["intervals_95"] = intervals
    return json.dumps(record, indent=2, sort_keys=False) + "\n"


def markdown_table(summary: dict, columns: Sequence[str], num_scenes: int, intervals: dict | None = None) -> str:
    """A Markdown table with one row per method ("-" where a metric does not apply), then, given
    ``intervals``, the same table of their 95 % intervals over scenes."""
    shown = [column for column in columns if column not in TABLE_EXCLUDED]
    header = "| method | " + " | ".join(_header(column) for column in shown) + " |\n|---|" + "---|" * len(shown)
    lines = [header]
    for method, means in summary.items():
        cells = [_table_cell(means.get(column), column) for column in shown]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    note = (
        f"\nMeans over {num_scenes} scene(s). Columns marked (%) are x100 (AbsRel too, as in the paper); "
        "accuracy, completeness and chamfer are in ground-truth units after Sim(3) alignment.\n"
    )
    if intervals is None:
        return "\n".join(lines) + "\n" + note
    bounds = [header]
    for method, columns_bounds in intervals.items():
        cells = [_interval_cell(columns_bounds.get(column), column) for column in shown]
        bounds.append(f"| {method} | " + " | ".join(cells) + " |")
    interval_note = (
        "\n95 % intervals of the means above, by bootstrap over the scenes (10,000 resamplings, "
        "iggt.eval.intervals): what another draw of as many scenes could give. Compare two runs with "
        "benchmarks/compare_evals.py, whose paired differences are much narrower.\n"
    )
    return "\n".join(lines) + "\n" + note + "\n" + "\n".join(bounds) + "\n" + interval_note


def _header(column: str) -> str:
    return f"{column} (%)" if column in PERCENT_COLUMNS else column


def _interval_cell(bounds: list[float] | None, column: str) -> str:
    if bounds is None:
        return "-"
    return " - ".join(_table_cell(value, column) for value in bounds)


def _table_cell(value, column: str) -> str:
    if not _defined(value):
        return "-"
    return f"{100 * value:.2f}" if column in PERCENT_COLUMNS else f"{value:.4f}"


def write_reports(rows: list[dict], tasks: Sequence[str], metadata: dict, out_dir: Path) -> dict:
    """Write per_scene.csv, summary.json and results.md into ``out_dir``; return the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = metric_columns(tasks)
    summary = summarise(rows, columns)
    intervals = interval_summary(rows, columns)
    num_scenes = len({row["scene"] for row in rows})
    _replace_all(
        {
            out_dir / PER_SCENE_CSV: csv_text(rows, columns),
            out_dir / SUMMARY_JSON: summary_text(summary, metadata, intervals),
            out_dir / TABLE_MD: markdown_table(summary, columns, num_scenes, intervals),
        }
    )
    return summary
