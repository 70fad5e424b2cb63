"""Throughput and peak worker memory of reports in each format, through the service path.

Every run is a fresh process (peak RSS, ``ru_maxrss``, belongs to it alone)
doing what a worker does: claim, generate (rows streamed to the writer),
post-process (gzip when asked, checksum, size) and store, on the table of
``csv_report.py``. Bare ``COPY`` of the same query runs in the same go, and each
format's time is printed as a multiple of it.

    .venv/bin/python benchmarks/report_formats.py --rows 1000000
    .venv/bin/python benchmarks/report_formats.py --rows 100000 --runs csv,xlsx  # flat memory?

``run.py`` runs these formats next to every other contender, with charts.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from csv_report import ROOT, prepare, run_copy, service_report

# name -> (format, compress)
RUNS = {
    "csv": ("csv", False),
    "csv.gz": ("csv", True),
    "xlsx": ("xlsx", False),
    "ndjson": ("ndjson", False),
    "json.gz": ("json", True),
}


def child(name: str, out: str) -> None:
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    if name == "copy":
        started = time.perf_counter()
        rows = run_copy(path / "copy.csv")
        result = {"seconds": time.perf_counter() - started, "rows": rows,
                  "post_process_seconds": 0.0,
                  "file_mib": (path / "copy.csv").stat().st_size / 2**20}  # fmt: skip
    else:
        result = service_report(path, *RUNS[name])
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--runs", default=",".join(RUNS), help="comma-separated: " + ", ".join(RUNS)
    )
    parser.add_argument("--child", nargs=2, metavar=("RUN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    prepare(args.rows)
    tmp = ROOT / ".bench" / "formats"
    names = ["copy", *[n.strip() for n in args.runs.split(",") if n.strip()]]
    results = {}
    for name in names:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", name, str(tmp / name)],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode:
            sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    copy_s = results["copy"]["seconds"]
    print(f"{args.rows:,} rows, one run each, measured in this run")
    print(
        f"{'run':8} {'seconds':>8} {'rows/s':>9} {'x COPY':>7} {'post s':>7} "
        f"{'file MiB':>9} {'RSS MiB':>8}"
    )
    for name, r in results.items():
        if name != "copy":
            assert r["rows"] == args.rows, (name, r["rows"])
        rate = args.rows / r["seconds"]  # COPY does not count its rows
        print(
            f"{name:8} {r['seconds']:8.2f} {rate:9,.0f} {r['seconds'] / copy_s:7.2f} "
            f"{r['post_process_seconds']:7.1f} {r['file_mib']:9.1f} {r['peak_mib']:8.0f}"
        )


if __name__ == "__main__":
    main()
