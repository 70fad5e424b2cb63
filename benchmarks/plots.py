"""The PNG charts of ``run.py``: seconds and peak RSS against rows, one line per contender.

matplotlib is an optional dependency of the benchmarks only (the ``bench`` extra).
"""

from __future__ import annotations

from pathlib import Path

CHARTS = {
    "time.png": ("seconds", "Seconds (log scale)", True),
    "memory.png": ("peak_rss_mib", "Peak RSS of the process, MiB", False),
}
STYLES = {
    "baseline": "-",
    "report": "-",
    "storage": (0, (3, 1, 1, 1)),  # dash-dot-dot
    "format": "--",
    "compressor": ":",
    "library": "-.",
}


def write_charts(report: dict, out: Path) -> list[Path]:
    """Write one chart per entry of ``CHARTS`` from ``run.py``'s results; their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    sizes = sorted(int(s) for s in report["sizes"])
    written = []
    for filename, (key, ylabel, log) in CHARTS.items():
        fig, ax = plt.subplots(figsize=(9, 5.5), dpi=90)
        colours = plt.get_cmap("tab20").colors
        for index, (name, label) in enumerate(report["labels"].items()):
            points = [
                (rows, r[key])
                for rows in sizes
                if key in (r := report["sizes"][str(rows)]["results"].get(name, {}))
            ]
            if not points:
                continue
            xs, ys = zip(*points, strict=True)
            ax.plot(
                xs,
                ys,
                linestyle=STYLES.get(report["groups"][name], "-"),
                marker="o",
                markersize=3,
                color=colours[index % len(colours)],
                label=label,
            )
        ax.set_xscale("log")
        if log:
            ax.set_yscale("log")
        ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
        ax.set_xlabel("rows")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ylabel.split(',')[0]} against rows ({report['machine']['date'][:10]})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        path = out / filename
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
