"""Run the real-raster benchmark with two aeroloc trees and put the results side by side.

``bench/real/run.py`` runs twice, each time in its own subprocess with
``PYTHONPATH`` set to one tree's ``src``: first ``--old-src`` (e.g. an older
checkout), then ``--new-src`` (default: this tree's ``src``). The same cases,
model option and ``--limit`` are used for both; results go to ``<out>/old``
and ``<out>/new`` (each a complete run folder, resumed on a rerun), and
``<out>/compare.md`` gets one table: every metric of ``run.py``'s summary for
the easy and hard groups and all cases, old and new, and the ratio new / old
of the median time per photo.

Usage::

    python bench/real/compare.py --cases build/bench-real/cases --out build/bench-real/compare \\
        --old-src /work/wt-old/src [--new-src src] [--limit N] [--model NAME|CKPT]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

METRICS = (
    ("n", "cases", "d"),
    ("recall_at_1", "recall@1", "%"),
    ("recall_at_5", "recall@5", "%"),
    ("accepted_and_correct", "accepted and correct", "d"),
    ("false_accepts", "false accepts", "d"),
    ("review", "review", "d"),
    ("rejected", "rejected", "d"),
    ("errors", "errors", "d"),
    ("median_centre_error_m", "median centre error, accepted (m)", ".1f"),
    ("median_centre_error_ref_px", "median centre error, accepted (reference px)", ".2f"),
    ("median_seconds", "median s / photo", ".1f"),
)


def _run_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_real_run", HERE / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--old-src", type=Path, required=True, help="src folder of the older tree")
    p.add_argument("--new-src", type=Path, default=REPO / "src", help="default: %(default)s")
    p.add_argument("--model", default=None)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument(
        "--pose-search",
        action="store_true",
        help="run the new tree with run.py --pose-search (the old tree as it is)",
    )
    args = p.parse_args(argv)
    for name in ("old_src", "new_src"):
        src = getattr(args, name)
        if not (src / "aeroloc" / "__init__.py").is_file():
            p.error(f"--{name.replace('_', '-')} {src} holds no aeroloc package")
    return args


def run_tree(src: Path, out: Path, args: argparse.Namespace, *, new: bool = False) -> None:
    """``run.py`` in a subprocess whose aeroloc comes from ``src``."""
    cmd = [sys.executable, str(HERE / "run.py"), "--cases", str(args.cases), "--out", str(out)]
    if new and args.pose_search:
        cmd += ["--pose-search"]
    if args.model:
        cmd += ["--model", args.model]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    env = {**os.environ, "PYTHONPATH": str(src.resolve())}
    print(f"$ PYTHONPATH={src} {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, env=env, check=True)


def _cell(value: float, fmt: str) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    if fmt == "%":
        return f"{value:.0%}"
    if fmt == "d":
        return str(int(value))
    return format(value, fmt)


def table(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> str:
    """Markdown: metrics as rows; easy, hard and all (old, new) as columns."""
    groups = ("easy", "hard", "all")
    head = "| metric | " + " | ".join(f"{g} old | {g} new" for g in groups) + " |\n"
    head += "|---|" + "---|---|" * len(groups) + "\n"
    body = ""
    for key, label, fmt in METRICS:
        cells = [f"{_cell(old[g][key], fmt)} | {_cell(new[g][key], fmt)}" for g in groups]
        body += f"| {label} | " + " | ".join(cells) + " |\n"
    ratios = []
    for g in groups:
        o, n = old[g]["median_seconds"], new[g]["median_seconds"]
        ratios.append(f"{n / o:.2f}" if o and math.isfinite(o) and math.isfinite(n) else "–")
    body += "| median time per photo, new / old | " + " | ".join(f" | {r}" for r in ratios) + " |\n"
    return head + body


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = _run_module()
    runs = {"old": args.old_src, "new": args.new_src}
    for name, src in runs.items():
        run_tree(src, args.out / name, args, new=name == "new")
    summaries: dict[str, dict[str, dict[str, Any]]] = {}
    for name in runs:
        rows = run.read_rows(args.out / name / "results.csv")
        summaries[name] = {label: run.summarise(sel) for label, sel in run.subsets(rows)[:3]}
    text = (
        "# Real-raster benchmark: two trees\n\n"
        f"Cases `{args.cases}`{f', stratified subset --limit {args.limit}' if args.limit else ''}; "
        f"old = `{args.old_src}`, new = `{args.new_src}` (each run by `bench/real/run.py` in "
        "its own process; per-run details in `old/summary.md`, `new/summary.md`).\n\n"
        + table(summaries["old"], summaries["new"])
    )
    path = args.out / "compare.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
