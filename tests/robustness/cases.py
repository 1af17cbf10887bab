"""The robustness suite's table: per command, each bad input and the answer it must get.

A :class:`Case` is one command line. ``expect`` holds fragments of the one
``aeroloc: error: ...`` line (exit code 2) the case must get; ``graceful`` cases
instead must succeed (exit 0) and write their outputs, as documented in
docs/reliability.md. :data:`CASES` is counted per command in that page, and a
test keeps the count there true.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from robustness.bad_files import BadFiles

Args = Callable[[BadFiles, Path], Sequence[object]]


@dataclass(frozen=True)
class Case:
    """One bad command line and the answer it must get."""

    command: str
    name: str
    args: Args
    expect: tuple[str, ...] = ()
    graceful: bool = False

    @property
    def id(self) -> str:
        return f"{self.command}-{self.name}"


def _catalog(bad: BadFiles, catalog: Path | None = None) -> list[object]:
    return ["--catalog", catalog or bad.catalog, "--photo-id", bad.photo_id]


def _aoi(bad: BadFiles, out: Path, *, reference=None, catalog=None, extra=()) -> list[object]:
    ref = reference or bad.reference
    return ["aoi", "--reference", ref, *_catalog(bad, catalog), *extra, "--out", out]


def _pre(bad: BadFiles, out: Path, *, photo=None, reference=None, extra=()) -> list[object]:
    photo = photo or bad.photo
    ref = reference or bad.reference
    return ["preprocess", photo, "--reference", ref, *_catalog(bad), *extra, "--out", out]


def _loc(bad: BadFiles, out: Path, *, photo=None, reference=None, extra=()) -> list[object]:
    photo = photo or bad.photo
    ref = reference or bad.reference
    return [
        "locate",
        photo,
        "--reference",
        ref,
        *_catalog(bad),
        "--no-verify",
        *extra,
        "--out",
        out,
    ]


def _loc_aoi(bad: BadFiles, out: Path, *extra: object) -> list[object]:
    return ["locate", bad.photo, "--reference", bad.reference, *extra, "--no-verify", "--out", out]


def _eval(bad: BadFiles, out: Path, *, truth=None, results=None, extra=()) -> list[object]:
    truth = truth or bad.archive / "truth.json"
    results = results or bad.archive
    return ["evaluate", "--truth", truth, "--results", results, *extra, "--out", out]


def _batch(bad: BadFiles, out: Path, catalog=None, *extra: object) -> list[object]:
    workers = [] if "--workers" in extra else ["--workers", "0"]
    return ["batch", catalog or bad.archive, *workers, *extra, "--no-verify", "--out", out]


_BROKEN_RASTER = {  # file kind → what the one line must say
    "missing": ("not found",),
    "empty": ("is empty (0 bytes)",),
    "garbage": ("cannot read",),
    "png": ("cannot read",),
    "folder": ("is a folder",),
}

_BROKEN_CATALOG = {
    "missing": ("not found",),
    "empty": ("is empty (0 bytes)",),
    "garbage": ("catalog",),
    "png": ("catalog",),
    "folder": ("is a folder",),
}

_BAD_REFERENCES = {
    "nocrs": ("no CRS",),
    "geographic": ("geographic CRS",),
    "nodata": ("nodata",),
    "one_px": ("lies outside reference",),
}

_BAD_CATALOG_ROWS = {
    "no_xy": ("x",),
    "nan_lon": ("row 1", "lon"),
    "text_altitude": ("row 1", "altitude_m"),
    "duplicate_ids": ("duplicate",),
    "header_only": ("has no rows",),
    "absurd_altitude": ("altitude",),
    "zero_focal": ("focal_length_mm",),
    "latin1": ("UTF-8",),
}

_BROKEN_CHECKPOINT = {
    "missing": ("not found",),
    "empty": ("is empty (0 bytes)",),
    "garbage": ("not a PyTorch file",),
    "png": ("not a PyTorch file",),
    "folder": ("is a folder",),
    "pickle": ("pickle payload",),
    "state_dict": ("not an aeroloc checkpoint", "raw weights"),
}


def _file(bad: BadFiles, kind: str, name: str) -> Path:
    return getattr(bad, name) if kind == "missing" else getattr(bad, f"{kind}_{name}")


def _family(
    command: str,
    prefix: str,
    table: dict[str, tuple[str, ...]],
    args: Callable[[BadFiles, Path, str], Sequence[object]],
) -> list[Case]:
    """One case per kind of ``table``: ``args(bad, out, kind)`` gets that kind's answer."""
    return [
        Case(command, f"{prefix}-{kind}", lambda b, o, kind=kind: args(b, o, kind), expect)
        for kind, expect in table.items()
    ]


def _aoi_cases() -> list[Case]:
    cases = _family(
        "aoi",
        "reference",
        _BROKEN_RASTER,
        lambda b, o, kind: _aoi(b, o, reference=_file(b, kind, "reference.tif")),
    )
    cases += _family(
        "aoi",
        "reference",
        _BAD_REFERENCES,
        lambda b, o, kind: _aoi(b, o, reference=getattr(b, f"{kind}_reference.tif")),
    )
    cases += _family(
        "aoi",
        "catalog",
        _BROKEN_CATALOG,
        lambda b, o, kind: _aoi(b, o, catalog=_file(b, kind, "catalog.csv")),
    )
    cases += _family(
        "aoi",
        "catalog",
        _BAD_CATALOG_ROWS,
        lambda b, o, kind: _aoi(b, o, catalog=getattr(b, f"catalog_{kind}.csv")),
    )
    cases += [
        Case(
            "aoi",
            "photo-id-unknown",
            lambda b, o: [
                "aoi",
                "--reference",
                b.reference,
                "--catalog",
                b.catalog,
                "--photo-id",
                "nobody",
                "--out",
                o,
            ],
            ("nobody",),
        ),
        Case(
            "aoi",
            "buffer-negative",
            lambda b, o: _aoi(b, o, extra=["--buffer-m", "-5"]),
            ("--buffer-m",),
        ),
        Case(
            "aoi",
            "buffer-nan",
            lambda b, o: _aoi(b, o, extra=["--buffer-m", "nan"]),
            ("--buffer-m",),
        ),
        Case(
            "aoi",
            "focal-zero",
            lambda b, o: _aoi(b, o, extra=["--focal-length-mm", "0"]),
            ("--focal-length-mm",),
        ),
        Case("aoi", "out-under-a-file", lambda b, o: _aoi(b, b.a_file / "out"), ("a_file",)),
        Case(
            "aoi",
            "reference-nan-inf",
            lambda b, o: _aoi(b, o, reference=b.nan_reference_tif),
            graceful=True,
        ),
        Case(
            "aoi",
            "non-ascii-paths",
            lambda b, o: _aoi(
                b, o, reference=b.non_ascii / "reference.tif", catalog=b.non_ascii / "catalog.csv"
            ),
            graceful=True,
        ),
    ]
    return cases


def _preprocess_cases() -> list[Case]:
    cases = _family(
        "preprocess",
        "photo",
        _BROKEN_RASTER,
        lambda b, o, kind: _pre(b, o, photo=_file(b, kind, "photo.tif")),
    )
    cases += [
        Case(
            "preprocess",
            "photo-constant",
            lambda b, o: _pre(b, o, photo=b.constant_photo_tif),
            ("one constant value",),
        ),
        Case(
            "preprocess",
            "reference-geographic",
            lambda b, o: _pre(b, o, reference=b.geographic_reference_tif),
            ("geographic CRS",),
        ),
        Case(
            "preprocess",
            "threshold-garbage",
            lambda b, o: _pre(b, o, extra=["--threshold", b.garbage_catalog_csv]),
            ("threshold",),
        ),
        Case("preprocess", "out-under-a-file", lambda b, o: _pre(b, b.a_file / "out"), ("a_file",)),
    ]
    cases += [
        Case(
            "preprocess",
            f"photo-{kind}",
            lambda b, o, kind=kind: _pre(b, o, photo=getattr(b, f"{kind}_photo.tif")),
            graceful=True,
        )
        for kind in ("uint16", "float", "alpha")
    ]
    return cases


def _locate_cases() -> list[Case]:
    cases = _family(
        "locate",
        "photo",
        _BROKEN_RASTER,
        lambda b, o, kind: _loc(b, o, photo=_file(b, kind, "photo.tif")),
    )
    cases += _family(
        "locate",
        "reference",
        _BAD_REFERENCES,
        lambda b, o, kind: _loc(b, o, reference=getattr(b, f"{kind}_reference.tif")),
    )
    cases += _family(
        "locate",
        "model",
        _BROKEN_CHECKPOINT,
        lambda b, o, kind: _loc(b, o, extra=["--model", _file(b, kind, "model.pt")]),
    )
    cases += [
        Case(
            "locate",
            "photo-constant",
            lambda b, o: _loc(b, o, photo=b.constant_photo_tif),
            ("one constant value",),
        ),
        Case(
            "locate",
            "model-unknown-name",
            lambda b, o: _loc(b, o, extra=["--model", "vgg16"]),
            ("unknown model",),
        ),
        Case(
            "locate",
            "gsd-zero",
            lambda b, o: _loc_aoi(b, o, "--aoi", "411144,-1281719,416898,-1275965", "--gsd-m", "0"),
            ("--gsd-m",),
        ),
        Case(
            "locate",
            "aoi-outside-reference",
            lambda b, o: _loc_aoi(
                b, o, "--aoi", "0,0,5000,5000", "--gsd-m", "2", "--azimuth-deg", "10"
            ),
            ("does not overlap",),
        ),
        Case(
            "locate",
            "aoi-not-four-numbers",
            lambda b, o: _loc_aoi(b, o, "--aoi", "1,2,3", "--gsd-m", "2"),
            ("--aoi",),
        ),
        Case(
            "locate",
            "azimuth-nan",
            lambda b, o: _loc_aoi(
                b,
                o,
                "--aoi",
                "411144,-1281719,416898,-1275965",
                "--gsd-m",
                "2",
                "--azimuth-deg",
                "nan",
            ),
            ("--azimuth-deg",),
        ),
        Case(
            "locate", "stride-zero", lambda b, o: _loc(b, o, extra=["--stride", "0"]), ("--stride",)
        ),
        Case(
            "locate",
            "candidates-zero",
            lambda b, o: _loc(b, o, extra=["--candidates", "0"]),
            ("--candidates",),
        ),
        Case(
            "locate",
            "t-srs-bogus",
            lambda b, o: _loc(b, o, extra=["--t-srs", "EPSG:999999"]),
            ("--t-srs",),
        ),
        Case(
            "locate",
            "rock-mask-garbage",
            lambda b, o: _loc(b, o, extra=["--rock-mask", b.garbage_catalog_csv]),
            ("rock",),
        ),
        Case("locate", "out-under-a-file", lambda b, o: _loc(b, b.a_file / "out"), ("a_file",)),
    ]
    return cases


def _evaluate_cases() -> list[Case]:
    return [
        Case(
            "evaluate",
            "truth-missing",
            lambda b, o: _eval(b, o, truth=b.missing_truth_json),
            ("not found",),
        ),
        Case(
            "evaluate",
            "truth-not-json",
            lambda b, o: _eval(b, o, truth=b.truth_not_json_json),
            ("truth",),
        ),
        Case(
            "evaluate",
            "truth-a-list",
            lambda b, o: _eval(b, o, truth=b.truth_list_json),
            ("truth",),
        ),
        Case(
            "evaluate",
            "results-missing",
            lambda b, o: _eval(b, o, results=b.missing_results),
            ("not found",),
        ),
        Case(
            "evaluate",
            "results-empty-folder",
            lambda b, o: _eval(b, o, results=b.results_empty),
            ("result",),
        ),
        Case(
            "evaluate",
            "result-wrong-shape",
            lambda b, o: _eval(b, o, results=b.results_wrong_shape),
            ("result.json",),
        ),
        Case(
            "evaluate",
            "result-missing-fields",
            lambda b, o: _eval(b, o, results=b.results_bad_cells),
            ("is not a locate result",),
        ),
        Case(
            "evaluate",
            "hit-radius-negative",
            lambda b, o: _eval(b, o, extra=["--hit-radius-m", "-5"]),
            ("--hit-radius-m",),
        ),
        Case(
            "evaluate",
            "hit-radius-nan",
            lambda b, o: _eval(b, o, extra=["--hit-radius-m", "nan"]),
            ("--hit-radius-m",),
        ),
        Case("evaluate", "out-under-a-file", lambda b, o: _eval(b, b.a_file / "out"), ("a_file",)),
    ]


def _triplets_cases() -> list[Case]:
    return [
        Case(
            "triplets",
            "archive-missing",
            lambda b, o: ["triplets", "--archive", b.missing_archive, "--out", o],
            ("does not exist",),
        ),
        Case(
            "triplets",
            "archive-a-file",
            lambda b, o: ["triplets", "--archive", b.a_file, "--out", o],
            ("a_file",),
        ),
        Case(
            "triplets",
            "archive-not-an-archive",
            lambda b, o: ["triplets", "--archive", b.results_empty, "--out", o],
            ("truth.json",),
        ),
        Case(
            "triplets",
            "buffer-negative",
            lambda b, o: ["triplets", "--archive", b.archive, "--buffer-m", "-1", "--out", o],
            ("--buffer-m",),
        ),
        Case(
            "triplets",
            "out-under-a-file",
            lambda b, o: ["triplets", "--archive", b.archive, "--out", b.a_file / "out"],
            ("a_file",),
        ),
    ]


def _train(bad: BadFiles, out: Path, *extra: object, data=None) -> list[object]:
    data = data or bad.dataset
    return [
        "train",
        "--model",
        "signet",
        "--data",
        data,
        "--epochs",
        "1",
        *extra,
        "--out",
        out / "model.pt",
    ]


def _train_cases() -> list[Case]:
    return [
        Case(
            "train",
            "data-missing",
            lambda b, o: _train(b, o, data=b.missing_dataset),
            ("not found",),
        ),
        Case(
            "train",
            "data-not-a-dataset",
            lambda b, o: _train(b, o, data=b.results_empty),
            ("manifest.json",),
        ),
        Case(
            "train",
            "data-corrupt-samples",
            lambda b, o: _train(b, o, data=b.corrupt_dataset),
            ("corrupt",),
        ),
        Case(
            "train",
            "model-unknown",
            lambda b, o: ["train", "--model", "vgg16", "--data", b.dataset, "--out", o / "m.pt"],
            ("unknown model",),
        ),
        Case("train", "epochs-zero", lambda b, o: _train(b, o, "--epochs", "0"), ("--epochs",)),
        Case("train", "lr-negative", lambda b, o: _train(b, o, "--lr", "-1"), ("--lr",)),
        Case(
            "train",
            "batch-size-zero",
            lambda b, o: _train(b, o, "--batch-size", "0"),
            ("--batch-size",),
        ),
        Case(
            "train",
            "resume-garbage",
            lambda b, o: _train(b, o, "--resume", b.garbage_model_pt),
            ("not a PyTorch file",),
        ),
        Case(
            "train",
            "weights-missing",
            lambda b, o: _train(b, o, "--weights", b.missing_model_pt),
            ("not found",),
        ),
        Case("train", "out-under-a-file", lambda b, o: _train(b, b.a_file), ("a_file",)),
    ]


def _synth(out: Path, *extra: object) -> list[object]:
    return ["synth", "--preset", "tiny", *extra, "--out", out]


def _synth_cases() -> list[Case]:
    dem_cases = {
        "missing": ("not found",),
        "empty": ("is empty (0 bytes)",),
        "garbage": ("cannot read",),
        "folder": ("is a folder",),
    }
    cases = _family(
        "synth",
        "dem",
        dem_cases,
        lambda b, o, kind: _synth(o, "--dem", _file(b, kind, "reference.tif")),
    )
    cases += [
        Case(
            "synth",
            "dem-no-crs",
            lambda b, o: _synth(o, "--dem", b.nocrs_reference_tif),
            ("no CRS",),
        ),
        Case(
            "synth",
            "dem-1x1",
            lambda b, o: _synth(o, "--dem", b.one_px_reference_tif),
            ("1 x 1 pixels",),
        ),
        Case("synth", "out-a-file", lambda b, o: _synth(b.a_file), ("a_file",)),
    ]
    return cases


def _batch_cases() -> list[Case]:
    return [
        Case(
            "batch",
            "catalog-missing",
            lambda b, o: _batch(b, o, b.missing_catalog_csv),
            ("not found",),
        ),
        Case(
            "batch",
            "folder-not-an-archive",
            lambda b, o: _batch(b, o, b.results_empty),
            ("not an archive",),
        ),
        Case(
            "batch",
            "catalog-without-reference",
            lambda b, o: _batch(b, o, b.catalog),
            ("--reference",),
        ),
        Case(
            "batch",
            "catalog-garbage",
            lambda b, o: _batch(b, o, b.garbage_catalog_csv, "--reference", b.reference),
            ("catalog",),
        ),
        Case(
            "batch",
            "catalog-nan-lon",
            lambda b, o: _batch(b, o, b.catalog_nan_lon_csv, "--reference", b.reference),
            ("row 1", "lon"),
        ),
        Case(
            "batch",
            "reference-missing",
            lambda b, o: _batch(b, o, b.catalog, "--reference", b.missing_reference_tif),
            ("not found",),
        ),
        Case(
            "batch",
            "reference-garbage",
            lambda b, o: _batch(b, o, b.catalog, "--reference", b.garbage_reference_tif),
            ("cannot read",),
        ),
        Case(
            "batch",
            "reference-geographic",
            lambda b, o: _batch(b, o, b.catalog, "--reference", b.geographic_reference_tif),
            ("geographic CRS",),
        ),
        Case(
            "batch",
            "workers-negative",
            lambda b, o: _batch(b, o, None, "--workers", "-1"),
            ("--workers",),
        ),
        Case(
            "batch",
            "model-garbage",
            lambda b, o: _batch(b, o, None, "--model", b.garbage_model_pt),
            ("not a PyTorch file",),
        ),
        Case("batch", "out-under-a-file", lambda b, o: _batch(b, b.a_file / "out"), ("a_file",)),
    ]


def _demo_cases() -> list[Case]:
    return [
        Case(
            "demo",
            "model-garbage",
            lambda b, o: ["demo", "--model", b.garbage_model_pt, "--out", o],
            ("not a PyTorch file",),
        ),
        Case(
            "demo",
            "model-unknown",
            lambda b, o: ["demo", "--model", "vgg16", "--out", o],
            ("unknown model",),
        ),
        Case(
            "demo",
            "buffer-negative",
            lambda b, o: ["demo", "--buffer-m", "-1", "--out", o],
            ("--buffer-m",),
        ),
        Case("demo", "out-a-file", lambda b, o: ["demo", "--out", b.a_file], ("a_file",)),
    ]


CASES: tuple[Case, ...] = (
    *_aoi_cases(),
    *_preprocess_cases(),
    *_locate_cases(),
    *_evaluate_cases(),
    *_triplets_cases(),
    *_train_cases(),
    *_synth_cases(),
    *_batch_cases(),
    *_demo_cases(),
)


def counts() -> Counter[str]:
    """Cases per command, as docs/reliability.md lists them."""
    return Counter(case.command for case in CASES)
