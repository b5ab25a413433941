"""`compute_metrics` and `format_metrics`: what `fallbackscope metrics` shows."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from analytics.rollup import compute_metrics
from fallbackscope.core.errors import UsageError
from fallbackscope.core.policy import parse_policy_toml
from fallbackscope.render.metrics_table import format_metrics

H, S = "claude-haiku-4-5", "claude-sonnet-4-5"


def _data(adb):
    adb.chain("a", "2026-03-02 10:00", (H, "refusal", {"refusal_category": "cyber", "credit_minted_fp": "A"}),
              (S, "ok", {"cost_usd": 0.01, "credit_presented_fp": "A", "credit_status": "redeemed"}),
              workload="chat", session_id="s1")
    adb.chain("b", "2026-03-03 10:00", (H, "ok", {"cost_usd": 0.002}), workload="chat", session_id="s1")
    adb.chain("c", "2026-03-17 10:00", (H, "error", {"cost_usd": 0.0}), (H, "ok", {"cost_usd": 0.002}),
              workload="docs")


def test_metrics_by_week_fill_weeks_without_traffic_and_test_drift(adb):
    _data(adb)
    df = compute_metrics(adb.writer, by="week")
    assert list(df["week"]) == ["2026-W10", "2026-W11", "2026-W12"]
    w10, w11, w12 = df.to_dict("records")
    assert (w10["chains"], w10["attempts"], w10["sessions"]) == (2, 3, 1)
    assert (w10["refusal_rate_numerator"], w10["refusal_rate_denominator"], w10["refusal_rate"]) == (1, 2, 0.5)
    assert (w10["credits_minted"], w10["credits_redeemed"], w10["redemption_rate"]) == (1, 1, 1.0)
    assert w10["cost_usd"] == pytest.approx(0.012)
    assert w11["chains"] == 0 and math.isnan(w11["refusal_rate"])
    assert (w12["retry_rate_numerator"], w12["errors"]) == (1, 1)
    # drift: week 11 has no chains → null; week 12 against week 11 → null too
    assert w11["drift_delta"] is None and w12["drift_delta"] is None


def test_metrics_by_workload_carry_the_slo(adb):
    _data(adb)
    policy = parse_policy_toml("[workloads.chat]\nrefusal_slo = 0.5\n")
    df = compute_metrics(adb.writer, by="workload", policy=policy).set_index("workload")
    # chat: one session s1 with a refused chain → 1/1 > 0.5 → not met, burn 2.0
    assert df.loc["chat", "session_refusal_rate"] == 1.0
    chat = df.loc["chat"]
    assert (chat["slo"], bool(chat["slo_met"]), chat["slo_burn_rate"]) == (0.5, False, 2.0)
    assert df.loc["docs", "slo"] == 0.05 and bool(df.loc["docs", "slo_met"]) is True


def test_metrics_by_day_model_and_category(adb):
    _data(adb)
    by_day = compute_metrics(adb.writer, by="day", since="2026-03-02", until="2026-03-05")
    assert [str(d) for d in by_day["day"]] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert list(by_day["chains"]) == [1, 1, 0]
    by_model = compute_metrics(adb.writer, by="model").set_index("model")
    # haiku: attempts a#1 refusal, b#1 ok, c#1 error, c#2 ok → answered 3, refused 1
    assert (by_model.loc[H, "attempts"], by_model.loc[H, "attempt_refusal_rate_denominator"]) == (4, 3)
    assert by_model.loc[H, "attempt_refusal_rate"] == pytest.approx(1 / 3)
    assert (by_model.loc[S, "chains_resolved"], by_model.loc[H, "chains_resolved"]) == (1, 2)
    by_cat = compute_metrics(adb.writer, by="category")
    assert by_cat[["category", "refused_attempts", "share"]].values.tolist() == [["cyber", 1, 1.0]]


def test_since_and_until_select_chains_by_their_first_attempt(adb):
    _data(adb)
    df = compute_metrics(adb.writer, by="workload", since="2026-03-03", until="2026-W12")
    assert df[["workload", "chains"]].values.tolist() == [["chat", 1]]


def test_unknown_grouping_or_format_is_a_usage_error(adb):
    with pytest.raises(UsageError, match="--by `hour`"):
        compute_metrics(adb.writer, by="hour")
    with pytest.raises(UsageError, match="--format `xml`"):
        format_metrics(compute_metrics(adb.writer, by="week"), "xml")  # type: ignore[arg-type]


def test_formats_render_rates_nested_in_json_flat_in_csv_and_compact_in_tables(adb):
    _data(adb)
    df = compute_metrics(adb.writer, by="week")
    records = json.loads(format_metrics(df, "json"))
    assert records[0]["week"] == "2026-W10"
    assert records[0]["refusal_rate"]["numerator"] == 1 and records[0]["refusal_rate"]["value"] == 0.5
    assert records[1]["refusal_rate"] == {"value": None, "numerator": 0, "denominator": 0, "ci95_low": None,
                                          "ci95_high": None}
    rows = list(csv.DictReader(io.StringIO(format_metrics(df, "csv"))))
    assert rows[0]["refusal_rate_numerator"] == "1" and rows[1]["refusal_rate"] == ""
    table = format_metrics(df, "table")
    assert table.splitlines()[0].split()[:3] == ["week", "chains", "sessions"]
    assert "50.0% (" in table and "—" in table


def test_an_empty_database_gives_empty_metrics_and_a_table_saying_so(adb):
    for by in ("day", "week", "workload", "model", "category"):
        df = compute_metrics(adb.writer, by=by)
        assert df.empty
        assert json.loads(format_metrics(df, "json")) == []
    assert format_metrics(compute_metrics(adb.writer, by="week"), "table") == "no chains in the period\n"
