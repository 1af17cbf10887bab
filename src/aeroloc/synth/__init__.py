"""Synthetic TMA archive with ground truth: ``make_archive(out_dir, seed=..., preset=...)``.

Modules in the order the generator runs: ``config`` (presets), ``noise``
(random fields), ``terrain`` (DEM, ice, snow, two epochs), ``render`` (sun,
cast shadows, Sentinel-2 and film looks), ``outcrops`` (ADD-like rock
polygons), ``photo`` (camera, film, scan frame), ``archive`` (flight lines,
catalog, truth, writing).
"""

from aeroloc.synth.archive import ArchiveManifest, make_archive
from aeroloc.synth.config import PRESETS, SynthConfig, get_preset

__all__ = ["PRESETS", "ArchiveManifest", "SynthConfig", "get_preset", "make_archive"]
