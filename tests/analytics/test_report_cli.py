"""`report weekly` and `metrics` say what they measure (docs/metrics.md §6.1, §7, §7.1): exit 4 over a
period without chains whatever the flags, the SLO's rate and source, coverage and partial weeks, policy
names that match nothing — on hand-made databases, through the real command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

H, S = "claude-haiku-4-5", "claude-sonnet-4-5"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fallbackscope.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def two_weeks(adb):
    """Week 2026-W10 with data on 3 days (one refused session of two in support-chat); W09 on 1 day."""
    adb.add("p1", 1, "2026-02-25 10:00", H, workload="support-chat", session_id="s0")
    adb.add("a", 1, "2026-03-02 10:00", H, "refusal", workload="support-chat", session_id="s1")
    adb.add("a", 2, "2026-03-02 10:00:05", S, workload="support-chat", session_id="s1")
    adb.add("b", 1, "2026-03-03 10:00", H, workload="support-chat", session_id="s2")
    adb.add("c", 1, "2026-03-04 10:00", H, workload="batch-extract")
    adb.close()
    return adb.path


@pytest.mark.parametrize("fmt", ["json", "csv", "md", "html"])
def test_a_week_without_chains_exits_4_whatever_the_flags_and_says_no_data(two_weeks, tmp_path, fmt):
    out = tmp_path / f"r.{fmt}"
    proc = cli("report", "weekly", "--db", two_weeks, "--week", "2099-W01", "--fail-on-slo", "--format", fmt,
               "--out", out)
    assert proc.returncode == 4, proc.stderr
    assert "no data: no chain started in the week" in proc.stderr
    text = out.read_text(encoding="utf-8")
    if fmt == "csv":
        assert text.count("\n") == 1 and text.startswith("week,level,workload")  # the header only
    else:
        assert "no data: no chain started in 2099-W01" in text


def test_metrics_over_a_period_without_chains_exit_4(two_weeks):
    proc = cli("metrics", "--db", two_weeks, "--since", "2099-01-01", "--format", "json")
    assert proc.returncode == 4 and "no data" in proc.stderr
    assert cli("metrics", "--db", two_weeks, "--format", "json").returncode == 0


def test_a_missed_slo_still_exits_3_when_the_week_has_data(two_weeks):
    proc = cli("report", "weekly", "--db", two_weeks, "--week", "2026-W10", "--fail-on-slo")
    assert proc.returncode == 3, proc.stderr  # support-chat: 1 of 2 sessions refused > 5%
    report = json.loads(proc.stdout)
    chat = next(w for w in report["workloads"] if w["workload"] == "support-chat")
    assert (chat["slo"], chat["slo_source"], chat["slo_met"]) == (0.05, "default", False)


def test_the_report_says_its_coverage_and_flags_a_partial_week(two_weeks, tmp_path):
    policy = tmp_path / "p.toml"
    policy.write_text("[workloads.support-chat]\nrefusal_slo = 0.6\n", encoding="utf-8")
    proc = cli("report", "weekly", "--db", two_weeks, "--week", "2026-W10", "--policy", policy, "--fail-on-slo")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["coverage"] == {"days_with_data": 3, "days": 7}
    assert report["previous_week"]["coverage"] == {"days_with_data": 1, "days": 7}
    assert "partial week: the previous week has data on 1 of 7 days." in report["warnings"]
    assert "partial week" in proc.stderr and "partial week" not in proc.stdout.split('"warnings"')[0]
    chat = next(w for w in report["workloads"] if w["workload"] == "support-chat")
    assert (chat["slo"], chat["slo_source"], chat["slo_met"]) == (0.6, "policy", True)
    md = cli("report", "weekly", "--db", two_weeks, "--week", "2026-W10", "--format", "md").stdout
    assert "data on 3 of 7 days" in md and "5.0% (default)" in md and "on the session refusal rate" in md


def test_misspelt_names_in_a_policy_are_said_with_the_closest_known_name(two_weeks, tmp_path):
    policy = tmp_path / "p.toml"
    policy.write_text('[workloads.suport-chat]\nchain = ["claude-haiku-4-5", "claude-sonet-4-5"]\n',
                      encoding="utf-8")
    for args in (["metrics", "--format", "json"], ["report", "weekly", "--week", "2026-W10"]):
        proc = cli(*args, "--db", two_weeks, "--policy", policy)
        assert proc.returncode == 0, proc.stderr
        assert "workload `suport-chat` has no attempts in the data (did you mean support-chat?)" in proc.stderr
        assert "model `claude-sonet-4-5` in the chain of `suport-chat` is neither priced nor in the data " \
               "(did you mean claude-sonnet-4-5?)" in proc.stderr
        json.loads(proc.stdout)  # warnings never go into JSON on stdout outside the report's own list
