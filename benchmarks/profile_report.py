"""Where a report's time goes: pyinstrument over the rows path and the COPY fast path.

Each path runs one CSV report of the deterministic ``bench_orders`` table (the
table of ``csv_report.py``) through the service layer (claim, generate,
post-process) in a process of its own, under pyinstrument's sampling profiler
(1 ms). Django start-up and ``migrate`` are outside the profile. For each path
it writes ``profile-<path>.html`` (the interactive call tree) and
``profile-<path>.txt`` (the same tree as text) and prints the functions with
the most self time: what the remaining seconds are spent on.

    .venv/bin/pip install -e ".[test,bench]"
    .venv/bin/python benchmarks/profile_report.py --rows 300000 --out benchmarks/results

A sampling profiler adds little per row, but the profiled seconds are not the
benchmark's: ``run.py`` measures, this script explains.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import csv_report
from bench_django import (
    ROOT,
    register_cursor_generator,
    register_queryset_generator,
    run_report,
    setup_django,
)

PATHS = {
    "rows_path": "rows path (server-side cursor generator, csv.writer)",
    "queryset_rows": "QuerySet generator, rows path (.iterator(), csv.writer)",
    "fast_path": "QuerySet generator, COPY fast path",
}
TOP = 15


def self_times(frame, totals: dict[str, float]) -> None:
    """Add each function's self time (time in it, not in what it calls) to ``totals``."""
    if not frame.is_synthetic:
        where = f"{frame.file_path_short}:{frame.line_no}"
        totals[f"{frame.function} ({where})"] += frame.total_self_time
    for child in frame.children:
        self_times(child, totals)


def child(path: str, out: Path) -> None:
    from pyinstrument import Profiler

    with tempfile.TemporaryDirectory() as folder:
        setup_django(Path(folder))
        if path == "rows_path":
            report_type = register_cursor_generator()
        else:
            report_type = register_queryset_generator(fast=path == "fast_path")
        profiler = Profiler(interval=0.001)
        profiler.start()
        result = run_report(report_type)
        profiler.stop()
    (out / f"profile-{path}.html").write_text(profiler.output_html())
    (out / f"profile-{path}.txt").write_text(profiler.output_text(unicode=True, color=False))
    totals: dict[str, float] = defaultdict(float)
    root = profiler.last_session.root_frame() if profiler.last_session else None
    if root is not None:
        self_times(root, totals)
    top = sorted(totals.items(), key=lambda item: item[1], reverse=True)[:TOP]
    print(json.dumps({"seconds": result["seconds"], "rows": result["rows"], "top": top}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--paths", default=",".join(PATHS), help=", ".join(PATHS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.child:
        child(args.child, args.out)
        return
    csv_report.prepare(args.rows)
    for path in [p.strip() for p in args.paths.split(",") if p.strip()]:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", path, "--out", str(args.out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            sys.exit(f"{path} failed:\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"\n{PATHS[path]}: {result['rows']:,} rows in {result['seconds']:.2f} s (profiled)")
        print(f"  {'self s':>7} {'share':>6}  function (file:line)")
        for name, seconds in result["top"]:
            print(f"  {seconds:7.2f} {seconds / result['seconds']:6.1%}  {name}")
        print(f"  call tree: {args.out / f'profile-{path}.html'} and .txt")


if __name__ == "__main__":
    main()
