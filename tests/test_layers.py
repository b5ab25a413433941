"""The layers of docs/metrics.md §0 hold: import-linter's contracts in pyproject.toml, and modules stay small."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fallbackscope", "ingest", "analytics", "dashboard")
# import-linter's own command, run by this interpreter (a `lint-imports` on PATH may be another Python's)
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
        "sys.argv[0] = 'lint-imports'; lint_imports_command()"]


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LINT, "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root,
                          capture_output=True, text=True, env={"PYTHONPATH": str(root), "PATH": ""}, timeout=120)


def test_import_contracts_are_kept():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def _copy_tree(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.css"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("fallbackscope/core/errors.py", "import analytics.common", "Layers point one way"),
    ("ingest/sources.py", "from analytics import metrics", "Layers point one way"),
    ("analytics/common.py", "import dashboard.figures", "Nothing under the shell imports the dashboard"),
    ("analytics/facts.py", "import plotly", "never imports the presentation"),
])
def test_a_wrong_way_import_breaks_a_contract(tmp_path, module, line, broken):
    root = _copy_tree(tmp_path)
    path = root / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    proc = _lint(root)
    assert proc.returncode == 1
    assert f"{broken}" in proc.stdout.replace("\n", " ")


def test_an_import_cycle_under_type_checking_breaks_a_contract(tmp_path):
    root = _copy_tree(tmp_path)
    path = root / "analytics" / "facts.py"
    path.write_text(path.read_text(encoding="utf-8")
                    + "\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import analytics.collect  # noqa\n",
                    encoding="utf-8")
    proc = _lint(root)
    assert proc.returncode == 1
    assert "No cycles are allowed in analytics" in proc.stdout


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for name in PACKAGES for p in (ROOT / name).rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert long == {}
