"""Throughput and peak worker memory of 1M-row reports in each format, through the service path.

Every run is a fresh process (peak RSS, ``ru_maxrss``, belongs to it alone)
doing what a worker does: claim, generate (rows streamed to the writer),
post-process (gzip when asked, checksum, size) and store, on the table of
``csv_report.py``. Printed side by side with reference figures measured on
this kind of machine (2 cores): COPY, and the bare xlsxwriter / openpyxl
workbooks, which write values_list rows with no report machinery at all.

    .venv/bin/python benchmarks/report_formats.py --rows 1000000
    .venv/bin/python benchmarks/report_formats.py --rows 100000 --runs csv,xlsx  # flat memory?

Measured 2026-11-28, one run (rows/s, x COPY time, peak RSS; RSS at 100k rows in brackets):
COPY 970k 1.0x 35 MiB; csv 153k 6.3x 86 (83) MiB; csv.gz 130k 7.5x 84 (84) MiB;
xlsx 17.6k 55x 85 (85) MiB; ndjson 106k 9.2x 84 (84) MiB; json.gz 90k 10.7x 84 (84) MiB.
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
# Anchors (1M rows, this kind of machine): label, rows/s, x COPY time, peak RSS MiB.
ANCHORS = {
    "csv": ("ORM values_list().iterator() + csv.writer", 70_000, 9.3, 60),
    "csv.gz": ("COPY streamed through gzip level 1", 488_000, 1.3, 40),
    "xlsx": ("xlsxwriter constant_memory, bare loop", 11_100, 58, 62),
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
    print(f"{args.rows:,} rows, one run each; anchors: reference figures, 1M rows, 2-core machine")
    print(f"{'run':8} {'rows/s':>9} {'xCOPY':>6} {'post s':>7} {'file MiB':>9} {'RSS MiB':>8} | "
          f"{'anchor':42} {'rows/s':>8} {'xCOPY':>6} {'RSS':>4}")  # fmt: skip
    for name, r in results.items():
        rate = args.rows / r["seconds"]  # COPY does not count its rows
        if name != "copy":
            assert r["rows"] == args.rows, (name, r["rows"])
        label, a_rate, a_ratio, a_rss = ANCHORS.get(name, ("", 0, 0, 0))
        if name == "copy":
            label, a_rate, a_ratio, a_rss = "COPY ... TO STDOUT via psycopg 3", 644_000, 1.0, 38
        anchor = f"{label:42} {a_rate:8,} {a_ratio:6.1f} {a_rss:4}" if label else ""
        ratio, post = r["seconds"] / copy_s, r["post_process_seconds"]
        print(f"{name:8} {rate:9,.0f} {ratio:6.1f} {post:7.1f} "
              f"{r['file_mib']:9.1f} {r['peak_mib']:8.0f} | {anchor}")  # fmt: skip


if __name__ == "__main__":
    main()
