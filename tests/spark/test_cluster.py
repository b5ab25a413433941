"""On a cluster the engine ships its own code (issue 19): a standalone Spark cluster on loopback — a master and a
worker started from the PySpark distribution, executors in their own JVMs — whose workers' Python cannot import
fallbackscope, ingest or analytics unless they come from a zip Spark put on its path. `ingest`, `metrics` and
`report weekly --engine spark` run there as a user runs them and equal the DuckDB engine's results field by field.

The cluster test is marked `cluster` (skip it locally with `-m 'not cluster'`; CI runs it)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_runs import SPARK_TUNING, assert_engines_agree, engine_results, user_env
from spark_tuning import JVM_TUNING

from fallbackscope.spark import ship

pytestmark = pytest.mark.spark

# the modules whose functions the executors run (mapInArrow, applyInArrow): what they import is what workers need
EXECUTOR_MODULES = ("fallbackscope.spark.ingest", "fallbackscope.spark.linking", "ingest.extract", "ingest.parse",
                    "ingest.sources", "ingest.dedup", "ingest.formats.otel_nesting")
GUARD = '''\
"""Installed by the tests' worker Python: fallbackscope's packages import only from a zip on sys.path."""
import importlib.machinery
import os
import sys

SHIPPED_ONLY = ("fallbackscope", "ingest", "analytics", "dashboard")


class ShippedOnly:
    def find_spec(self, name, path=None, target=None):
        if name not in SHIPPED_ONLY:
            return None
        for entry in sys.path:
            if entry.endswith(".zip"):
                spec = importlib.machinery.PathFinder.find_spec(name, [entry])
                if spec is not None:
                    with open({log!r}, "a") as fh:
                        fh.write(f"{{os.getpid()}} {{name}} {{entry}}\\n")
                    return spec
        raise ModuleNotFoundError(f"No module named {{name!r}} (not in a shipped zip)", name=name)


sys.meta_path.insert(0, ShippedOnly())
'''


def guarded_python(folder: Path) -> tuple[Path, Path]:
    """Write `folder/bin/python3` (and `python`): this interpreter, with every package it has installed except
    fallbackscope's own, which it imports only from a zip on its path. Returns (bin folder, its import log)."""
    guard, bin_dir, log = folder / "guard", folder / "bin", folder / "shipped-imports.log"
    guard.mkdir(parents=True)
    bin_dir.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD.format(log=str(log)))
    for name in ("python3", "python"):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nPYTHONPATH="{guard}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" "$@"\n')
        shim.chmod(0o755)
    return bin_dir, log


# ---------------------------------------------------------------- the code zip, without a cluster


def test_the_code_zip_holds_the_installed_packages_and_is_built_once_per_version():
    path = ship.code_zip()
    names = zipfile.ZipFile(path).namelist()
    assert {n.split("/")[0] for n in names} == {"fallbackscope", "ingest"}
    assert "fallbackscope/core/prices.toml" in names and "fallbackscope/core/migrations/001_initial.sql" in names
    assert "ingest/formats/otel_nesting.py" in names and not [n for n in names if "__pycache__" in n]
    ship.code_zip.cache_clear()
    assert ship.code_zip() == path  # the same code: the same zip, byte for byte, by name


def test_the_zip_leaves_out_bytecode_hidden_files_and_key_files(tmp_path, monkeypatch):
    package = tmp_path / "editable_pkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / ".git").mkdir()
    for name in ("__init__.py", "prices.toml", "local.duckdb.key", ".env", "__pycache__/x.cpython-311.pyc",
                 ".git/config"):
        (package / name).write_text("# x")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [arcname for arcname, _ in ship._package_files("editable_pkg")] == ["editable_pkg/__init__.py",
                                                                              "editable_pkg/prices.toml"]


def test_executor_modules_import_from_the_zip_alone_with_only_the_documented_requirements(tmp_path):
    bin_dir, log = guarded_python(tmp_path)
    allowed = sorted(top for name in _with_dependencies(ship.WORKER_REQUIREMENTS) for top in _top_levels(name))
    # a worker that has the requirements (and what they pull in) and nothing else of this environment
    code = f"""
import importlib, importlib.machinery, os, sys, sysconfig
ALLOWED = set({allowed!r}) | set(sys.stdlib_module_names) | set(sys.modules) | {{"fallbackscope", "ingest"}}
STDLIB = [sysconfig.get_paths()["stdlib"], os.path.join(sysconfig.get_paths()["platstdlib"], "lib-dynload")]
class OnlyRequirements:
    def find_spec(self, name, path=None, target=None):
        if "." in name or name in ALLOWED or importlib.machinery.PathFinder.find_spec(name, STDLIB):
            return None
        raise ModuleNotFoundError(f"No module named {{name!r}} (not a worker requirement)", name=name)
sys.meta_path.insert(0, OnlyRequirements())
for name in {EXECUTOR_MODULES!r}:
    importlib.import_module(name)
print(" ".join(sorted({{m.split(".")[0] for m in sys.modules}})))
"""
    denied = subprocess.run([str(bin_dir / "python3"), "-c", code], capture_output=True, text=True)
    assert denied.returncode != 0 and "not in a shipped zip" in denied.stderr  # the guard really guards
    env = {**os.environ, "PYTHONPATH": str(ship.code_zip())}
    proc = subprocess.run([str(bin_dir / "python3"), "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert {line.split()[1] for line in log.read_text().splitlines()} == {"fallbackscope", "ingest"}
    imported = set(proc.stdout.split())
    assert all(_top_levels(name) & imported for name in ship.WORKER_REQUIREMENTS)  # none listed needlessly


def _with_dependencies(names) -> set[str]:
    """Return the distributions `names` install: themselves and their required dependencies, recursively."""
    seen: set[str] = set()
    todo = [_normal(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requirements = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:  # a dependency for another platform
            continue
        for requirement in requirements:
            if "extra ==" not in requirement:
                todo.append(_normal(re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]))
    return seen


def _top_levels(distribution: str) -> set[str]:
    """Return the top-level modules an installed distribution provides (`_duckdb` for duckdb's extension too)."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return set()
    return {f.parts[0].split(".")[0] for f in files if not f.parts[0].endswith((".dist-info", ".data", ".pth"))
            and f.parts[0] != ".."}


def _normal(distribution: str) -> str:
    return distribution.lower().replace("_", "-")


def test_worker_requirements_are_pinned_to_the_drivers_versions():
    assert ship.worker_requirements() == [f"{n}=={importlib.metadata.version(n)}" for n in ship.WORKER_REQUIREMENTS]


# ---------------------------------------------------------------- a standalone cluster on loopback


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandaloneCluster:
    """A Spark master and one worker (1 core, 1 GB) on 127.0.0.1, each in its own process group, logs in `folder`."""

    def __init__(self, folder: Path, worker_path: str) -> None:
        from pyspark.find_spark_home import _find_spark_home

        self.folder = folder
        self.home = _find_spark_home()
        self.port = _free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.env = {**user_env(), "SPARK_HOME": self.home, "SPARK_LOCAL_IP": "127.0.0.1",
                    "SPARK_DAEMON_JAVA_OPTS": JVM_TUNING}
        self.worker_env = {**self.env, "PATH": worker_path}
        self.procs: list[subprocess.Popen] = []

    def _start(self, name: str, args: list[str], env: dict[str, str], ready: str) -> None:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - closed when the process is stopped
        self.procs.append(subprocess.Popen([f"{self.home}/bin/spark-class", *args], stdout=log,
                                           stderr=subprocess.STDOUT, env=env, start_new_session=True))
        deadline = time.monotonic() + 120
        while ready not in (self.folder / f"{name}.log").read_text(errors="replace"):
            if self.procs[-1].poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Spark {name} did not start\n{self.logs()}")
            time.sleep(0.5)

    def start(self) -> None:
        self._start("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port",
                               str(self.port), "--webui-port", str(_free_port())], self.env, "elected leader")
        work = self.folder / "work"
        self._start("worker", ["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1",
                               "--memory", "1g", "--webui-port", str(_free_port()), "--work-dir", str(work),
                               self.url], self.worker_env, "Successfully registered with master")

    def stop(self) -> None:
        """Stop the worker (and its executors, in its process group), then the master."""
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)

    def gone(self) -> bool:
        """Return whether no process of the master's or the worker's group is left."""
        for proc in self.procs:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                continue
            return False
        return True

    def logs(self, lines: int = 40) -> str:
        """Return the last lines of the master's, the worker's and the executors' logs."""
        out = []
        for path in [self.folder / "master.log", self.folder / "worker.log",
                     *sorted((self.folder / "work").glob("app-*/*/stderr"))]:
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path.relative_to(self.folder)}\n" + "\n".join(tail))
        return "\n".join(out)


@contextlib.contextmanager
def standalone_cluster(folder: Path, worker_path: str) -> Iterator[StandaloneCluster]:
    folder.mkdir(parents=True)
    cluster = StandaloneCluster(folder, worker_path)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
    deadline = time.monotonic() + 30
    while not cluster.gone() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert cluster.gone(), "a process of the test's Spark cluster outlived it"


@pytest.mark.cluster
@pytest.mark.slow
def test_a_standalone_cluster_runs_the_shipped_code_and_equals_duckdb(tmp_path, duckdb_runs):
    duck, db = duckdb_runs
    bin_dir, shipped = guarded_python(tmp_path / "python")
    # the worker's `python3` (PySpark's default, nothing set) is the guarded one: fallbackscope only from a zip
    worker_path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    store = tmp_path / "store"  # on the one machine: storage every executor reaches
    with standalone_cluster(tmp_path / "cluster", worker_path) as cluster:
        options = ("--engine", "spark", "--spark-master", cluster.url, *SPARK_TUNING,
                   "--spark-conf", "spark.driver.host=127.0.0.1", "--spark-conf", "spark.executor.memory=768m",
                   # one machine: a task never waits for a "better" executor (the 3 s default, per stage)
                   "--spark-conf", "spark.locality.wait=0")
        try:
            spark = engine_results(tmp_path, str(store), user_env(SPARK_LOCAL_IP="127.0.0.1"), options)
        except AssertionError as exc:
            pytest.fail(f"{exc}\n{cluster.logs()}")
        executors = list((cluster.folder / "work").glob("app-*/*/stderr"))
        assert len(executors) >= 3  # one application per command, each with an executor in its own JVM
    assert_engines_agree(duck, db, spark, store)
    imports = [line.split() for line in shipped.read_text().splitlines()]
    assert {name for _, name, _ in imports} == {"fallbackscope", "ingest"}
    copies = {path.name for path in (cluster.folder / "work").glob("app-*/*/fallbackscope-code-*.zip")}
    assert copies and {Path(zip_path).name for _, _, zip_path in imports} <= copies  # the executors' own copies
