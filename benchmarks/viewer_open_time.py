"""How long `iggt serve` takes to open a large result in a real browser (headless Chromium, WebGL
through SwiftShader, i.e. the CPU).

The result is made up (tests/view/planar_result.py: a wall seen by 20 cameras at 224 x 224, so
1,003,520 points, written by the real exporters). Timed:

- read: ``ResultLibrary.add``, i.e. ``load_result`` of predictions.npz and instances.npz, in a
  browser already started (as when a user opens a result from the page's list);
- open (cold): navigation, right after the read, to the frame shown with every point
  (``body[data-ready]``), including the server building the display buffers (point selection,
  feature PCA), which starts in the background when the result is registered; each cold trial
  registers a new hard-linked copy of the folder, so nothing is cached;
- open (warm): the last copy opened again, the buffers already built;
- the page's own measure (``iggtViewer.timings.open_ms``: its fetches, upload to WebGL, first draw).

Usage: python benchmarks/viewer_open_time.py [--views 20] [--cold 3] [--warm 2] [--max-points N]
Prints a table and writes benchmarks/results/viewer_open_time_cpu.json (``_drawn<N>`` added
when --max-points is not the default).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "view"))  # the test scene and browser set-up
from browser import launch  # noqa: E402
from planar_result import planar_result  # noqa: E402

from iggt.view.app import ViewerApp, ViewerConfig  # noqa: E402
from iggt.view.jobs import JobSettings  # noqa: E402
from iggt.view.scene_buffers import DEFAULT_MAX_DISPLAY_POINTS  # noqa: E402
from iggt.view.server import start_server, stop_server  # noqa: E402

RESULTS = Path(__file__).parent / "results"
BUDGET_S = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=20)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--cold", type=int, default=3, help="cold opens, each of a newly registered copy")
    parser.add_argument("--warm", type=int, default=2, help="warm opens of the last copy")
    parser.add_argument("--max-points", type=int, default=DEFAULT_MAX_DISPLAY_POINTS, help="points drawn (decimation)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="iggt-viewer-bench-") as scratch:
        scratch = Path(scratch)
        folder = planar_result(scratch / "result", args.views, args.size, args.size, block=28, formats=("npz",))
        work = scratch / "work"
        app = ViewerApp(
            ViewerConfig(
                work_dir=work,
                results_dir=work / "results",
                jobs=JobSettings("iggt-small", "cpu"),
                max_display_points=args.max_points,
            )
        )
        server = start_server(app)
        rows = []
        try:
            with sync_playwright() as playwright:
                context = launch(playwright, scratch / "profile")
                page = context.new_page()
                page.goto(server.url)
                for trial in range(args.cold + args.warm):
                    if trial < args.cold:  # a new folder (hard links: same bytes) is a new result: nothing cached
                        copy = shutil.copytree(folder, scratch / f"copy{trial}", copy_function=os.link)
                        start = time.perf_counter()
                        result_id = app.library.add(copy)
                        read_s = time.perf_counter() - start
                    start = time.perf_counter()
                    page.goto(f"{server.url}?result={result_id}")
                    page.wait_for_selector(f"body[data-ready='{result_id}']", timeout=60_000)
                    seconds = time.perf_counter() - start
                    page_timings = page.evaluate("iggtViewer.timings")
                    rows.append(
                        {
                            "trial": "cold" if trial < args.cold else "warm",
                            "read_s": round(read_s, 3) if trial < args.cold else 0.0,
                            "open_s": round(seconds, 3),
                            **{f"page_{k[:-3]}_s": round(v / 1000, 3) for k, v in page_timings.items()},
                        }
                    )
                points = page.evaluate("[iggtViewer.state.meta.num_points, iggtViewer.state.meta.num_pixels]")
                browser_version = page.evaluate("navigator.userAgent")
                context.close()
        finally:
            stop_server(server)
    report(args, points, rows, browser_version)


def report(args, points: list[int], rows: list[dict], browser_version: str) -> None:
    drawn, total = points
    print(f"{total:,} points ({args.views} views of {args.size} x {args.size}), {drawn:,} drawn")
    columns = ["read_s", "open_s", "page_fetch_s", "page_first_frame_s", "page_views_s", "page_open_s"]
    print(f"{'trial':<6} " + " ".join(f"{c:>18}" for c in columns))
    for row in rows:
        print(f"{row['trial']:<6} " + " ".join(f"{row[c]:>18.2f}" for c in columns))
    cold = [row["read_s"] + row["open_s"] for row in rows if row["trial"] == "cold"]
    print(f"read + cold open: median {np.median(cold):.2f} s, worst {max(cold):.2f} s (budget {BUDGET_S:.0f} s)")
    from importlib.metadata import version

    RESULTS.mkdir(exist_ok=True)
    record = {
        "benchmark": "viewer_open_time",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "playwright": version("playwright"),
            "browser": browser_version,
        },
        "renderer": "WebGL2 on SwiftShader (software)",
        "result_points": total,
        "drawn_points": drawn,
        "read_plus_cold_open_median_s": round(float(np.median(cold)), 3),
        "read_plus_cold_open_worst_s": round(max(cold), 3),
        "load_average": list(os.getloadavg()),
        "trials": rows,
        "budget_s": BUDGET_S,
    }
    suffix = "" if args.max_points == DEFAULT_MAX_DISPLAY_POINTS else f"_drawn{args.max_points}"
    path = RESULTS / f"viewer_open_time_cpu{suffix}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
