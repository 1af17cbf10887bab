"""Local-feature matchers: photo (image a) against one candidate window (image b).

The registry maps a name to a builder. Each matcher module declares its
entries in a ``MATCHERS`` table: :mod:`~aeroloc.verify.matching.opencv`
(``sift``, ``orb``, ``akaze``), :mod:`~aeroloc.verify.matching.dense`
(``effnet-dense``, the default) and :mod:`~aeroloc.verify.matching.learned`
(``xfeat-lighterglue``, ``disk-lightglue``, ``aliked-lightglue``, built only
when asked for). A new matcher is one module with its ``MATCHERS`` table,
added to :data:`_REGISTRY` below. If a matcher's package is missing,
:func:`get_matcher` warns and returns SIFT instead.
"""

from __future__ import annotations

import warnings

from aeroloc.errors import ModelError
from aeroloc.verify.matching import dense, learned, opencv
from aeroloc.verify.matching.base import (
    MODEL_KINDS,
    NODATA_MARGIN_PX,
    FeatureCache,
    FitKind,
    Matcher,
    MatcherEntry,
    Matches,
    check_gray,
    to_uint8,
)

DEFAULT_MATCHER = "effnet-dense"
#: The matcher used when the one asked for cannot be built.
FALLBACK_MATCHER = "sift"

_REGISTRY: dict[str, MatcherEntry] = {**opencv.MATCHERS, **dense.MATCHERS, **learned.MATCHERS}


def list_matchers() -> list[str]:
    """Names accepted by :func:`get_matcher` (whether or not their package is installed)."""
    return list(_REGISTRY)


def _build(name: str) -> Matcher:
    entry = _REGISTRY[name]
    try:
        return entry.build()
    except ImportError as exc:
        warnings.warn(
            f"matcher {name!r} is unavailable ({exc}); falling back to SIFT. "
            f"Install it with: {entry.install}",
            stacklevel=3,
        )
        return _REGISTRY[FALLBACK_MATCHER].build()


def get_matcher(name: str) -> Matcher:
    """Return the matcher registered as ``name``.

    Learned matchers load their weights once per process (see
    :func:`aeroloc.verify.matching.learned.build`). One whose package or
    weights are missing falls back to SIFT with a warning naming the package
    to install.

    Raises:
        ModelError: ``name`` is not one of :func:`list_matchers`.
    """
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        raise ModelError(f"unknown matcher {name!r}; valid names: {', '.join(_REGISTRY)}")
    return _build(key)


__all__ = [
    "DEFAULT_MATCHER",
    "FALLBACK_MATCHER",
    "MODEL_KINDS",
    "NODATA_MARGIN_PX",
    "FeatureCache",
    "FitKind",
    "Matcher",
    "MatcherEntry",
    "Matches",
    "check_gray",
    "get_matcher",
    "list_matchers",
    "to_uint8",
]
