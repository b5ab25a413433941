"""The notebook API (`fallbackscope.api.open`), the edge cases of the issue, and import hygiene."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import fallbackscope.api as fs
from analytics.common import Rate
from fallbackscope.core.errors import FallbackscopeError

H, S, OP = "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-8"


def _open(adb, **kw) -> fs.Database:
    adb.close()
    return fs.open(adb.path, **kw)


def test_open_is_read_only_and_answers_with_dataframes(adb):
    adb.chain("a", "2026-03-02 10:00", (H, "refusal"), (S, "ok"), session_id="s")
    adb.chain("b", "2026-03-09 10:00", (H, "ok"), session_id="s")
    with _open(adb) as db:
        weekly = db.refusal_rate(by="week")
        assert isinstance(weekly, pd.DataFrame)
        assert weekly[["week", "numerator", "denominator"]].values.tolist() == [["2026-W10", 1, 1], ["2026-W11", 0, 1]]
        assert db.session_refusal_rate(by="week")["denominator"].tolist() == [1, 1]
        assert db.fallback_rate(by=None)["numerator"].tolist() == [1]
        assert db.weekly_report("2026-W11")["previous_week"]["refusal_rate"]["numerator"] == 1
        assert db.drift("2026-W11").delta == pytest.approx(-1.0)
        assert db.credits().credits_minted == 0
        assert set(db.metrics(by="model")["model"]) == {H, S}
        with pytest.raises(Exception):  # noqa: B017 - DuckDB refuses writes on a read-only connection
            db.sql("DELETE FROM attempts")


def test_open_with_a_policy_file_replaces_the_stored_policy(adb, tmp_path):
    adb.set_policy("[workloads.default]\nrefusal_slo = 0.5\n")
    adb.chain("a", "2026-03-02 10:00", (H, "ok"))
    path = tmp_path / "p.toml"
    path.write_text("[workloads.default]\nrefusal_slo = 0.25\n", encoding="utf-8")
    adb.close()
    with fs.open(adb.path, policy=path) as db:
        assert db.slo()["slo"].tolist() == [0.25]
    with fs.open(adb.path) as db:
        assert db.slo()["slo"].tolist() == [0.5]


def test_opening_a_missing_database_is_a_one_line_error(tmp_path):
    with pytest.raises(FallbackscopeError, match="no such database"):
        fs.open(tmp_path / "none.duckdb")


def test_every_method_answers_on_an_empty_database(adb):
    with _open(adb) as db:
        for name in ("refusal_rate", "session_refusal_rate", "fallback_rate", "unresolved_rate", "escalation_rate",
                     "retry_rate"):
            assert getattr(db, name)(by="week").empty, name
            assert getattr(db, name)(by=None)["denominator"].tolist() == [0], name
        assert db.costs().empty and db.costs(by=None)["chains"].tolist() == [0]
        for name in ("attempt_refusal_rate", "refusals_by_category", "slo", "escalation_by_trigger", "resolution",
                     "fallbacks_by_trigger", "start_tier_advice", "credit_outcomes", "credit_ladder", "errors",
                     "outcomes", "violations"):
            assert getattr(db, name)().empty, name
        assert db.refusal_rate(by=None)[["numerator", "denominator"]].values.tolist() == [[0, 0]]
        assert db.credits().redemption_rate == Rate.of(0, 0)
        assert db.drift() is None
        assert db.weekly_report()["totals"]["chains"] == 0


def test_a_workload_with_a_single_chain(adb):
    adb.chain("only", "2026-03-02 10:00", (H, "refusal"), (S, "ok"), workload="solo")
    with _open(adb) as db:
        row = db.refusal_rate(by="workload").iloc[0]
        # 1/1: Wilson interval [1 / (1 + z²), 1] = [0.2065, 1]
        assert (row["workload"], row["value"], row["ci95_high"]) == ("solo", 1.0, 1.0)
        assert row["ci95_low"] == pytest.approx(1 / (1 + 1.959964**2))
        assert db.resolution()["chains_resolved"].tolist() == [0, 1, 0]  # haiku, sonnet, unresolved


def test_an_unknown_model_is_unpriced_never_free(adb):
    adb.chain("m", "2026-03-02 10:00", ("claude-mystery-9", "ok", {"cost_usd": None, "input_tokens": 10}))
    adb.chain("k", "2026-03-02 10:01", (H, "ok", {"cost_usd": 0.001}))
    with _open(adb) as db:
        per_model = db.metrics(by="model").set_index("model")
        assert pd.isna(per_model.loc["claude-mystery-9", "cost_usd"])
        assert per_model.loc["claude-mystery-9", "unpriced_attempts"] == 1
        report = db.weekly_report("2026-W10")
        assert report["totals"]["cost_usd"] == pytest.approx(0.001)
        assert report["totals"]["unpriced_attempts"] == 1


def test_analytics_never_imports_the_dashboard_libraries():
    code = ("import sys, fallbackscope.render.report, analytics.rollup, fallbackscope.api; "
            "bad = [m for m in ('dash', 'plotly') if m in sys.modules]; print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
