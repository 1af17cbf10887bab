"""aeroloc.report: report.html is valid, offline, escaped, and shows every photo."""

from __future__ import annotations

import base64
import math
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from shapely.geometry import Polygon

from aeroloc.errors import InvalidInputError
from aeroloc.files import write_geotiff
from aeroloc.io.archive import read_archive
from aeroloc.io.table import GPKG_FILE, FootprintRow, ResultsTable, write_results_table
from aeroloc.report import REPORT_FILE, write_report
from aeroloc.report.rows import read_report_rows

CRS = "EPSG:3031"
EVIL = '<script>alert("x")</script> & "quotes"'
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Every start tag with its attributes; the text of each table cell; nesting checked."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.rows: list[list[str]] = []
        self.in_photos = False
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "table" and a.get("class") == "photos":
            self.in_photos = True
        if self.in_photos and tag == "tr":
            self.rows.append([])
        if self.in_photos and tag == "td":
            self.cell = []

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()
        if tag == "td" and self.cell is not None:
            self.rows[-1].append("".join(self.cell))
            self.cell = None
        if tag == "table":
            self.in_photos = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.stack == [], page.stack
    return page


def square(cx: float, cy: float, half: float = 400.0) -> Polygon:
    return Polygon(
        [(cx + dx * half, cy + dy * half) for dx, dy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    )


def row(photo_id, line, frame, status, geometry=None, **kw) -> FootprintRow:
    return FootprintRow(
        photo_id=photo_id,
        flight_line=line,
        frame=frame,
        status=status,
        method=kw.pop("method", None if status in ("failed", "pending") else "search"),
        geometry=geometry,
        folder=photo_id,
        **kw,
    )


@pytest.fixture
def results(tmp_path) -> tuple[Path, Path, list[FootprintRow]]:
    """A batch folder with a written results.gpkg: line L1 of four photos (three located),
    line L2 with its own picture, a failed and a pending photo; and a reference."""
    ref = np.add.outer(np.arange(600), np.arange(800)).astype(np.float32)
    reference = write_geotiff(
        tmp_path / "ref.tif", ref, transform=Affine(10, 0, 0, 0, -10, 6000), crs=CRS
    )
    rows = [
        row("p1", "L1", 1, "accepted", square(1000, 3000), p_correct=0.97, error_m=3.25, n_gcps=40),
        row("p2", "L1", 2, "accepted", square(1800, 3000), p_correct=0.93, error_m=4.0, n_gcps=12),
        row("p3", "L1", 3, "review", square(2600, 3000), p_correct=0.6, reasons="few inliers"),
        row("p4", "L1", 4, "rejected", reasons=EVIL),
        row("q1", "L2", 1, "accepted", square(5000, 2000), method="neighbour", p_correct=0.9),
        row("f1", None, None, "failed", reasons="OutputError: disk full"),
        row("n1", "L3", 7, "pending"),
    ]
    out = tmp_path / "run"
    out.mkdir()
    write_results_table(ResultsTable(footprints=tuple(rows), gcps=(), crs=CRS), out)
    _line_picture(out / "lines" / "L2.png")
    return out, reference, rows


def _line_picture(path: Path) -> None:
    from matplotlib.figure import Figure

    from aeroloc.files import write_png

    fig = Figure(figsize=(2, 1))
    fig.subplots().plot([0, 1], [0, 1])
    write_png(path, fig)


def test_report_parses_is_offline_and_embeds_the_overview(results):
    out, reference, _ = results
    path = write_report(out, reference=reference)
    assert path == out / REPORT_FILE
    page = parse(path)
    tags = [t for t, _ in page.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    text = path.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    for tag, attrs in page.tags:
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            assert not value.startswith(("http:", "https:", "//")), (tag, value)
    images = {a.get("alt"): a["src"] for t, a in page.tags if t == "img"}
    assert "overview" in images
    for src in images.values():
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC
    assert "ref.tif" in text  # the reference is named as the map's background
    assert not list(out.glob(".report*"))  # written atomically: no temporary left


def test_report_table_has_one_row_per_photo_and_escapes_values(results):
    out, reference, rows = results
    page = parse(write_report(out, reference=reference))
    body = page.rows[1:]  # the header row has no <td>
    assert page.rows[0] == []
    assert [r[0] for r in body] == [r.photo_id for r in rows]
    by_id = {r[0]: r for r in body}
    # photo id, line, frame, status, method, p_correct, error_m, GCPs, reasons
    assert by_id["p1"] == ["p1", "L1", "1", "accepted", "search", "0.970", "3.2", "40", ""]
    assert by_id["p4"][8] == EVIL  # shown as text ...
    text = (out / REPORT_FILE).read_text(encoding="utf-8")
    assert "<script>" not in text  # ... never as markup
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp;" in text
    assert by_id["f1"][1:5] == ["", "", "failed", ""]


def test_report_counts_statuses_and_methods(results):
    out, reference, _ = results
    text = (write_report(out, reference=reference)).read_text(encoding="utf-8")
    for label, n in (("accepted", 3), ("review", 1), ("rejected", 1), ("failed", 1)):
        assert f'{label}</td><td class="num">{n}</td>' in text, label
    for label, n in (("search", 4), ("neighbour", 1), ("none", 2)):
        assert f'{label}</td><td class="num">{n}</td>' in text, label


def test_lines_embed_the_batch_picture_or_draw_the_along_track_plot(results):
    out, reference, _ = results
    page = parse(write_report(out, reference=reference))
    images = {a.get("alt"): a["src"] for t, a in page.tags if t == "img"}
    picture = base64.b64encode((out / "lines" / "L2.png").read_bytes()).decode("ascii")
    assert images["line L2"] == f"data:image/png;base64,{picture}"
    assert images["line L1"] != images["line L2"]  # drawn from the footprints
    assert "line L3" not in images  # nothing located on it
    assert "line L3: 1 photos, none located with a frame." in (out / REPORT_FILE).read_text()


def test_report_without_a_reference_and_to_another_path(results, tmp_path):
    out, _, rows = results
    target = tmp_path / "elsewhere" / "r.html"
    path = write_report(out, out=target)
    assert path == target and not (out / REPORT_FILE).exists()
    page = parse(path)
    assert len(page.rows) - 1 == len(rows)
    assert "no reference overview" in path.read_text()


def test_rows_from_the_gpkg_keep_types_and_nulls(results):
    out = results[0]
    data = read_report_rows(out)
    assert data.source == GPKG_FILE and data.crs is not None and data.crs.to_epsg() == 3031
    got = {r.photo_id: r for r in data.rows}
    assert got["p1"].frame == 1 and got["p1"].n_gcps == 40 and got["p1"].geometry is not None
    assert got["f1"].flight_line is None and got["f1"].frame is None and got["f1"].method is None
    assert math.isnan(got["n1"].p_correct) and got["p4"].geometry is None


def test_a_missing_results_folder_is_an_error(tmp_path):
    with pytest.raises(InvalidInputError, match="results folder not found"):
        write_report(tmp_path / "nope")


def test_report_of_a_real_batch_with_and_without_results_gpkg(located_tiny, tiny_archive, tmp_path):
    out = tmp_path / "batch"
    shutil.copytree(located_tiny, out)
    archive = read_archive(tiny_archive)
    ids = [r.photo_id for r in archive.catalog]
    # the table of the two photos run; the reference named by their result.json
    page = parse(write_report(out))
    assert [r[0] for r in page.rows[1:]] == ids[:2]
    assert {r[3] for r in page.rows[1:]} <= {"accepted", "review", "rejected"}
    assert "reference overview: reference.tif" in (out / REPORT_FILE).read_text()
    # without results.gpkg: the photo folders (the pending photo has none) ...
    (out / GPKG_FILE).unlink()
    page = parse(write_report(out))
    assert sorted(r[0] for r in page.rows[1:]) == sorted(ids[:2])
    # ... or the catalog, which also gives the pending photo and the lines
    page = parse(write_report(out, photos=list(archive.catalog)))
    assert [r[0] for r in page.rows[1:]] == ids
    assert page.rows[-1][3] == "pending"
