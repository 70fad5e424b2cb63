"""``run.py``'s results as Markdown tables, one per size, for docs/performance.md.

.venv/bin/python benchmarks/tables.py benchmarks/results/results.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def markdown(report: dict) -> str:
    """One Markdown table per size of ``report`` (``run.py``'s results JSON)."""
    lines: list[str] = []
    for size, entry in report["sizes"].items():
        load = entry["load_average_at_start"][0]
        lines += [
            f"**{int(size):,} rows** (load average {load:.2f} at the start of this size)",
            "",
            "| contender | seconds | rows/s | MB/s | x COPY | peak RSS MiB | peak disk MiB "
            "| file MB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, r in entry["results"].items():
            label = report["labels"][name]
            if "skipped" in r:
                lines.append(f"| {label} | skipped: {r['skipped']} | | | | | | |")
                continue
            if "compressor" in r:
                label += f" ({r['compressor']})"
            lines.append(
                f"| {label} | {r['seconds']:.2f} | {r['rows_per_second']:,.0f} "
                f"| {r['mb_per_second']:.1f} | {r['x_copy']:.2f} | {r['peak_rss_mib']:.0f} "
                f"| {r['peak_disk_mib']:.1f} | {r['file_bytes'] / 1e6:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
