"""``aeroloc evaluate``: locate results scored against ground truth."""

from __future__ import annotations

from pathlib import Path

import click

from aeroloc.cli.options import PATH, out_dir_option, positive_number
from aeroloc.cli.output import report
from aeroloc.errors import MissingFileError


@click.command()
@click.option(
    "--truth",
    "truth_path",
    required=True,
    type=PATH,
    help="truth.json of a synthetic archive (or the archive folder).",
)
@click.option(
    "--results",
    "result_dirs",
    required=True,
    multiple=True,
    type=PATH,
    help="Folder(s) written by `aeroloc locate` (repeat, or a parent folder).",
)
@click.option(
    "--hit-radius-m",
    type=float,
    default=None,
    callback=positive_number,
    help="Distance that counts as found (default: half a window).",
)
@out_dir_option()
def evaluate(
    truth_path: Path, result_dirs: tuple[Path, ...], hit_radius_m: float | None, out_dir: Path
) -> None:
    """Score locate results against ground truth (confidence level, recall@k, error).

    For verified results also the footprint's centre error and IoU, GCP
    residuals, accepted-and-correct share and false-accept rate. Writes
    evaluation.csv, evaluation.md and a score histogram per photo with the
    true score marked.
    """
    from aeroloc.evaluation.evaluate import evaluate as run_evaluate
    from aeroloc.evaluation.evaluate import write_evaluation
    from aeroloc.io.archive import read_truth

    truth = read_truth(truth_path)  # first: a bad --truth is named as such
    folders = _result_folders(result_dirs)
    evaluation, heatmaps = run_evaluate(truth, folders, hit_radius_m=hit_radius_m)
    paths = write_evaluation(evaluation, heatmaps, out_dir)
    click.echo(evaluation.to_markdown())
    report("evaluation written:", paths)


def _result_folders(paths: tuple[Path, ...]) -> list[Path]:
    """``--results`` expanded: a folder with ``result.json``, or every such child folder."""
    folders: list[Path] = []
    for p in paths:
        if (p / "result.json").is_file():
            folders.append(p)
        elif p.is_dir():
            folders.extend(sorted(q.parent for q in p.glob("*/result.json")))
        else:
            raise MissingFileError(f"results folder not found: {p}")
    if not folders:
        raise MissingFileError(f"no result.json under {', '.join(map(str, paths))}")
    return folders
