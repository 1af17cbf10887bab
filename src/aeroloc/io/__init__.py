"""What aeroloc reads and writes between runs: archives and ``locate`` results.

:mod:`aeroloc.io.archive` is the archive contract (catalog, reference, rock
mask, photos, ``truth.json``); :mod:`aeroloc.io.results` is the typed,
versioned ``result.json`` of one located photo and the files next to it.
"""
