"""fallbackscope's own code for the executors of a Spark cluster, so its workers need only the dependencies.

The Python functions Spark runs on executors (parsing, merging nested spans, content ids, linking) live in
`fallbackscope.spark` and `ingest`, and import `fallbackscope.core`; nothing of `analytics` runs there (the
metrics are SQL, planned on the driver). On a cluster, `ship(spark_context)` adds one zip of the installed
`fallbackscope` and `ingest` packages with `SparkContext.addPyFile`: every executor puts it at the head of its
Python workers' `sys.path`, so the workers import the driver's very code, whatever else they have installed.

`python -m fallbackscope.spark.ship` prints what the workers' Python needs, pinned to the driver's versions
(docs/spark.md).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import sys
import tempfile
import weakref
import zipfile
from functools import cache
from importlib import metadata
from pathlib import Path

SHIPPED_PACKAGES = ("fallbackscope", "ingest")
# what the shipped modules run on executors import, besides the standard library and PySpark (which the
# cluster's Spark provides); tests/spark/test_cluster.py checks the list against a real import
WORKER_REQUIREMENTS = ("duckdb", "numpy", "orjson", "pandas", "pyarrow", "pydantic")
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # the same code gives the same zip, byte for byte
_shipped: weakref.WeakSet = weakref.WeakSet()


def _package_files(name: str) -> list[tuple[str, Path]]:
    """Return (name in the zip, file) for every file of an installed package: its modules and data, without
    bytecode caches, hidden files or key files (an editable install is a working folder)."""
    root = Path(importlib.import_module(name).__file__).resolve().parent
    out = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if (path.is_file() and "__pycache__" not in relative.parts and path.suffix not in (".pyc", ".pyo", ".key")
                and not any(part.startswith(".") for part in relative.parts)):
            out.append(((Path(name) / relative).as_posix(), path))
    return out


@cache
def code_zip() -> Path:
    """Return a zip of the packages the executors import, built from the installed package folders.

    The same code gives the same bytes, kept under a private folder of the temp folder and named by their hash:
    written once per version of the code, and a file found there is used only if it holds exactly those bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in SHIPPED_PACKAGES:
            for arcname, path in _package_files(name):
                info = zipfile.ZipInfo(arcname, _FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes())
    blob = buffer.getvalue()
    uid = os.getuid() if hasattr(os, "getuid") else None
    folder = Path(tempfile.gettempdir()) / f"fallbackscope-spark-{uid}"
    if uid is not None:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    if uid is None or folder.is_symlink() or info.st_uid != uid or info.st_mode & 0o077:
        folder = Path(tempfile.mkdtemp(prefix="fallbackscope-spark-"))  # not ours alone: code others could swap
    target = folder / f"fallbackscope-code-{hashlib.sha256(blob).hexdigest()[:16]}.zip"
    if not target.exists() or target.read_bytes() != blob:
        partial = folder / f".{target.name}.{os.getpid()}"
        partial.write_bytes(blob)
        os.replace(partial, target)  # atomic: another process writing the same zip is harmless
    return target


def ship(sc) -> bool:
    """Add the code zip to the SparkContext `sc` once; return True when this call added it.

    The driver already runs this code, so the zip that `addPyFile` also puts on the driver's `sys.path` is
    taken off again: a module imported later on the driver comes from the installed package, as before."""
    if sc in _shipped:
        return False
    path = str(code_zip())
    before = list(sys.path)
    sc.addPyFile(path)
    sys.path[:] = [entry for entry in sys.path if entry in before]
    _shipped.add(sc)
    return True


def worker_requirements() -> list[str]:
    """Return the workers' requirements pinned to the versions installed here, e.g. `pyarrow==24.0.0`."""
    return [f"{name}=={metadata.version(name)}" for name in WORKER_REQUIREMENTS]


if __name__ == "__main__":
    print("\n".join(worker_requirements()))
