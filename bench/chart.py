"""The chart of docs/benchmarks.md and the README: requests per second of every system, one panel per benchmark.

It draws the figures the benchmark scripts saved in docs/benchmarks/*.json (each full run of
hello.py, validated_post.py and kernel_gateway.py writes one), so it reruns nothing:

    .venv/bin/python bench/chart.py               # writes docs/benchmarks.png
    .venv/bin/python bench/chart.py --out x.png   # elsewhere

``make bench`` runs it after the scripts. nbroutes' bars are dark, the baselines' light, and the
second-line systems (uvicorn's pure-Python h11 stack) hatched. Each bar is labelled with its
median req/s and, for a baseline (not another nbroutes), nbroutes' req/s over its own (the median of the per-round
ratios). Needs matplotlib (the bench extra). Exit status: 0 when the chart was written, 1 when
there are no figures to draw or matplotlib is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hello import RESULTS, ROOT  # noqa: E402

OUT = ROOT / "docs" / "benchmarks.png"
#: The panels, top to bottom; a JSON file of another throughput benchmark is drawn after these.
ORDER = ("hello", "validated_post", "kernel_gateway")
NBROUTES, BASELINE = "#1f4e79", "#9dc3e6"


def figures(directory: Path = RESULTS) -> list[dict[str, Any]]:
    """The throughput records in ``directory``, in ORDER."""
    records = []
    for path in sorted(directory.glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("kind") == "throughput":
            records.append(record)

    def rank(record: dict[str, Any]) -> int:
        name = record["benchmark"]
        return ORDER.index(name) if name in ORDER else len(ORDER)

    return sorted(records, key=rank)


def draw(records: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    heights = [0.9 + 0.42 * len(r["systems"]) for r in records]
    fig, axes = plt.subplots(
        len(records), 1, figsize=(9.5, sum(heights) + 0.5), gridspec_kw={"height_ratios": heights}, squeeze=False
    )
    for ax, record in zip(axes[:, 0], records, strict=True):
        systems = record["systems"]
        names = [s["name"] + (" (h11)" if s["second_line"] and "h11" not in s["name"] else "") for s in systems]
        rps = [s["rps"] for s in systems]
        colors = [NBROUTES if s["name"].startswith("nbroutes") else BASELINE for s in systems]
        bars = ax.barh(range(len(systems)), rps, color=colors, edgecolor="#333333", linewidth=0.6)
        for bar, system in zip(bars, systems, strict=True):
            if system["second_line"]:
                bar.set_hatch("///")
                bar.set_alpha(0.55)
            # nbroutes over a baseline; not over another way to run nbroutes (nbroutes.asgi), which reads as a paradox
            ratio = None if system["name"].startswith("nbroutes") else system["ratio"]
            note = f"{system['rps']:,.0f} req/s" + (f"   nbroutes / this: {ratio:.2f}" if ratio is not None else "")
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, "  " + note, va="center", fontsize=8.5)
        ax.set_yticks(range(len(systems)), names, fontsize=9)
        ax.invert_yaxis()  # nbroutes on top, as in the tables
        ax.set_xlim(0, max(rps) * 1.55)  # room for the labels right of the bars
        ax.set_xlabel("requests per second (median over the rounds; higher is better)", fontsize=8.5)
        ax.spines[["top", "right"]].set_visible(False)
        run = (
            f"{record['rounds']} interleaved rounds of {record['duration_s']:.0f} s, -c{record['connections']}, "
            f"{record['date']}"
        )
        ax.set_title(f"{record['title']}\n{run}", fontsize=9.5, loc="left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, metadata={"Software": None})  # no version stamp: a rerun differs only by its figures
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"the PNG to write (default {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    records = figures()
    if not records:
        print(
            f"bench: no figures in {RESULTS.relative_to(ROOT)}/: run the benchmarks first (make bench, or "
            "bench/hello.py without --check)",
            file=sys.stderr,
        )
        return 1
    try:
        draw(records, args.out)
    except ImportError:
        print("bench: matplotlib is needed: pip install -e '.[bench]' (or make bench)", file=sys.stderr)
        return 1
    out = args.out.resolve()
    print(f"bench: wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
