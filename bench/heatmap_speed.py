"""Heatmap engines side by side: one photo, one AoI, one model, one run.

    python bench/heatmap_speed.py [--model NAME|CKPT] [--seed 500] [--buffer-m 10000]
        [--preset default|large] [--engines naive,batched,dense,trunk-only]

Synthesises (once) an archive with a benchmark seed (``large``: the 60 km
scene of the large preset with one flight line of two 2400 px photos, for
AoIs of up to about 50 km), prepares its first photo, then times each engine
in its own child process (so peak memory is per engine): windows/s, seconds,
peak RSS, and the ratio to ``naive``. ``dense-poses`` is ``dense`` with the
search over heading and scale of ``locate --heading-search 16 --heading-step 8
--scale-search 0.15``
(``aeroloc.heatmap.poses.SEARCH_POSES``, 15 poses); its ratio to ``dense``
is the cost of the search. ``trunk-only`` is one bare trunk pass
over the AoI at model scale, the physical limit of the dense engine. The
photo and AoI are prepared once in the parent, so the peak RSS (VmHWM of the
child) is that of the model and the engine alone (torch and the model
included). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ENGINES = ("naive", "batched", "dense", "dense-poses", "trunk-only")


def prepared(archive: Path, buffer_m: float):
    from aeroloc.aoi import AoIConfig, PartialOverlapWarning
    from aeroloc.catalog import read_catalog
    from aeroloc.pipeline import request_from_record
    from aeroloc.preprocess.prepare import prepare_request

    record = read_catalog(archive / "catalog.gpkg").records[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialOverlapWarning)
        req = request_from_record(
            record,
            [archive / "reference.tif"],
            aoi_config=AoIConfig(buffer_m=buffer_m),
            rock_mask_path=archive / "rock_outcrop.gpkg",
        )
        return prepare_request(req)[1]


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: reset at exec, unlike ru_maxrss,
    which on Linux keeps the forking parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    from affine import Affine
    from rasterio.crs import CRS

    from aeroloc.heatmap.engines import HeatmapConfig, compute_heatmap, to_model_input
    from aeroloc.heatmap.poses import SEARCH_POSES
    from aeroloc.pipeline import load_model

    torch.set_num_threads(args.threads)
    data = np.load(Path(args.scores_dir) / "prepared.npz")
    photo, aoi_gray = data["photo"], data["aoi"]
    window_px = int(data["window_px"])
    model, label = load_model(args.model)
    model.eval()
    if args.engine == "trunk-only":
        ih, _ = model.spec.input_size
        s = ih / window_px
        aoi = np.nan_to_num(aoi_gray, nan=0.5)
        img = to_model_input(aoi, (round(aoi.shape[0] * s), round(aoi.shape[1] * s)))
        x = torch.from_numpy(img)[None, None]
        # the network as compute_heatmap runs it
        model = model.for_inference()
        with torch.inference_mode():
            t = time.perf_counter()
            model.trunk(x)
            seconds = time.perf_counter() - t
        windows = 0
    else:
        hm = compute_heatmap(
            photo,
            aoi_gray,
            model=model,
            window_px=window_px,
            pixel_to_map=Affine(*data["pixel_to_map"]),
            crs=CRS.from_epsg(3031),
            config=(
                HeatmapConfig(engine="dense", poses=SEARCH_POSES)
                if args.engine == "dense-poses"
                else HeatmapConfig(engine=args.engine)
            ),
        )
        seconds = hm.timings_s["heatmap"]
        windows = int(hm.valid.sum())
        np.save(Path(args.scores_dir) / f"{args.engine}.npy", hm.scores)
    peak_mb = peak_rss_mb()
    print(
        json.dumps(
            {
                "engine": args.engine,
                "seconds": seconds,
                "windows": windows,
                "peak_mb": peak_mb,
                "model": label,
                "window_px": window_px,
                "aoi_px": list(aoi_gray.shape),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--seed", type=int, default=500)
    ap.add_argument("--buffer-m", type=float, default=10_000.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="bench-output")
    ap.add_argument("--preset", choices=("default", "large"), default="default")
    ap.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help="comma-separated subset of " + ",".join(ENGINES) + " (default: all)",
    )
    ap.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--archive", help=argparse.SUPPRESS)
    ap.add_argument("--scores-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.engine:
        child(args)
        return
    from scipy.stats import spearmanr

    from aeroloc.synth import make_archive
    from aeroloc.synth.config import get_preset

    engines = [e for e in ENGINES if e in args.engines.split(",")]
    if not engines or len(engines) != len(args.engines.split(",")):
        ap.error(f"--engines must name some of {', '.join(ENGINES)}")
    work = Path(args.work)
    archive = work / f"archive-{args.preset}-{args.seed}"
    if not (archive / "truth.json").is_file():
        config = None
        if args.preset == "large":
            config = get_preset("large", n_lines=1, photos_per_line=2, image_px=2400)
        make_archive(archive, seed=args.seed, preset=args.preset, config=config)
    pair = prepared(archive, args.buffer_m)
    np.savez(
        work / "prepared.npz",
        photo=pair.photo,
        aoi=pair.aoi_gray,
        window_px=pair.window_px,
        pixel_to_map=np.array(list(pair.pixel_to_map)[:6]),
    )
    rows = []
    for engine in engines:
        cmd = [
            sys.executable,
            __file__,
            "--engine",
            engine,
            "--archive",
            str(archive),
            "--scores-dir",
            str(work),
            "--buffer-m",
            str(args.buffer_m),
            "--threads",
            str(args.threads),
        ]
        if args.model:
            cmd += ["--model", args.model]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"{engine}: {rows[-1]['seconds']:.2f} s", file=sys.stderr)
    by = {r["engine"]: r for r in rows}
    first = rows[0]
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, "
        f"{args.threads} threads, torch {torch.__version__}; model {first['model']}; "
        f"AoI {first['aoi_px'][1]} x {first['aoi_px'][0]} px at 10 m, window "
        f"{first['window_px']} px, {max(r['windows'] for r in rows)} windows\n"
    )
    base = by.get("naive")
    print("| engine | seconds | windows/s | peak RSS (MB) | speed-up vs naive |")
    print("|---|---|---|---|---|")
    for r in rows:
        wps = f"{r['windows'] / r['seconds']:.1f}" if r["windows"] else "–"
        ratio = f"{base['seconds'] / r['seconds']:.1f}×" if base else "–"
        print(f"| {r['engine']} | {r['seconds']:.2f} | {wps} | {r['peak_mb']:.0f} | {ratio} |")
    print()
    if "dense" in by and "dense-poses" in by:
        ratio = by["dense-poses"]["seconds"] / by["dense"]["seconds"]
        from aeroloc.heatmap.poses import SEARCH_POSES

        n = len(SEARCH_POSES.poses)
        print(f"dense-poses / dense time: {ratio:.1f} ({n} poses against one)")
    if "dense" in by and "trunk-only" in by:
        ratio = by["dense"]["seconds"] / by["trunk-only"]["seconds"]
        print(f"dense / trunk-only time: {ratio:.2f} (target ≤ 2)")
    if "dense" in by and "batched" in by:
        b, d = np.load(work / "batched.npy"), np.load(work / "dense.npy")
        ok = np.isfinite(b) & np.isfinite(d)
        print(f"Spearman rank correlation batched vs dense: {spearmanr(b[ok], d[ok])[0]:.3f}")


if __name__ == "__main__":
    main()
