"""What a batch leaves for people: ``report.html`` and the map style shared with ``heatmap.png``.

* :mod:`~aeroloc.report.style` — status colours, axis labels that name the CRS;
"""
