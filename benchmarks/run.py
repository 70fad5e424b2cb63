"""Every contender side by side, at each size: one table per size, results JSON and PNG charts.

    .venv/bin/pip install -e ".[test,bench]"
    .venv/bin/python benchmarks/run.py --sizes 100000,300000,1000000 --out benchmarks/results

For each size the deterministic ``bench_orders`` table is built first
(``csv_report.prepare``: every value a function of its id, so every run reads
the same rows), then each contender of ``contenders.py`` runs in a process of
its own, one after the other, and is measured the same way:

- **seconds**: what the contender times itself, its real work only (interpreter
  start-up, Django set-up and ``migrate`` excluded): bare COPY and the bare loop
  from connect to file closed; a report from claim to completed (generation,
  upload to local storage or S3, post-processing); the partitioned report from
  its request to completed, through a Celery worker; a compressor its
  ``files.compress`` call; django-import-export from ``export()`` to the file
  written.
- **rows/s**: rows / seconds. **MB/s**: output file size (10**6 bytes) / seconds.
- **x COPY**: seconds / bare COPY's seconds at the same size in the same run.
  The machine may be shared and noisy: ratios measured minutes apart suffer far
  less from it than rates do, so they are the figures to quote.
- **peak RSS**: ``ru_maxrss`` of the child process (Linux: KiB), i.e. the most
  resident memory the contender's process ever held, start-up included (the
  partitioned report: the largest of its processes, the worker's included).
- **peak disk**: the largest total size, sampled every 50 ms from this process
  while the child runs and once after it ends, of the files the contender has
  under its own folder: the files it names there (its output, the media
  storage) plus the unnamed temporary files it holds open there (the child runs
  with ``TMPDIR`` inside the folder, and ``/proc/<pid>/fd`` shows
  ``tempfile.TemporaryFile``'s nameless files, which a directory listing cannot).
  A file that lives less than 50 ms may be missed; PostgreSQL's own temporary
  files (server side) are not counted, nor the unnamed temporary files of other
  processes (the partitioned report's worker: its named part files count).

Everything printed is measured in this run; nothing is copied from elsewhere.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import csv_report
from bench_django import ROOT
from contenders import CONTENDERS, Contender

SAMPLE_SECONDS = 0.05
MIB = 2**20


class DiskSampler(threading.Thread):
    """Samples the bytes a child process has under ``folder``; ``peak`` is the largest sum."""

    def __init__(self, folder: Path, pid: int) -> None:
        super().__init__(daemon=True)
        self.folder, self.pid, self.peak = folder, pid, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(SAMPLE_SECONDS):
            self.sample()

    def stop(self) -> int:
        self.done.set()
        self.join()
        self.sample()
        return self.peak

    def sample(self) -> None:
        sizes: dict[tuple[int, int], int] = {}  # (device, inode): a file open and named counts once
        for dirpath, _dirs, names in os.walk(self.folder):
            for name in names:
                self._add(sizes, os.path.join(dirpath, name), follow=False)
        fd_dir = f"/proc/{self.pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # the child has ended
            fds = []
        for fd in fds:
            path = os.path.join(fd_dir, fd)
            try:
                target = os.readlink(path)
            except OSError:
                continue
            if target.startswith(str(self.folder)):
                self._add(sizes, path, follow=True)
        self.peak = max(self.peak, sum(sizes.values()))

    @staticmethod
    def _add(sizes: dict[tuple[int, int], int], path: str, *, follow: bool) -> None:
        try:
            st = os.stat(path) if follow else os.lstat(path)
        except OSError:  # gone between the listing and the stat
            return
        sizes[(st.st_dev, st.st_ino)] = st.st_size


def measure(contender: Contender, rows: int, work: Path) -> dict:
    """Run ``contender`` in a child process; its result with peak RSS and peak disk."""
    folder = work / contender.name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "tmp").mkdir(parents=True)
    env = {**os.environ, "TMPDIR": str(folder / "tmp")}
    command = [sys.executable, __file__, "--child", contender.name, str(rows), str(folder)]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sampler = DiskSampler(folder, proc.pid)
    sampler.start()
    stdout, stderr = proc.communicate()
    peak_disk = sampler.stop()
    shutil.rmtree(folder, ignore_errors=True)
    if proc.returncode:
        sys.exit(f"{contender.name} failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return {**result, "peak_disk_mib": peak_disk / MIB}


def child(name: str, rows: int, folder: str) -> None:
    result = CONTENDERS[name].run(Path(folder), rows)
    result.pop("path", None)
    # A contender working in other processes gives the largest of them itself.
    result.setdefault("peak_rss_mib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result))


def derive(results: dict[str, dict], rows: int) -> None:
    """Add rows/s, MB/s and x COPY to each measured result, in place."""
    copy_seconds = results["copy"]["seconds"] if "copy" in results else None
    for name, r in results.items():
        if "seconds" not in r:
            continue
        if r["rows"] >= 0:  # COPY does not count its rows
            assert r["rows"] == rows, (name, r["rows"], rows)
        r["rows_per_second"] = rows / r["seconds"]
        r["mb_per_second"] = r["file_bytes"] / 1e6 / r["seconds"]
        r["x_copy"] = r["seconds"] / copy_seconds if copy_seconds else None


def print_table(rows: int, results: dict[str, dict], load: tuple[float, ...]) -> None:
    print(f"\n{rows:,} rows (load average at start {load[0]:.2f}; measured in this run)")
    head = (
        f"{'contender':48} {'seconds':>8} {'rows/s':>10} {'MB/s':>7} {'x COPY':>7} "
        f"{'RSS MiB':>8} {'disk MiB':>9} {'file MB':>8}"
    )
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        label = CONTENDERS[name].label
        if "skipped" in r:
            print(f"{label:48} skipped: {r['skipped']}")
            continue
        x_copy = f"{r['x_copy']:7.2f}" if r["x_copy"] else f"{'-':>7}"
        print(
            f"{label:48} {r['seconds']:8.2f} {r['rows_per_second']:10,.0f} "
            f"{r['mb_per_second']:7.1f} {x_copy} {r['peak_rss_mib']:8.0f} "
            f"{r['peak_disk_mib']:9.1f} {r['file_bytes'] / 1e6:8.1f}"
        )
    for name, r in results.items():
        if "compressor" in r:
            print(f"  {CONTENDERS[name].label}: {r['compressor']}")


def machine() -> dict:
    """What the figures were measured on."""
    import psycopg

    with psycopg.connect(csv_report.dsn().replace(csv_report.DB_NAME, "postgres")) as c:
        pg = c.execute("SHOW server_version").fetchone()[0]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "python": platform.python_version(),
        "postgresql": pg,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,300000,1000000", help="rows, comma-separated")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--only", default="", help="contenders, comma-separated: " + ", ".join(CONTENDERS)
    )
    parser.add_argument(
        "--max-rows-in-memory",
        type=int,
        default=None,
        help="run the contenders that hold every row in memory up to this many rows "
        "(default: each one's own cap)",
    )
    parser.add_argument("--no-charts", action="store_true", help="results JSON and tables only")
    parser.add_argument("--child", nargs=3, metavar=("NAME", "ROWS", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2])
        return
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(CONTENDERS)
    unknown = set(names) - set(CONTENDERS)
    if unknown:
        sys.exit(f"unknown contenders: {', '.join(sorted(unknown))}")
    if "copy" not in names:
        names.insert(0, "copy")  # the yardstick of x COPY
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    work = ROOT / ".bench" / "run"
    report: dict = {"machine": machine(), "sizes": {}}
    for rows in sizes:
        csv_report.prepare(rows)
        load = os.getloadavg()
        results: dict[str, dict] = {}
        for name in names:
            contender = CONTENDERS[name]
            cap = args.max_rows_in_memory or contender.max_rows
            if contender.max_rows is not None and cap is not None and rows > cap:
                results[name] = {"skipped": f"{contender.skip_reason} (cap {cap:,} rows)"}
                continue
            print(f"  {rows:,} rows: {name}...", file=sys.stderr, flush=True)
            results[name] = measure(contender, rows, work)
        derive(results, rows)
        print_table(rows, results, load)
        report["sizes"][str(rows)] = {
            "load_average_at_start": load,
            "load_average_at_end": os.getloadavg(),
            "results": results,
        }
    report["labels"] = {name: CONTENDERS[name].label for name in names}
    report["groups"] = {name: CONTENDERS[name].group for name in names}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out / 'results.json'}")
    if not args.no_charts:
        from plots import write_charts

        for path in write_charts(report, args.out):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
