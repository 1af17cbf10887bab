"""Many photos: :mod:`aeroloc.batch.loop` runs one function over an archive's photos.

It skips photos already done, reports progress and collects one outcome per
photo; the demo, the verification bench and the calibration script use it.
"""
