"""Localisation quality of a model on stored samples (mean confidence level, recall@k)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aeroloc.errors import DataQualityError, InvalidInputError
from aeroloc.models import Embedder
from aeroloc.training.dataset import DatasetManifest, Sample, load_samples, read_manifest
from aeroloc.training.features import DenseScorer
from aeroloc.training.scoring import score_heatmap, score_sample


@dataclass(frozen=True, kw_only=True)
class EvalSummary:
    """Localisation quality of a model on stored photos.

    Attributes:
        n: photos scored.
        mean_confidence: mean confidence level (%).
        var_confidence: its variance (of the fraction, as the thesis reports it).
        recall: k → share of photos with the truth in the top-k candidates.
        mean_rank: mean rank of the first candidate at the truth (0 = not in the list).
        per_sample: one record per photo.
        seconds: time taken.
        unscorable: photos the model cannot compare (e.g. a binary photo
            without rock is one flat colour); each counts as chance: confidence
            50 %, not found.
    """

    n: int
    mean_confidence: float
    var_confidence: float
    recall: dict[int, float]
    per_sample: tuple[dict[str, Any], ...]
    seconds: float
    unscorable: int = 0

    def to_dict(self, *, with_samples: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "n": self.n,
            "mean_confidence": self.mean_confidence,
            "var_confidence": self.var_confidence,
            **{f"recall@{k}": v for k, v in self.recall.items()},
            "seconds": self.seconds,
            "unscorable": self.unscorable,
        }
        if with_samples:
            d["per_sample"] = list(self.per_sample)
        return d


def evaluate(
    model: Embedder,
    samples: Sequence[Sample],
    *,
    ks: Sequence[int] = (1, 5),
    engine: str = "dense",
    stride_fraction: float = 0.25,
    scorer: DenseScorer | None = None,
) -> EvalSummary:
    """Mean confidence level and recall@k of ``model`` on stored samples.

    Each photo's heatmap is computed as ``locate`` does (its preprocessing
    mode, ``engine``, a window stride of ``stride_fraction``); recall@k counts
    the truth as found when one of the top-k candidates (non-maximum
    suppression over half a window) lies within half a window of it.

    Args:
        model: the model.
        samples: stored samples.
        ks: the k of recall@k.
        engine: heatmap engine.
        stride_fraction: window stride as a fraction of the window.
        scorer: a :class:`DenseScorer` over the same samples (same result as
            ``engine="dense"``, faster when called repeatedly).
    """
    if not samples:
        raise InvalidInputError("no samples to evaluate")
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    rows = []
    try:
        for i, s in enumerate(samples):
            if scorer is not None:
                sc = score_heatmap(
                    scorer.heatmap(i, stride_fraction),
                    s.record.true_center,
                    sample_id=s.record.sample_id,
                    ks=ks,
                )
            else:
                try:
                    sc = score_sample(
                        model, s, ks=ks, engine=engine, stride_fraction=stride_fraction
                    )
                except DataQualityError as exc:
                    rows.append(_chance_row(s.record.sample_id, ks, str(exc)))
                    continue
            rows.append(
                {
                    "sample_id": sc.sample_id,
                    "confidence": sc.confidence,
                    "rank": sc.rank,
                    "error_windows": sc.error_windows,
                    **{f"hit@{k}": v for k, v in sc.hits.items()},
                }
            )
    finally:
        model.train(was_training)
    conf = np.array([r["confidence"] for r in rows], dtype=np.float64)
    ok = np.isfinite(conf)
    return EvalSummary(
        n=len(rows),
        mean_confidence=float(conf[ok].mean()) if ok.any() else float("nan"),
        var_confidence=float((conf[ok] / 100.0).var()) if ok.any() else float("nan"),
        recall={k: float(np.mean([r[f"hit@{k}"] for r in rows])) for k in ks},
        per_sample=tuple(rows),
        seconds=time.perf_counter() - t0,
        unscorable=sum("unscorable" in r for r in rows),
    )


def _chance_row(sample_id: str, ks: Sequence[int], reason: str) -> dict[str, Any]:
    """The evaluation record of a photo the model cannot compare: chance level."""
    return {
        "sample_id": sample_id,
        "confidence": 50.0,
        "rank": None,
        "error_windows": math.nan,
        **{f"hit@{k}": False for k in ks},
        "unscorable": reason,
    }


def evaluate_dataset(
    model: Embedder,
    data: str | os.PathLike[str] | DatasetManifest,
    *,
    ks: Sequence[int] = (1, 5),
    engine: str = "dense",
    stride_fraction: float = 0.25,
) -> EvalSummary:
    """:func:`evaluate` on every photo of a dataset (e.g. one built from held-out archives)."""
    manifest = data if isinstance(data, DatasetManifest) else read_manifest(data)
    return evaluate(
        model, load_samples(manifest), ks=ks, engine=engine, stride_fraction=stride_fraction
    )
