"""``DIR/report.html``: one self-contained page about a batch, readable offline.

:func:`write_report` reads the results (:mod:`aeroloc.report.rows`), draws
the pictures (:mod:`aeroloc.report.figures`) and writes one HTML file with
everything inside it: the CSS in a ``<style>`` element, the pictures as
base64 PNG ``data:`` URIs, no script, no tile server, no web font, nothing
fetched. Its sections:

1. **Overview map** — every footprint over a downsampled view of the
   reference, coloured by status (review dashed), axes in the table's CRS.
2. **Counts** — photos per status and per ``method``.
3. **Flight lines** — per line, ``DIR/lines/<line>.png`` when the batch drew
   one (the flight-line solve), else the along-track position of the located
   photos against frame, with a straight-line fit.
4. **Photos** — the table: photo id (a link to its ``heatmap.png`` when
   there is one), line, frame, status, method, ``p_correct``, ``error_m``,
   GCPs and reasons. Every value is HTML-escaped.

The file is written atomically.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path

from aeroloc import __version__
from aeroloc.catalog import PhotoRecord
from aeroloc.files import atomic_output
from aeroloc.io.table import FootprintRow
from aeroloc.report.figures import (
    Overview,
    along_track_figure,
    map_extent,
    overview_figure,
    png_bytes,
    read_overview,
)
from aeroloc.report.rows import ReportRows, read_report_rows
from aeroloc.report.style import STATUS_COLOURS, STATUS_ORDER, crs_label

logger = logging.getLogger(__name__)

REPORT_FILE = "report.html"
#: Folder of a batch's per-line pictures (``<line>.png``).
LINES_DIR = "lines"
#: Method label of photos without one (failed, pending).
NO_METHOD = "none"

_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.3em;
  vertical-align: middle; border: 1px solid #555; }
.counts { display: flex; gap: 2em; flex-wrap: wrap; }
.lines { display: flex; gap: 1em; flex-wrap: wrap; }
figure { margin: 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; }
.meta { color: #555; font-size: 0.9em; }
"""

#: CSS colours of the statuses (the matplotlib ``tab:`` palette).
_CSS_COLOURS = {
    "tab:green": "#2ca02c",
    "tab:orange": "#ff7f0e",
    "tab:red": "#d62728",
    "tab:blue": "#1f77b4",
    "tab:purple": "#9467bd",
    "0.55": "#8c8c8c",
}


def write_report(
    results_dir: str | os.PathLike[str],
    *,
    reference: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    photos: Sequence[PhotoRecord] | None = None,
) -> Path:
    """Write the report of a batch's results folder (see the module docstring).

    Args:
        results_dir: the batch's ``--out`` folder (``results.gpkg`` and one
            folder per photo).
        reference: the raster beneath the map (default: the first reference
            the photos' ``result.json`` name; none when it cannot be read).
        out: the HTML file (default ``results_dir/report.html``).
        photos: the catalog: rows for photos without a folder when there is
            no ``results.gpkg``, and catalog centres for photos without a
            footprint on the map.

    Returns:
        The path written.

    Raises:
        InvalidInputError: ``results_dir`` is not a folder, or its
            ``results.gpkg`` has no ``footprints`` layer.
        OutputError: ``out`` cannot be written.
    """
    root = Path(results_dir)
    target = Path(out) if out is not None else root / REPORT_FILE
    data = read_report_rows(root, photos=photos)
    ref = Path(reference) if reference is not None else next(iter(data.references), None)
    extent = _extent(data, photos)
    overview = None if ref is None else read_overview(ref, data.crs, extent)
    page = render_report(data, root, overview=overview, photos=photos)
    with atomic_output(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    logger.info("report of %d photos written to %s", len(data.rows), target)
    return target


def _extent(
    data: ReportRows, photos: Sequence[PhotoRecord] | None
) -> tuple[float, float, float, float] | None:
    geoms = [r.geometry for r in data.rows if r.geometry is not None]
    points = [] if geoms else list(_centres(photos).values())
    return map_extent(geoms, points)


def _centres(photos: Sequence[PhotoRecord] | None) -> dict[str, tuple[float, float]]:
    return {p.photo_id: (p.x, p.y) for p in photos or ()}


def render_report(
    data: ReportRows,
    root: Path,
    *,
    overview: Overview | None = None,
    photos: Sequence[PhotoRecord] | None = None,
) -> str:
    """The HTML page of ``data`` (``root``: the results folder, for line pictures and links)."""
    rows = data.rows
    centres = _centres(photos) or None
    map_png = png_bytes(overview_figure(rows, data.crs, overview=overview, centres=centres))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>aeroloc report: {escape(root.name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>aeroloc batch report: {escape(root.name)}</h1>",
        _meta(data, overview),
        "<h2>Overview</h2>",
        _figure(map_png, "Footprints by status (review dashed) over the reference.", "overview"),
        "<h2>Counts</h2>",
        '<div class="counts">',
        _counts_table("status", _status_counts(rows), swatches=True),
        _counts_table("method", Counter(r.method or NO_METHOD for r in rows)),
        "</div>",
        "<h2>Flight lines</h2>",
        _lines_section(rows, root, data),
        "<h2>Photos</h2>",
        _photo_table(rows, root),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _meta(data: ReportRows, overview: Overview | None) -> str:
    source = None if overview is None else overview.source
    bits = [
        f"{len(data.rows)} photos, read from {escape(data.source)}",
        f"CRS {escape(crs_label(data.crs))}",
        f"reference overview: {escape(source)}" if source else "no reference overview",
        f"aeroloc {escape(__version__)}, {escape(time.strftime('%Y-%m-%d %H:%M'))}",
    ]
    return f'<p class="meta">{" · ".join(bits)}</p>'


def _figure(png: bytes, caption: str, alt: str) -> str:
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="{uri}" alt="{escape(alt)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _status_counts(rows: Sequence[FootprintRow]) -> dict[str, int]:
    found = Counter(r.status for r in rows)
    order = [*STATUS_ORDER, *sorted(set(found) - set(STATUS_ORDER))]
    return {s: found[s] for s in order if found[s]}


def _swatch(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "black")
    return f'<span class="swatch" style="background:{_CSS_COLOURS.get(colour, colour)}"></span>'


def _counts_table(what: str, counts: Mapping[str, int], *, swatches: bool = False) -> str:
    total = sum(counts.values())
    body = "".join(
        f"<tr><td>{_swatch(k) if swatches else ''}{escape(k)}</td>"
        f'<td class="num">{n}</td><td class="num">{n / total:.0%}</td></tr>'
        for k, n in counts.items()
    )
    return (
        f"<table><thead><tr><th>{escape(what)}</th><th>photos</th><th>share</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _lines_section(rows: Sequence[FootprintRow], root: Path, data: ReportRows) -> str:
    by_line: dict[str, list[FootprintRow]] = {}
    for r in rows:
        if r.flight_line is not None:
            by_line.setdefault(r.flight_line, []).append(r)
    if not by_line:
        return "<p>No photo has a flight line.</p>"
    items = []
    for line, members in by_line.items():
        picture = root / LINES_DIR / f"{_file_name(line)}.png"
        if picture.is_file():
            caption = f"line {line}: {len(members)} photos (the flight-line solve, {picture.name})"
            items.append(_figure(picture.read_bytes(), caption, f"line {line}"))
        elif any(r.geometry is not None and r.frame is not None for r in members):
            fig = along_track_figure(line, members, data.crs)
            caption = f"line {line}: {len(members)} photos, along-track position of the located"
            items.append(_figure(png_bytes(fig), caption, f"line {line}"))
        else:
            items.append(
                f"<p>line {escape(line)}: {len(members)} photos, none located with a frame.</p>"
            )
    return f'<div class="lines">{"".join(items)}</div>'


def _file_name(line: str) -> str:
    """A flight line id as a file name (what is not a letter, digit, ``.-_`` becomes ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", line)


_COLUMNS = (
    "photo id",
    "line",
    "frame",
    "status",
    "method",
    "p_correct",
    "error_m",
    "GCPs",
    "reasons",
)


def _photo_table(rows: Sequence[FootprintRow], root: Path) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in _COLUMNS)
    return (
        f'<table class="photos"><thead><tr>{head}</tr></thead><tbody>\n'
        + "\n".join(_photo_row(r, root) for r in rows)
        + "\n</tbody></table>"
    )


def _photo_row(r: FootprintRow, root: Path) -> str:
    pid = escape(r.photo_id)
    if r.heatmap_png and (root / r.heatmap_png).is_file():
        pid = f'<a href="{escape(Path(r.heatmap_png).as_posix(), quote=True)}">{pid}</a>'
    cells: Iterable[str] = (
        f"<td>{pid}</td>",
        f"<td>{escape(r.flight_line or '')}</td>",
        f'<td class="num">{"" if r.frame is None else r.frame}</td>',
        f"<td>{_swatch(r.status)}{escape(r.status)}</td>",
        f"<td>{escape(r.method or '')}</td>",
        f'<td class="num">{_number(r.p_correct, "{:.3f}")}</td>',
        f'<td class="num">{_number(r.error_m, "{:.1f}")}</td>',
        f'<td class="num">{r.n_gcps}</td>',
        f"<td>{escape(r.reasons)}</td>",
    )
    return f'<tr class="{escape(r.status, quote=True)}">{"".join(cells)}</tr>'


def _number(value: float, fmt: str) -> str:
    return "" if value is None or not math.isfinite(value) else fmt.format(value)
