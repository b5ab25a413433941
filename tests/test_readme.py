"""Docs that are tested: the README's quick start and its session output come from real runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, title
    return match.group(1)


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one():
    blocks = re.findall(r"```bash\n(.*?)```", section("Quick start"), re.S)
    assert [b.strip() for b in blocks] == ["pip install . && fallbackscope demo",
                                           "pip install '.[test]' && python -m pytest"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q '.[test]' && python -m pytest" in ci


def test_session_output_in_the_readme_is_what_the_commands_print(tmp_path):
    """Run the README's session as written — sample, ingest, the batch file, the nightly re-run, metrics —
    in one folder: every output line the README shows is one these commands print, and the metrics shown
    in "Metrics, reports and the Python API" are that same database's."""
    session = section("A real session")
    env = {**os.environ, "COLUMNS": "200"}
    run = [sys.executable, "-m", "fallbackscope.cli"]

    def cli(*args: str) -> str:
        proc = subprocess.run([*run, *args], cwd=tmp_path, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    printed = cli("sample", "logs", "--seed", "7")
    printed += cli("ingest", "logs", "--db", "fs.duckdb")
    batch = re.search(r"\$ fallbackscope ingest (logs/\S+) --db fs.duckdb \\\n\s+(.*)\n", session)
    assert batch, "the README's batch command"
    printed += cli("ingest", batch.group(1), "--db", "fs.duckdb", *batch.group(2).split())
    printed += cli("ingest", "logs", "--db", "fs.duckdb")
    metrics = cli("metrics", "--db", "fs.duckdb", "--by", "week")
    printed += metrics
    shown = re.search(r"```console\n(.*?)```", session, re.S).group(1)
    output = [line for line in shown.splitlines() if not line.startswith(("$", " ")) and line != "…"]
    assert len(output) >= 12
    for line in output:
        assert line in printed.splitlines(), line
    for line in metrics.strip().splitlines():  # the whole table, not a part of it
        assert line in shown.splitlines(), line
    example = re.search(r"```console\n\$ fallbackscope metrics --db fs.duckdb --by week\n(.*?)```",
                        section("Metrics, reports and the Python API"), re.S).group(1)
    for line in example.strip().splitlines():
        if line.startswith("$"):
            continue
        assert any(real.startswith(line.rstrip("… ").rstrip()) for real in metrics.splitlines()), line
