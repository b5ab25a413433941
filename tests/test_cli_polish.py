"""Small things a new user meets first (issue 15): help without `<bool>` after flags, a command group given
an option, a demo that leaves nothing in the checkout, CSV workload rows with every count."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fallbackscope.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


@pytest.mark.parametrize("command", [["report", "weekly"], ["ingest"], ["demo"], ["metrics"]])
def test_help_shows_no_type_after_on_off_flags(command):
    proc = cli(*command, "--help")
    assert proc.returncode == 0
    assert "<bool>" not in proc.stdout
    assert "<path>" in proc.stdout or "<str>" in proc.stdout  # options that take a value keep their type


def test_an_option_given_to_a_command_group_names_the_missing_command():
    proc = cli("report", "--db", "x.duckdb")
    assert proc.returncode == 2
    assert " report` needs a command before its options: weekly (e.g. `" in proc.stderr
    assert "No such option" not in proc.stderr


@pytest.mark.slow
def test_the_demo_leaves_only_its_database_behind_and_the_csv_counts_every_workload_row(tmp_path):
    proc = cli("demo", "--no-serve", "--db", "demo.duckdb", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left in (["demo.duckdb"], ["demo.duckdb", "demo.duckdb.key"])  # no logs folder
    report = cli("report", "weekly", "--db", tmp_path / "demo.duckdb", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    workloads = [r for r in rows if r["level"] == "workload"]
    assert workloads and all(r["attempts"] and r["unpriced_attempts"] for r in workloads)
    total = next(r for r in rows if r["level"] == "total")
    assert sum(int(r["attempts"]) for r in workloads) == int(total["attempts"])
    assert sum(int(r["unpriced_attempts"]) for r in workloads) == int(total["unpriced_attempts"])
