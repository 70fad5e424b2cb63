"""Gzip throughput and ratio of each backend on the same report CSV, side by side in one run.

The CSV has the anchors' ``orders`` shape (the table ``csv_report.py`` builds in
PostgreSQL: id, created_at, customer, product, quantity, unit_price, total,
status, region), generated here in Python so no database is needed. Every
method compresses the same bytes in 1 MiB blocks through a ``GzipFile`` with
``mtime=0``, as ``services/files.py`` does, into a sink that only counts.
Methods alternate within each repeat; the best (fastest) run of each is shown,
the least noisy figure on a shared machine.

Run::

    python benchmarks/compression.py --mb 200 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import importlib
import io
import time
import zlib
from collections.abc import Callable
from decimal import Decimal

BLOCK_SIZE = 1024 * 1024
STATUSES = ["pending", "paid", "shipped", "cancelled"]
REGIONS = ["north", "south", "east", "west"]
HEADER = "id,created_at,customer,product,quantity,unit_price,total,status,region\n"

#: (label, module, level): module None is the stdlib ``gzip``.
METHODS: list[tuple[str, str, int]] = [
    *((f"stdlib gzip {level}", "gzip", level) for level in (1, 6, 9)),
    *((f"isal igzip {level}", "isal.igzip", level) for level in (0, 1, 2, 3)),
    *((f"zlib-ng gzip_ng {level}", "zlib_ng.gzip_ng", level) for level in (1, 6)),
]
REFERENCE = "stdlib gzip 6"


def make_csv(megabytes: float) -> bytes:
    """Deterministic rows of the orders shape until ``megabytes`` (10**6 bytes) are reached."""
    target = int(megabytes * 1_000_000)
    out = io.StringIO()
    out.write(HEADER)
    start = datetime.datetime(2024, 1, 1)
    size, i = len(HEADER), 0
    while size < target:
        i += 1
        quantity = 1 + i % 9
        price = Decimal(500 + i % 1000) / 100
        line = (
            f"{i},{start + datetime.timedelta(minutes=i % 525_600):%Y-%m-%d %H:%M:%S},"
            f"Customer {i % 50_000},Product {i % 2000},{quantity},{price},{price * quantity},"
            f"{STATUSES[i % 4]},{REGIONS[(i // 7) % 4]}\n"
        )
        out.write(line)
        size += len(line)
    return out.getvalue().encode()


class _Counter(io.RawIOBase):
    """A write-only sink that keeps only the number of bytes written."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.size += len(data)
        return len(data)


def compressor(module_name: str) -> Callable[..., gzip.GzipFile] | None:
    try:
        return importlib.import_module(module_name).GzipFile  # type: ignore[no-any-return]
    except ImportError:
        return None


def compress_once(gzip_file: Callable[..., gzip.GzipFile], data: bytes, level: int) -> tuple:
    sink = _Counter()
    view = memoryview(data)
    started = time.perf_counter()
    with gzip_file(
        filename="report.csv", mode="wb", fileobj=sink, compresslevel=level, mtime=0
    ) as gz:
        for offset in range(0, len(view), BLOCK_SIZE):
            gz.write(view[offset : offset + BLOCK_SIZE])
    return time.perf_counter() - started, sink.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200, help="CSV size in MB (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method; best shown")
    args = parser.parse_args()

    started = time.perf_counter()
    data = make_csv(args.mb)
    mb = len(data) / 1e6
    print(
        f"{mb:.0f} MB of orders CSV made in {time.perf_counter() - started:.1f} s; "
        f"best of {args.repeat} run(s) per method, methods alternating; zlib {zlib.ZLIB_VERSION}"
    )
    available = [(label, compressor(module), level) for label, module, level in METHODS]
    missing = [label for label, gzip_file, _ in available if gzip_file is None]
    runs: dict[str, list[tuple[float, int]]] = {label: [] for label, g, _ in available if g}
    for _ in range(args.repeat):
        for label, gzip_file, level in available:
            if gzip_file is not None:
                runs[label].append(compress_once(gzip_file, data, level))
    best = {label: min(results) for label, results in runs.items()}
    reference = best[REFERENCE][0]
    print(f"\n{'method':<20} {'MB/s':>8} {'ratio':>7} {'x stdlib-6':>11} {'gz MB':>8}")
    for label, (seconds, size) in best.items():
        print(
            f"{label:<20} {mb / seconds:8.0f} {len(data) / size:6.2f}x "
            f"{reference / seconds:10.2f}x {size / 1e6:8.1f}"
        )
    if missing:
        print(f"\nNot installed (pip install isal zlib-ng): {', '.join(missing)}")
    print(
        "\nratio: CSV bytes / gzip bytes (higher is smaller); x stdlib-6: throughput over "
        "stdlib gzip level 6, the level this package used before GZIP_LEVEL."
    )


if __name__ == "__main__":
    main()
