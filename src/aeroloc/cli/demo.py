"""``aeroloc demo``: the whole pipeline on a synthetic archive, reported against its truth."""

from __future__ import annotations

from pathlib import Path

import click

from aeroloc.cli.options import (
    PATH,
    buffer_option,
    check_matcher,
    check_model_spec,
    output_folder,
    pose_grid,
    preset_option,
    search_options,
    seed_option,
)
from aeroloc.cli.output import say


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=PATH,
    default=Path("demo-output"),
    show_default=True,
    callback=output_folder,
)
@seed_option(default=100, help="Archive seed (disjoint from the training seeds).")
@preset_option()
@buffer_option(default=5_000.0, help="AoI buffer (the synthetic catalog is off by at most 3 km).")
@search_options(max_verify=5, per_photo="each photo")
def demo(
    out_dir: Path,
    seed: int,
    preset: str,
    model_spec: str | None,
    engine: str,
    heading_search: float,
    heading_step: float,
    scale_search: float,
    buffer_m: float,
    verify: bool,
    matcher: str | None,
    max_verify: int,
) -> None:
    """Run the full pipeline on a synthetic archive and report against its truth.

    Synthesises the archive, runs it through the batch with flight lines
    (each line's best photo searched, its neighbours placed along the line,
    a joint solve per line), evaluates and writes report.md with the
    methods, the line pictures and every heatmap and footprint. Reruns skip
    finished photos.
    """
    from aeroloc.demo import run_demo
    from aeroloc.evaluation.methods import method_markdown

    check_model_spec(model_spec)
    if matcher is not None:
        check_matcher(matcher)
    summary = run_demo(
        out_dir,
        seed=seed,
        preset=preset,
        model=model_spec,
        engine=engine,
        poses=pose_grid(heading_search, heading_step, scale_search),
        buffer_m=buffer_m,
        verify=verify,
        matcher=matcher,
        max_candidates=max_verify,
        say=say,
    )
    click.echo(summary.evaluation.to_markdown())
    click.echo(method_markdown(summary.methods))
    click.echo(f"report: {summary.report} ({summary.seconds:.0f} s)")
