"""Evaluation: the metrics of docs/pipeline.md ("Evaluation"), in one place.

:mod:`aeroloc.evaluation.metrics` defines the confidence level, the true
score, the rank of the truth among candidates and recall@k; training, the
``evaluate`` command and the benchmarks all import them from there.
"""
