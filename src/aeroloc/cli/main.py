"""The ``aeroloc`` group: error → exit-code mapping, ``--version``, ``-v``/``-q`` logging.

Every :class:`~aeroloc.errors.AeroLocError` becomes a one-line message on
stderr and exit code 2, without a traceback. ``-v``/``-q`` set the level of the
``aeroloc`` logger for the duration of the command; this is the only place
that configures logging (library code only logs).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import click

from aeroloc import __version__
from aeroloc.cli.aoi import aoi
from aeroloc.cli.batch import batch
from aeroloc.cli.demo import demo
from aeroloc.cli.evaluate import evaluate
from aeroloc.cli.locate import locate
from aeroloc.cli.output import QUIET_KEY
from aeroloc.cli.preprocess import preprocess
from aeroloc.cli.synth import synth
from aeroloc.cli.train import train
from aeroloc.cli.triplets import triplets
from aeroloc.errors import AeroLocError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: The library's root logger; every module logs to a child of it.
LOGGER_NAME = "aeroloc"


class AeroLocGroup(click.Group):
    """Click group that turns aeroloc errors into one-line messages and exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AeroLocError as exc:
            click.echo(f"aeroloc: error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)
        except Exception as exc:
            from aeroloc.files import is_disk_full

            if not is_disk_full(exc):
                raise
            # A write outside atomic_output (a log, a cache) met the full disk.
            click.echo(
                f"aeroloc: error: no space left on device ({exc}); free some space and rerun: "
                "finished outputs are kept",
                err=True,
            )
            ctx.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            click.echo("aeroloc: interrupted; finished outputs are kept, rerun to resume", err=True)
            ctx.exit(EXIT_INTERRUPTED)


#: Warning classes meant for developers; ``-v`` shows them, the default log does not.
_DEVELOPER_WARNINGS: tuple[type[Warning], ...] = (DeprecationWarning, PendingDeprecationWarning)


class _EchoHandler(logging.Handler):
    """Log records as ``aeroloc: message`` lines on the current stderr (via click)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:
            self.handleError(record)


def configure_logging(ctx: click.Context, *, verbose: int, quiet: bool) -> None:
    """Level and stderr handler of the ``aeroloc`` logger until ``ctx`` closes.

    Default INFO; ``-v`` DEBUG; ``-q`` WARNING (and no progress messages).
    Python warnings are shown as one ``aeroloc: warning: ...`` line each;
    libraries' deprecation warnings only with ``-v``.
    The logger's previous level and handlers are restored afterwards, so
    invoking the CLI in-process (tests, notebooks) leaves logging as it was.
    """
    if verbose and quiet:
        raise click.UsageError("-v/--verbose and -q/--quiet exclude each other")
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logger = logging.getLogger(LOGGER_NAME)
    handler = _EchoHandler()
    handler.setFormatter(logging.Formatter("aeroloc: %(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    ctx.meta[QUIET_KEY] = quiet
    previous_showwarning = warnings.showwarning

    def show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        # One readable line, not Python's file:line and source line.
        text = " ".join(str(message).split())
        if issubclass(category, _DEVELOPER_WARNINGS):
            # A library's API deprecation (affine's `*` in rasterio, say) is
            # nothing a user can act on: debug log only.
            logger.debug("warning: %s: %s", category.__name__, text)
            return
        logger.warning("warning: %s", text)

    warnings.showwarning = show_warning

    def restore() -> None:
        warnings.showwarning = previous_showwarning
        logger.removeHandler(handler)
        logger.setLevel(previous_level)

    ctx.call_on_close(restore)


@click.group(cls=AeroLocGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aeroloc")
@click.option("-v", "--verbose", count=True, help="Also log debug messages.")
@click.option(
    "-q", "--quiet", is_flag=True, default=False, help="Log only warnings; no progress messages."
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Locate historical aerial photographs in modern georeferenced imagery.

    Pipeline: catalog → aoi → preprocess → heatmap → candidates → verify → georef.
    Run `aeroloc COMMAND --help` for each step.
    """
    configure_logging(ctx, verbose=verbose, quiet=quiet)


# Every command, in pipeline order (``--help`` lists them alphabetically).
for _command in (synth, aoi, preprocess, triplets, train, locate, batch, evaluate, demo):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="aeroloc")
