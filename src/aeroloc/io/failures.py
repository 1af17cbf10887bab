"""``failed.json``: why a photo of a batch failed, so that a rerun can skip it.

A photo whose per-photo function raised gets ``<out_dir>/failed.json``
(:class:`FailureRecord`: the one-line reason, the exception's class, the
seconds spent and how many attempts failed so far). A rerun skips the photo
unless asked to retry failed ones; a later success deletes the file. A photo
folder holds a ``result.json`` (done) or a ``failed.json`` (failed), never
both once a batch has written it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aeroloc import __version__
from aeroloc.errors import InvalidInputError
from aeroloc.files import write_json

FAILURE_FILE = "failed.json"


@dataclass(frozen=True, kw_only=True)
class FailureRecord:
    """One failed photo.

    Attributes:
        photo_id: the photo.
        reason: one line, ``<ExceptionClass>: <message>``.
        error_type: the exception's class name.
        seconds: time spent before it failed.
        attempts: failed attempts so far (1 for the first).
        aeroloc_version: the package version that wrote it.
    """

    photo_id: str
    reason: str
    error_type: str
    seconds: float = 0.0
    attempts: int = 1
    aeroloc_version: str = __version__

    @classmethod
    def from_exception(
        cls, photo_id: str, exc: BaseException, *, seconds: float, attempts: int = 1
    ) -> FailureRecord:
        """The record of ``exc``; its message is cut to its first line."""
        return cls(
            photo_id=photo_id,
            reason=one_line_reason(exc),
            error_type=type(exc).__name__,
            seconds=round(seconds, 4),
            attempts=attempts,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "photo_id": self.photo_id,
            "reason": self.reason,
            "error_type": self.error_type,
            "seconds": self.seconds,
            "attempts": self.attempts,
            "aeroloc_version": self.aeroloc_version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FailureRecord:
        return cls(
            photo_id=str(data["photo_id"]),
            reason=str(data["reason"]),
            error_type=str(data.get("error_type") or ""),
            seconds=float(data.get("seconds") or 0.0),
            attempts=int(data.get("attempts") or 1),
            aeroloc_version=str(data.get("aeroloc_version") or ""),
        )


def one_line_reason(exc: BaseException) -> str:
    """``<ExceptionClass>: <first line of the message>`` (the class alone without one)."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def has_failure(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` holds a ``failed.json``."""
    return (Path(folder) / FAILURE_FILE).is_file()


def write_failure(record: FailureRecord, folder: str | os.PathLike[str]) -> Path:
    """Write ``folder/failed.json`` atomically."""
    return write_json(Path(folder) / FAILURE_FILE, record.to_json())


def read_failure(folder: str | os.PathLike[str]) -> FailureRecord:
    """Read ``folder/failed.json`` (or the file itself).

    Raises:
        InvalidInputError: missing, not JSON or not a failure record.
    """
    p = Path(folder)
    if p.is_dir():
        p = p / FAILURE_FILE
    try:
        return FailureRecord.from_json(json.loads(p.read_text()))
    except FileNotFoundError:
        raise InvalidInputError(f"no {FAILURE_FILE} in {p.parent}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"{p} is not a failure record: {exc}") from exc


def clear_failure(folder: str | os.PathLike[str]) -> None:
    """Delete ``folder/failed.json`` if there is one."""
    (Path(folder) / FAILURE_FILE).unlink(missing_ok=True)
