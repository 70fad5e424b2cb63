"""What a report costs beyond its rows: one CSV report's time, phase by phase, from 1 row up.

    .venv/bin/python benchmarks/fixed_costs.py --sizes 1,1000,10000,100000 --repeat 5

For each size the deterministic ``bench_orders`` table is built
(``csv_report.prepare``), then a process of its own runs whole CSV reports of
it through the service layer in-process, as ``bench_django.run_report`` runs
one (``claim_report``, ``generate``, ``post_process``), on three paths taking
turns: the rows path (a generator reading a server-side cursor), the COPY
fast path (a generator returning a ``values_list`` QuerySet) and the rows path
with ``compress=True``; bare ``COPY`` of the same rows takes its turn too.
A warm-up round of each comes first (imports, connections, caches: a worker
that has run a report before pays none of them).

The phases are timed from outside: this process (only) replaces the service
layer's own functions with timing wrappers. A phase's time is its own (a
phase called inside another is taken out of the outer one's), so the phases
add up to the total:

- **claim**: ``lifecycle.claim_report``: the PENDING -> PROCESSING transition,
  the row loaded with its user, the progress cache reset, the ``claimed`` event
  and the ``report_started`` signal.
- **count**: the generator's ``count()`` (a ``count(*)`` query here).
- **plan**: ``generation.copy_plan``: on the fast path ``plan_copy``'s
  ``LIMIT 0`` query for the column types; next to nothing on the rows path.
- **rows**: ``generation.write_rows`` (rows path: ``rows()`` read, the CSV
  writer, progress and cancel checks per batch) or ``copy_export.copy_rows``
  (fast path: ``COPY`` on a connection of its own, into the temporary file).
- **store**: the report storage's ``save`` of the finished temporary file
  (local storage: a copy into ``MEDIA_ROOT``).
- **gen. rest**: the rest of ``generate()``: the generator and its parameters,
  the first progress write (a conditional UPDATE and the cache), the writer and
  its header, the temporary file, the PROCESSING update recording the file, the
  ``Finalising`` cache write, the row reloaded.
- **hand-over**: ``outbox.send`` of the next step (post-processing after
  generation, notification after completion): a publish to the broker, with its
  confirm, and the UPDATE clearing the step. The notification itself is not
  run: no e-mail, no webhook.
- **checksum**: ``files.measure``: the stored file read back for its size and
  sha256 (uncompressed reports).
- **gzip**: ``files.compress``: the stored file read back, gzipped into a
  temporary file, its sha256, the ``.gz`` stored (``compress=True``).
- **complete**: the rest of ``post_process()``: the row loaded, the COMPLETED
  transition, the original deleted (gzip), the report's folder swept, the cache
  and the ``completed`` event.
- **total**: claim to completed, as ``bench_django.run_report`` times it.
- **fixed %**: (total - rows) / total: the share of the report that is not
  its rows. **COPY**: bare ``COPY ... TO STDOUT`` of the same rows into a file
  (connection included), in the same process and rounds.

Each figure is the run whose total is the median of ``--repeat`` runs
(``--stat best``: the fastest run), so its phases still add up to its total.
Everything printed is measured in this run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import csv_report
from bench_django import (
    ROOT,
    register_cursor_generator,
    register_queryset_generator,
    run_report,
    setup_django,
)

#: Phase: its column heading (in the order a report runs them).
PHASES = {
    "claim": "claim",
    "count": "count",
    "plan": "plan",
    "rows": "rows",
    "store": "store",
    "generate": "gen.rest",
    "hand_over": "hand-over",
    "checksum": "checksum",
    "gzip": "gzip",
    "complete": "complete",
}
#: Path: (its label, the generator to register, compress).
PATHS: dict[str, tuple[str, Callable[[], str], bool]] = {
    "rows": ("rows path (cursor generator), csv", register_cursor_generator, False),
    "fast": (
        "COPY fast path (QuerySet generator), csv",
        functools.partial(register_queryset_generator, fast=True),
        False,
    ),
    "rows_gz": (
        "rows path (cursor generator), csv, compress=True",
        register_cursor_generator,
        True,
    ),
}
FOLDER = ROOT / ".bench" / "fixed_costs"


class PhaseClock:
    """Own time per phase of the functions it wraps; a phase inside another is not the outer's."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._open: list[list[Any]] = []  # [phase, started, time in inner phases], innermost last

    def reset(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)

    def wrap(self, owner: Any, attr: str, phase: str, *, within: str | None = None) -> None:
        """Time ``owner.attr`` as ``phase`` (only when called directly inside ``within``)."""
        original = getattr(owner, attr)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if within is not None and (not self._open or self._open[-1][0] != within):
                return original(*args, **kwargs)
            self._open.append([phase, time.perf_counter(), 0.0])
            try:
                return original(*args, **kwargs)
            finally:
                _, started, inner = self._open.pop()
                elapsed = time.perf_counter() - started
                self.seconds[phase] = self.seconds.get(phase, 0.0) + elapsed - inner
                if self._open:
                    self._open[-1][2] += elapsed

        setattr(owner, attr, timed)


def install(clock: PhaseClock, report_types: set[str]) -> None:
    """Wrap the service layer's functions (in this process only) with ``clock``'s timers."""
    from django_async_reports import services
    from django_async_reports.registry import registry
    from django_async_reports.services import copy_export, files, generation, outbox
    from django_async_reports.storage import report_storage

    # run_report calls these three through the services package.
    clock.wrap(services, "claim_report", "claim")
    clock.wrap(services, "generate", "generate")
    clock.wrap(services, "post_process", "complete")
    for report_type in report_types:
        clock.wrap(registry.get(report_type), "count", "count")
    clock.wrap(generation, "copy_plan", "plan")
    clock.wrap(generation, "write_rows", "rows")
    clock.wrap(copy_export, "copy_rows", "rows")
    # generate()'s own save; the .gz that files.compress saves is gzip's time.
    clock.wrap(report_storage, "save", "store", within="generate")
    clock.wrap(outbox, "send", "hand_over")
    clock.wrap(files, "measure", "checksum")
    clock.wrap(files, "compress", "gzip")


def timed_report(clock: PhaseClock, report_type: str, compress: bool) -> dict[str, float]:
    """One report through the service layer: each phase's ms and the total ms."""
    clock.reset()
    result = run_report(report_type, "csv", compress)
    Path(result["path"]).unlink()  # keep the media folder small
    run = {phase: seconds * 1000 for phase, seconds in clock.seconds.items()}
    run["total"] = result["seconds"] * 1000
    run["rows_written"] = result["rows"]
    return run


def timed_copy() -> dict[str, float]:
    out = FOLDER / "copy.csv"
    started = time.perf_counter()
    csv_report.run_copy(out)
    seconds = time.perf_counter() - started
    out.unlink()
    return {"total": seconds * 1000}


def child(rows: int, paths: list[str], repeat: int) -> None:
    """Warm up, then ``repeat`` rounds of every path and bare COPY; print every run as JSON."""
    setup_django(FOLDER)
    types = {path: PATHS[path][1]() for path in paths}
    clock = PhaseClock()
    install(clock, set(types.values()))
    runs: dict[str, list[dict[str, float]]] = {path: [] for path in [*paths, "copy"]}
    for round_ in range(repeat + 1):  # round 0 is the warm-up
        for path in paths:
            run = timed_report(clock, types[path], PATHS[path][2])
            assert run["rows_written"] == rows, (path, run["rows_written"], rows)
            if round_:
                runs[path].append(run)
        run = timed_copy()
        if round_:
            runs["copy"].append(run)
    print(json.dumps(runs))


def pick(runs: list[dict[str, float]], stat: str) -> dict[str, float]:
    """The run whose total is the median (or the best) of ``runs``."""
    ordered = sorted(runs, key=lambda run: run["total"])
    return ordered[0] if stat == "best" else ordered[len(ordered) // 2]


def measure(rows: int, paths: list[str], repeat: int, stat: str) -> dict[str, Any]:
    """One size: the table built, the child run; the picked run of each path with its shares."""
    csv_report.prepare(rows)
    FOLDER.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, "--child", str(rows), ",".join(paths), str(repeat)]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{rows:,} rows failed:\n{proc.stderr[-4000:]}")
    runs = json.loads(proc.stdout.strip().splitlines()[-1])
    copy_ms = pick(runs["copy"], stat)["total"]
    picked = {}
    for path in paths:
        run = pick(runs[path], stat)
        picked[path] = {
            **{phase: run[phase] for phase in PHASES},
            "total": run["total"],
            "fixed_ms": run["total"] - run["rows"],
            "fixed_share": (run["total"] - run["rows"]) / run["total"],
            "copy_ms": copy_ms,
            "totals": sorted(r["total"] for r in runs[path]),
        }
    return {"copy_ms": copy_ms, "copy_totals": sorted(r["total"] for r in runs["copy"]), **picked}


def print_tables(results: dict[int, dict[str, Any]], paths: list[str], heading: str) -> None:
    print(heading)
    head = f"{'rows':>8} " + " ".join(f"{h:>9}" for h in PHASES.values())
    head += f" {'total':>9} {'fixed %':>7} {'COPY':>8}"
    for path in paths:
        print(f"\n{PATHS[path][0]} (ms)")
        print(head)
        print("-" * len(head))
        for rows, by_path in results.items():
            r = by_path[path]
            cells = " ".join(f"{r[phase]:9.1f}" for phase in PHASES)
            print(
                f"{rows:8,} {cells} {r['total']:9.1f} {100 * r['fixed_share']:7.1f} "
                f"{r['copy_ms']:8.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1,1000,10000,100000", help="rows, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="measured runs of each path")
    parser.add_argument("--stat", choices=("median", "best"), default="median")
    parser.add_argument(
        "--paths", default=",".join(PATHS), help="comma-separated: " + ", ".join(PATHS)
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--child", nargs=3, metavar=("ROWS", "PATHS", "REPEAT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1].split(","), int(args.child[2]))
        return
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = set(paths) - set(PATHS)
    if unknown or not paths:
        sys.exit(f"unknown paths: {', '.join(sorted(unknown))}; choose from {', '.join(PATHS)}")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    load = os.getloadavg()
    results = {rows: measure(rows, paths, max(1, args.repeat), args.stat) for rows in sizes}
    heading = (
        f"Whole CSV reports through the service layer, by phase: the {args.stat} of "
        f"{max(1, args.repeat)} runs after a warm-up (load average {load[0]:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end, {os.cpu_count()} CPUs; measured in this run)"
    )
    print_tables(results, paths, heading)
    if args.json:
        from run import machine

        report = {
            "machine": machine(),
            "stat": args.stat,
            "repeat": max(1, args.repeat),
            "load_average": [load[0], os.getloadavg()[0]],
            "phases": PHASES,
            "paths": {path: PATHS[path][0] for path in paths},
            "sizes": {str(rows): by_path for rows, by_path in results.items()},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
