"""The overview says what its numbers measure (issues 15 and 20): the SLO'd rate carries its target and where
the target came from, the chain refusal rate says it has no SLO, a partial week is flagged in the week-over-week
comparison, refusal rates are marked as lower bounds when stop reasons are unknown, and misspelt policy names
are said."""

from __future__ import annotations

import json

import pytest
from dashboard_support import PARTIAL_WEEK_SQL, REDACTED_SQL, find_ids, page_outputs, sample_variant, texts

from dashboard import figures
from dashboard.app import create_app
from dashboard.filters import Filters

WEEKS = Filters.from_query("?from=2026-10-19&to=2026-11-15").to_store()
SUPPORT_CHAT = Filters.from_query("?from=2026-10-19&to=2026-11-15&workload=support-chat").to_store()
SESSION_COLOUR = figures.RATE_COLOURS["session refusal rate"]

#: one workload with its own target, the others on the default
POLICY = """
[workloads.support-chat]
refusal_slo = 0.3
"""


def overview(db, filters=WEEKS, policy=None) -> dict:
    return page_outputs(create_app(db, policy).server.test_client(), "overview", filters)


def card(out: dict, name: str) -> str:
    return " · ".join(texts(find_ids(out["overview-kpis"]["children"])[f"kpi-{name}"]))


def target_lines(figure: dict) -> list[dict]:
    return [t for t in figure["data"] if "SLO" in (t.get("name") or "")]


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    return path


def test_the_session_refusal_rate_card_carries_the_default_target(sample):
    out = overview(sample[0])
    session = card(out, "session-refusal-rate")
    assert "SLO target 5.0% (default)" in session
    assert "Session refusal rate · SLO" in session
    assert find_ids(out["overview-kpis"]["children"])["kpi-session-refusal-rate"]["props"]["className"] == "kpi slo"


def test_a_policy_target_says_it_came_from_the_policy(sample, policy_file):
    one = overview(sample[0], SUPPORT_CHAT, policy_file)
    assert "SLO target 30.0% (policy)" in card(one, "session-refusal-rate")
    every = overview(sample[0], WEEKS, policy_file)
    assert "SLO targets 5.0%–30.0% (default, policy)" in card(every, "session-refusal-rate")
    rows = " ".join(texts(every["overview-slo"]["children"]))
    assert "30.0% (policy)" in rows and "5.0% (default)" in rows


def test_the_chain_refusal_rate_card_says_it_is_not_the_slod_rate(sample):
    chain = card(overview(sample[0]), "refusal-rate")
    assert "Refusal rate (chains)" in chain and "no SLO" in chain
    assert "target" not in chain


def test_the_daily_trend_draws_the_target_when_one_applies(sample, policy_file):
    trend = overview(sample[0])["overview-trend"]["figure"]
    (line,) = target_lines(trend)
    assert line["name"] == "session refusal rate SLO: target 5.0% (default)"
    assert line["y"] == [0.05, 0.05] and line["x"] == ["2026-10-19", "2026-11-15"]
    assert line["line"]["color"] == SESSION_COLOUR and line["line"]["dash"] == "dash"
    (line,) = target_lines(overview(sample[0], SUPPORT_CHAT, policy_file)["overview-trend"]["figure"])
    assert line["y"] == [0.3, 0.3] and "(policy)" in line["name"]


def test_different_targets_draw_no_line_but_say_why(sample, policy_file):
    trend = overview(sample[0], WEEKS, policy_file)["overview-trend"]["figure"]
    assert target_lines(trend) == []
    subtitle = trend["layout"]["title"]["subtitle"]["text"]
    assert "5.0%–30.0%" in subtitle and "one per workload" in subtitle


def test_the_weekly_session_refusal_chart_draws_the_target(sample, policy_file):
    client = create_app(sample[0], policy_file).server.test_client()
    weekly = page_outputs(client, "refusals", SUPPORT_CHAT)["refusals-sessions"]["figure"]
    names = [t["name"] for t in weekly["data"]]
    assert names == ["95% interval", "session refusal rate", "SLO: target 30.0% (policy)"]
    assert weekly["data"][2]["y"] == [0.3, 0.3] and weekly["data"][2]["x"] == ["2026-W43", "2026-W46"]
    assert "Session refusal rate" in weekly["layout"]["title"]["text"]
    per_workload = page_outputs(client, "refusals", WEEKS)["refusals-workload"]["figure"]
    marks = next(t for t in per_workload["data"] if t["name"] == "SLO target")
    assert "30.0% (policy)" in marks["customdata"] and "5.0% (default)" in marks["customdata"]


def test_a_partial_week_is_flagged_in_the_week_over_week_comparison(sample, tmp_path):
    db = sample_variant(sample[0], tmp_path / "partial.duckdb", PARTIAL_WEEK_SQL)
    out = overview(db, Filters.from_query("?from=2026-11-02&to=2026-11-15").to_store())
    wow = " ".join(texts(out["overview-wow"]["children"]))
    assert "partial week: this week has data on 1 of 7 days" in wow
    assert "2026-W45 (7 of 7 days)" in wow and "2026-W46 (1 of 7 days)" in wow
    warnings = " ".join(texts(out["overview-warnings"]["children"]))
    assert "2026-W45 → 2026-W46" in warnings and "1 of 7 days" in warnings
    assert "(partial week)" in card(out, "refusal-rate")


def test_whole_weeks_are_not_flagged(sample):
    out = overview(sample[0])
    assert "partial week" not in json.dumps(out)
    assert "2026-W46 (7 of 7 days)" in " ".join(texts(out["overview-wow"]["children"]))


def test_unknown_stop_reasons_make_the_refusal_rates_lower_bounds(sample, tmp_path):
    import duckdb

    db = sample_variant(sample[0], tmp_path / "redacted.duckdb", REDACTED_SQL)
    with duckdb.connect(str(db), read_only=True) as con:
        (unknown,) = con.execute("SELECT count(*) FROM attempts WHERE outcome = 'ok' AND stop_reason IS NULL "
                                 "AND ts >= TIMESTAMPTZ '2026-10-19 00:00:00+00'").fetchone()
    assert unknown > 0
    out = overview(db)
    warnings = " ".join(texts(out["overview-warnings"]["children"]))
    assert f"{unknown:,} attempts say nothing of their stop reason" in warnings and "lower bound" in warnings
    assert "≥ " in card(out, "refusal-rate") and "≥ " in card(out, "session-refusal-rate")
    assert "≥ " not in card(out, "fallback-rate")
    refusals = page_outputs(create_app(db).server.test_client(), "refusals", WEEKS)
    assert "lower bound" in " ".join(texts(refusals["refusals-warnings"]["children"]))


def test_known_stop_reasons_give_no_warning(sample):
    out = overview(sample[0])
    assert texts(out["overview-warnings"]["children"]) == []
    assert "≥" not in card(out, "refusal-rate")


def test_a_misspelt_policy_name_is_said_on_the_overview(sample, tmp_path):
    policy = tmp_path / "typo.toml"
    policy.write_text("[workloads.suport-chat]\nrefusal_slo = 0.1\n")
    warnings = " ".join(texts(overview(sample[0], WEEKS, policy)["overview-warnings"]["children"]))
    assert "`suport-chat` has no attempts in the data (did you mean support-chat?)" in warnings


def test_the_data_page_never_speaks_of_filters(sample):
    out = page_outputs(create_app(sample[0]).server.test_client(), "data", WEEKS)
    shown = json.dumps(out)
    assert "for these filters" not in shown
    rejects = out["data-rejects"]["figure"]["layout"]["annotations"][0]["text"]
    assert rejects == "No record has been rejected in any load"


def test_slo_words_say_the_target_and_where_it_came_from():
    import pandas as pd

    from dashboard.components import slo_line, slo_text
    from dashboard.frames import SloTargets, slo_targets

    one = slo_targets(pd.DataFrame({"slo": [0.05, 0.05], "slo_source": ["default", "default"]}))
    assert one == SloTargets((0.05,), ("default",)) and slo_text(one) == "target 5.0% (default)"
    assert slo_line(one).value == 0.05 and slo_line(one, name_the_rate=False).name == "SLO: target 5.0% (default)"
    mixed = slo_targets(pd.DataFrame({"slo": [0.3, 0.05], "slo_source": ["policy", "default"]}))
    assert slo_text(mixed) == "targets 5.0%–30.0% (default, policy)" and slo_line(mixed).value is None
    same_value = slo_targets(pd.DataFrame({"slo": [0.05, 0.05], "slo_source": ["policy", "default"]}))
    assert slo_text(same_value) == "target 5.0% (default, policy)"
    nothing = slo_targets(pd.DataFrame({"slo": [], "slo_source": []}))
    assert slo_text(nothing) == "" and slo_line(nothing) is None


def test_an_unknown_interval_is_one_dash_not_three():
    from dashboard.components import interval

    assert interval(None, float("nan")) == "–" and interval(0.1, 0.25) == "10.0%–25.0%"
