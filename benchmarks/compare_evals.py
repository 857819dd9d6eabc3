"""Whether the benchmark tells two models apart: two `iggt eval` folders, per metric each mean over
scenes with its bootstrap 95 % interval, and the paired difference (second - first) with its own.

    python benchmarks/compare_evals.py <eval folder A> <eval folder B> [--method NAME] [--out results.json]

A difference is "resolved" when its interval leaves out 0 (iggt.eval.compare). Use it before
choosing between two sets of weights on a metric: on 16 scenes many differences are not.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from dataclasses import asdict
from pathlib import Path

from iggt.errors import InputError
from iggt.eval.compare import compare_runs, read_per_scene
from iggt.eval.intervals import BOOTSTRAP_SAMPLES

SCALE = {
    name: 1.0
    for name in ("abs_rel", "accuracy", "completeness", "chamfer", "num_objects", "num_matched", "num_predicted")
}
"""Metrics shown as they are (AbsRel, distances, counts); every other one (fractions) in %."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--method", help="the method's rows to compare (default: each file's first, the model)")
    parser.add_argument("--out", type=Path, help="write the table as JSON here")
    args = parser.parse_args()
    try:
        first_method, first = read_per_scene(args.first, args.method)
        second_method, second = read_per_scene(args.second, args.method)
        table = compare_runs(first, second)
    except InputError as error:
        sys.exit(f"error: {error}")
    print(
        f"{len(first)} scenes; first: {args.first.name} ({first_method}), second: {args.second.name} ({second_method})"
    )
    print(f"{'metric':<20} {'first [95 %]':>24} {'second [95 %]':>24} {'difference [95 %]':>26}  resolved")
    for metric, row in table.items():
        scale = SCALE.get(metric, 100.0)
        cells = [f"{r.mean * scale:8.3f} [{r.low * scale:.3f}, {r.high * scale:.3f}]" for r in row.values()]
        resolved = "yes" if row["difference"].resolved else "no"
        print(f"{metric:<20} {cells[0]:>24} {cells[1]:>24} {cells[2]:>26}  {resolved}")
    if args.out:
        record = {
            "first": args.first.name,
            "second": args.second.name,
            "method": [first_method, second_method],
            "scenes": len(first),
            "bootstrap_samples": BOOTSTRAP_SAMPLES,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "metrics": {
                m: {k: {**asdict(v), "resolved": v.resolved} for k, v in row.items()} for m, row in table.items()
            },
        }
        args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
