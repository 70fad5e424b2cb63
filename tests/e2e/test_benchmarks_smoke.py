"""A small run of the benchmarks, for correctness, never speed: every contender runs and
the reports it makes are the same bytes whatever the path (CI runs this; the figures
themselves come from ``benchmarks/run.py`` on a quiet machine, docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROWS = 3000

#: Every contender but django-import-export's (the ``bench`` extra, which CI does not install).
CONTENDERS = [
    "copy",
    "loop",
    "rows_path",
    "queryset_rows",
    "fast_path",
    "partitioned",
    "s3_streaming",
    "s3_temp_file",
    "format_csv.gz",
    "format_xlsx",
    "format_ndjson",
    "format_json.gz",
    "gzip_default",
]
#: The same CSV report, written by each path.
SAME_CSV = [
    "rows_path",
    "queryset_rows",
    "fast_path",
    "partitioned",
    "s3_streaming",
    "s3_temp_file",
]


def bench_env(tmp_path: Path) -> dict[str, str]:
    """A database, queues and media of this run's own."""
    tag = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "ASYNC_REPORTS_BENCH_DB": f"async_reports_bench_smoke_{tag}",
        "ASYNC_REPORTS_TEST_QUEUE_PREFIX": f"bench_smoke_{tag}",
        "ASYNC_REPORTS_TEST_MEDIA_ROOT": str(tmp_path / "media"),
    }


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_script(tmp_path: Path, *args: str) -> None:
    """Run ``benchmarks/<script> args`` with a database of its own, dropped afterwards."""
    env = bench_env(tmp_path)
    try:
        done = subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
    finally:
        drop_database(env["ASYNC_REPORTS_BENCH_DB"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_every_contender_runs_and_the_paths_write_the_same_report(tmp_path):
    out = tmp_path / "results"
    only = ",".join(CONTENDERS)
    run_script(
        tmp_path,
        "benchmarks/run.py",
        "--sizes",
        str(ROWS),
        "--only",
        only,
        "--no-charts",
        "--out",
        str(out),
    )
    results = json.loads((out / "results.json").read_text())["sizes"][str(ROWS)]["results"]
    assert set(CONTENDERS) <= set(results), sorted(set(CONTENDERS) - set(results))
    for name in CONTENDERS:
        figures = results[name]
        assert figures["seconds"] > 0, name
        assert figures["file_bytes"] > 0, name
        assert figures["peak_rss_mib"] > 0, name
    for name in CONTENDERS[2:12]:  # the reports: every row written
        assert results[name]["rows"] == ROWS, name
    checksums = {name: results[name]["checksum"] for name in SAME_CSV}
    assert len(set(checksums.values())) == 1, checksums
    # On S3 the streamed report left nothing on the worker's disk.
    assert results["s3_streaming"]["peak_disk_mib"] < results["s3_temp_file"]["peak_disk_mib"]


def test_fixed_costs_adds_up(tmp_path):
    report = tmp_path / "fixed.json"
    run_script(
        tmp_path,
        "benchmarks/fixed_costs.py",
        "--sizes",
        "1,500",
        "--repeat",
        "1",
        "--json",
        str(report),
    )
    data = json.loads(report.read_text())
    assert set(data["sizes"]) == {"1", "500"}
    for size in data["sizes"].values():
        assert size["copy_ms"] > 0
        for path in ("rows", "fast", "rows_gz"):
            phases = size[path]
            # The phases are timed apart: together they are the report's whole time.
            parts = sum(phases[phase] for phase in data["phases"])
            assert parts > 0 and abs(parts - phases["total"]) < 0.05 * phases["total"], path
            assert 0 < phases["fixed_share"] <= 1, path
