"""``aeroloc train``: a similarity model trained on a triplet dataset."""

from __future__ import annotations

from pathlib import Path

import click

from aeroloc.cli.options import PATH, output_file, positive_integer, positive_number


@click.command()
@click.option("--model", "model_name", required=True, help="Registry name of the model.")
@click.option(
    "--data",
    required=True,
    type=PATH,
    help="Dataset folder written by `aeroloc triplets`.",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=PATH,
    callback=output_file,
    help="Checkpoint file to write (.pt).",
)
@click.option("--epochs", type=int, default=None, callback=positive_integer)
@click.option("--seed", type=int, default=None)
@click.option("--resume", type=PATH, default=None, help="Checkpoint to continue from.")
@click.option("--lr", type=float, default=None, callback=positive_number)
@click.option("--batch-size", type=int, default=None, callback=positive_integer)
@click.option(
    "--weights",
    default="preset",
    help="imagenet, none (random init), a path, or preset (the model's default).",
)
@click.option("--threads", type=int, default=None, callback=positive_integer)
@click.option(
    "--loss",
    type=click.Choice(["metric", "rank"]),
    default=None,
    help="metric: the model's thesis loss on triplets; rank: every window of the AoI "
    "against the truth (dense training only). Default: the preset's.",
)
def train(
    model_name: str,
    data: Path,
    out_path: Path,
    epochs: int | None,
    seed: int | None,
    resume: Path | None,
    lr: float | None,
    batch_size: int | None,
    weights: str,
    threads: int | None,
    loss: str | None,
) -> None:
    """Train a similarity model on a triplet dataset (thesis recipes as presets).

    Splits 8:1:1 by flight line, stops early on the validation confidence
    level, writes the checkpoint, its loss curve and can resume.
    """
    from aeroloc.training.commands import train_command

    train_command(
        model=model_name,
        data=data,
        out=out_path,
        epochs=epochs,
        seed=seed,
        resume=resume,
        lr=lr,
        batch_size=batch_size,
        weights=weights,
        threads=threads,
        loss=loss,
    )
