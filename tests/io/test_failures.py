"""failed.json: one line per failure, read back as written, a bad file named."""

from __future__ import annotations

import pytest

from aeroloc.errors import InvalidInputError, OutputError
from aeroloc.io.failures import (
    FAILURE_FILE,
    FailureRecord,
    clear_failure,
    has_failure,
    one_line_reason,
    read_failure,
    write_failure,
)


def test_a_failure_round_trips_with_a_one_line_reason(tmp_path):
    exc = OutputError("disk full\nTraceback (most recent call last): ...")
    record = FailureRecord.from_exception("p1", exc, seconds=1.23456, attempts=2)
    assert record.reason == "OutputError: disk full" and record.error_type == "OutputError"
    write_failure(record, tmp_path)
    assert has_failure(tmp_path) and read_failure(tmp_path) == record
    clear_failure(tmp_path)
    assert not has_failure(tmp_path)
    clear_failure(tmp_path)  # nothing to delete is fine


def test_a_reason_without_a_message_is_the_class():
    assert one_line_reason(KeyboardInterrupt()) == "KeyboardInterrupt"


def test_a_bad_failure_file_is_named(tmp_path):
    with pytest.raises(InvalidInputError, match=r"no failed\.json"):
        read_failure(tmp_path)
    (tmp_path / FAILURE_FILE).write_text("{not json")
    with pytest.raises(InvalidInputError, match="is not a failure record"):
        read_failure(tmp_path)
