"""Many photos: one loop over a batch's photos, and the same jobs on Dask.

:mod:`aeroloc.batch.loop` runs one function over an archive's photos: it skips
photos already done, reports progress, collects one outcome per photo and,
when asked, records a failed photo instead of stopping (the demo, the
verification bench and the calibration script use it).
:mod:`aeroloc.batch.dask` maps the same function over the same jobs on a
Dask cluster; :mod:`aeroloc.batch.priority` orders each flight line's photos;
:mod:`aeroloc.batch.worker` is the per-photo function of ``aeroloc batch``,
:mod:`aeroloc.batch.config` and :mod:`aeroloc.batch.run` its inputs and
its one stage call.
"""
