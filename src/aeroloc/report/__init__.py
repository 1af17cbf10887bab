"""What a batch leaves for people: ``report.html``, and the map style ``heatmap.png`` shares.

* :mod:`~aeroloc.report.style` — status colours, axis labels that name the CRS;
* :mod:`~aeroloc.report.rows` — the photos of a results folder (``results.gpkg``,
  else the photo folders);
* :mod:`~aeroloc.report.figures` — the overview map and the along-track plots;
* :mod:`~aeroloc.report.html` — :func:`write_report`, the self-contained page.

``aeroloc.report.write_report`` is imported on first use, so ``heatmap.png``
(which needs only the style) does not load the report's modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aeroloc.report.html import REPORT_FILE, write_report

__all__ = ["REPORT_FILE", "write_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from aeroloc.report import html

        return getattr(html, name)
    raise AttributeError(f"module 'aeroloc.report' has no attribute {name!r}")
