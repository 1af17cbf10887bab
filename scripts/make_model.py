#!/usr/bin/env python3
"""Reproduce the shipped default checkpoint (``make model``).

    python scripts/make_model.py [--work build/model] [--out PATH] [--epochs N]
    python scripts/make_model.py --model signet --out build/signet.pt [--weights none]

Steps, each skipped when its output is already there (so an interrupted run
resumes):

1. ``aeroloc synth`` archives for the training seeds (default 1000-1017, the
   ``default`` preset) and the held-out seeds (default 100-104, the demo's);
   training seeds are disjoint from those of the tests (0-99), the demo and
   the benchmarks (100-199, 500-599).
2. ``aeroloc triplets`` datasets of both (every photo prepared as ``locate``
   prepares it).
3. ``aeroloc train`` of ``effnet-lite0-siamese`` with its preset (split by
   flight line, early stopping on the validation confidence level).
4. The held-out evaluation of the untrained (ImageNet) and the trained model
   with the dense engine: mean confidence level, recall@1/5/10, written to
   ``<work>/metrics.json`` — the numbers of ``docs/models.md``.

The checkpoint is written to ``--out`` (default: the package's
``src/aeroloc/weights/effnet-lite0-siamese.pt``, which ``locate`` loads when
no model is named).

``--resume`` continues training from the ``.last.pt`` an interrupted run left
next to ``--out``, or that a finished run left in ``--work`` (with a larger
``--epochs``, to train further); the held-out evaluation then runs again.

``--model`` trains and evaluates another registry model the same way (same
data, its own thesis preset), for the before/after table of docs/models.md;
``--out`` is then required. "Before" is the model with its initial weights
(``--weights``: the preset's, ``none`` for random, ``imagenet`` or a path).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from aeroloc.errors import AeroLocError
from aeroloc.files import write_json
from aeroloc.io.archive import is_archive
from aeroloc.models import DEFAULT_MODEL, get_model, load_checkpoint
from aeroloc.synth import make_archive
from aeroloc.training.build import build_dataset
from aeroloc.training.config import TrainConfig, preset
from aeroloc.training.dataset import load_samples, read_manifest
from aeroloc.training.evaluate import evaluate as evaluate_samples
from aeroloc.training.loop import TrainResult, train
from aeroloc.training.outputs import sibling

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "src" / "aeroloc" / "weights" / f"{DEFAULT_MODEL}.pt"
MAX_SHIPPED_BYTES = 20 * 1024 * 1024


def seeds(text: str) -> list[int]:
    """``"1000-1005"`` or ``"1,2,5"`` → list of seeds."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def log(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)


def archives(work: Path, seed_list: list[int], t0: float) -> list[Path]:
    out = []
    for s in seed_list:
        folder = work / "archives" / f"default-{s}"
        if not is_archive(folder):
            log(f"synth seed {s} → {folder}", t0)
            make_archive(folder, seed=s, preset="default")
        out.append(folder)
    return out


def dataset(work: Path, name: str, folders: list[Path], t0: float) -> Path:
    out = work / name
    if not (out / "manifest.json").is_file():
        log(f"triplets {name} from {len(folders)} archives", t0)
        m = build_dataset(folders, out)
        log(f"  {len(m.samples)} photos, {len(m.skipped)} skipped", t0)
    return out


def last_checkpoint(out: Path, work: Path) -> Path:
    """The resume checkpoint of an earlier run: next to ``out`` if interrupted, else in ``work``."""
    for path in (sibling(out, ".last.pt"), work / sibling(out, ".last.pt").name):
        if path.is_file():
            return path
    raise SystemExit(f"--resume: no {sibling(out, '.last.pt').name} next to {out} or in {work}")


def held_out(model: Any, data: Path, every: int) -> dict[str, Any]:
    samples = load_samples(read_manifest(data))[::every]
    return evaluate_samples(model, samples, ks=(1, 5, 10), engine="dense").to_dict()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "model")
    ap.add_argument("--model", default=DEFAULT_MODEL, help="registry name (default: %(default)s)")
    ap.add_argument(
        "--out", type=Path, default=None, help=f"default for {DEFAULT_MODEL}: {DEFAULT_OUT}"
    )
    ap.add_argument(
        "--weights", default="preset", help="initial weights: preset, none, imagenet or a path"
    )
    ap.add_argument("--train-seeds", default="1000-1017")
    ap.add_argument("--heldout-seeds", default="100-104")
    ap.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    ap.add_argument("--heldout-every", type=int, default=1, help="evaluate every k-th photo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    ap.add_argument(
        "--items-per-sample", type=int, default=None, help="triplets per photo and epoch"
    )
    ap.add_argument(
        "--resume",
        action="store_true",
        help="continue from the .last.pt an earlier run left next to --out (interrupted) "
        "or in --work (finished; raise --epochs to train further)",
    )
    args = ap.parse_args(argv)
    if args.out is None:
        if args.model != DEFAULT_MODEL:
            ap.error("--out is required with --model (only the default model ships)")
        args.out = DEFAULT_OUT
    return args


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The model's preset with the command line's overrides."""
    overrides: dict[str, Any] = {"seed": args.seed}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if args.items_per_sample is not None:
        overrides["items_per_sample"] = args.items_per_sample
    if args.weights != "preset":
        overrides["weights"] = None if args.weights == "none" else args.weights
    return preset(args.model, **overrides)


def train_model(
    args: argparse.Namespace, config: TrainConfig, data: Path, resume: Path | None, t0: float
) -> TrainResult:
    """Train, then move the side files to the work folder and check the checkpoint's size."""
    log(f"train {args.model}: at most {config.epochs} epochs → {args.out}", t0)
    if resume is not None:
        log(f"  resuming from {resume}", t0)
    result = train(
        config,
        data,
        args.out,
        resume=resume,
        progress=lambda e: (
            log(f"  epoch {e.epoch}: {json.dumps(e.metrics, default=str)}", t0)
            if e.phase == "epoch"
            else None
        ),
    )
    warning = result.regression()
    if warning:
        log(f"  warning: {warning}", t0)
    # The resume checkpoint, history, loss curve (and olr's label figure) go to the work folder, not
    # next to the checkpoint (for the default model that is inside the package).
    for suffix in (".last.pt", ".history.json", ".loss.png", ".labels.png"):
        side = sibling(args.out, suffix)
        if side.is_file():
            side.replace(args.work / side.name)
    size = args.out.stat().st_size
    if args.out == DEFAULT_OUT and size > MAX_SHIPPED_BYTES:
        raise SystemExit(f"{args.out} is {size / 1e6:.1f} MB, over the 20 MB limit")
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    torch.set_num_threads(2)
    try:
        train_seeds, held_seeds = seeds(args.train_seeds), seeds(args.heldout_seeds)
        overlap = set(train_seeds) & (set(range(200)) | set(range(500, 600)))
        if overlap:
            raise SystemExit(f"training seeds overlap test/demo/bench seeds: {sorted(overlap)}")
        resume = last_checkpoint(args.out, args.work) if args.resume else None
        args.work.mkdir(parents=True, exist_ok=True)
        train_data = dataset(args.work, "train", archives(args.work, train_seeds, t0), t0)
        held_data = dataset(args.work, "heldout", archives(args.work, held_seeds, t0), t0)
        config = train_config(args)
        t_train = time.perf_counter()
        result = train_model(args, config, train_data, resume, t0)
        train_s = time.perf_counter() - t_train
        size = args.out.stat().st_size

        log("held-out evaluation (dense engine)", t0)
        start = {} if config.weights == "imagenet" else {"weights": config.weights}
        before = held_out(
            get_model(args.model, **start, **config.model_options), held_data, args.heldout_every
        )
        after = held_out(load_checkpoint(args.out), held_data, args.heldout_every)
        metrics = {
            "model": args.model,
            "initial_weights": config.weights,
            "train_seeds": train_seeds,
            "heldout_seeds": held_seeds,
            "train_photos": len(read_manifest(train_data).samples),
            "split": result.split.to_dict(),
            "best_epoch": result.best_epoch,
            "validation_before": result.before,
            "validation_best": result.best,
            "test_split": result.test,
            "train_seconds": train_s,
            "resumed_from": None if resume is None else str(resume),
            "checkpoint_bytes": size,
            "heldout_before": before,
            "heldout_after": after,
            "threads": torch.get_num_threads(),
        }
        stem = "metrics" if args.model == DEFAULT_MODEL else f"metrics-{args.model}"
        metrics_path = args.work / f"{stem}.json"
        write_json(metrics_path, metrics)
        for name, m in (("before", before), ("trained", after)):
            log(
                f"{name}: conf {m['mean_confidence']:.1f} %  R@1 {m['recall@1']:.2f}  "
                f"R@5 {m['recall@5']:.2f}  R@10 {m['recall@10']:.2f}  (n={m['n']})",
                t0,
            )
        log(f"wrote {args.out} ({size / 1e6:.1f} MB) and {metrics_path}", t0)
    except AeroLocError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
