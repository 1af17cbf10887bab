"""Shared by the property-based and fuzz tests: deterministic, bounded hypothesis settings."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def bounded(max_examples: int) -> settings:
    """``max_examples`` derandomized examples, no deadline and no example database.

    Derandomized (the same examples on every run, as CI needs) and database-less
    (nothing written under the tests); ``tmp_path`` is reused across examples,
    which the tests allow for by writing a fresh file name per example.
    """
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
