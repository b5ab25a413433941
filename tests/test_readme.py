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
    session = section("A real session")
    env = {**os.environ, "COLUMNS": "200"}
    run = [sys.executable, "-m", "fallbackscope.cli"]
    sample = subprocess.run([*run, "sample", "logs", "--seed", "7"], cwd=tmp_path, capture_output=True, text=True,
                            env=env)
    assert sample.stdout.strip() in session
    demo = subprocess.run([*run, "demo", "--no-serve"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert demo.returncode == 0, demo.stderr
    headline = [line for line in demo.stdout.splitlines() if line.startswith("  ")]
    assert len(headline) >= 6
    for line in headline:
        assert line in session, line
