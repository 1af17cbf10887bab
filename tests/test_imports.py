"""Every module of aeroloc imports on its own: an import cycle fails here, whatever the order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import aeroloc

# Runs in a fresh interpreter: lists aeroloc's modules, then imports each one
# first, after dropping every aeroloc module the previous import loaded (the
# third-party ones stay cached, so the loop is quick). A module in a cycle
# fails when it is imported first, as ``from a import b`` finds ``a`` half-built.
_SCRIPT = """
import importlib, json, pkgutil, sys, traceback
import aeroloc
names = sorted(
    m.name
    for m in pkgutil.walk_packages(aeroloc.__path__, "aeroloc.")
    if not m.name.rsplit(".", 1)[-1].startswith("__")
)
failed = {}
for name in names:
    for loaded in [k for k in sys.modules if k == "aeroloc" or k.startswith("aeroloc.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps({"modules": names, "failed": failed}))
"""


def test_every_module_imports_alone() -> None:
    src = str(Path(aeroloc.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    env["MPLBACKEND"] = "Agg"
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "aeroloc.verify.walk" in report["modules"]
    assert "aeroloc.verify.matching.base" in report["modules"]
    assert report["failed"] == {}, "\n".join(f"{k}:\n{v}" for k, v in report["failed"].items())
