"""A View sliced from the whole-database Base gives exactly what analytics computes for that period and
filter (the dashboard never re-reads the database to change the range or the workloads)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from analytics import costs, credits, refusals, reliability, tiers
from analytics.collect import collect
from analytics.summary import chain_table, present
from dashboard.data import DataSource, install_scope
from dashboard.filters import Filters
from dashboard.frames import headline, sankey_flows, view_for
from fallbackscope.core.store import connect

D = dt.date

CASES = [
    Filters(D(2026, 10, 19), D(2026, 11, 15)),
    Filters(D(2026, 10, 22), D(2026, 11, 3)),
    Filters(D(2026, 11, 9), D(2026, 11, 15), ("support-chat",)),
    Filters(D(2026, 10, 19), D(2026, 11, 15), ("code-assist", "support-chat")),
    Filters(D(2026, 10, 21), D(2026, 11, 12), models=("claude-opus-4-8",)),
    Filters(D(2026, 10, 21), D(2026, 11, 12), surfaces=("bedrock", "vertex")),
]


def reference(db, filters: Filters, session_key):
    """The Facts analytics collects for the filters' period over the filtered attempts."""
    con = connect(db, read_only=True)
    try:
        if filters.models or filters.surfaces:
            install_scope(con, filters.scope)
        if filters.workloads:
            assert not (filters.models or filters.surfaces)
            name = con.execute("SELECT current_database()").fetchone()[0]
            con.execute("CREATE TEMP TABLE wl (v VARCHAR)")
            con.executemany("INSERT INTO wl VALUES (?)", [[w] for w in filters.workloads])
            con.execute(f'CREATE TEMP VIEW attempts AS SELECT * FROM "{name}".main.attempts '
                        "WHERE workload IN (SELECT v FROM wl)")
        return collect(con, filters.period(), session_key=session_key)
    finally:
        con.close()


@pytest.fixture(scope="module")
def source(sample):
    return DataSource(sample[0])


def same(a: pd.DataFrame, b: pd.DataFrame, **kw) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False, **kw)


@pytest.mark.parametrize("filters", CASES, ids=lambda f: f.describe())
@pytest.mark.parametrize("session_key", [None, "day", "week"])
def test_sliced_chain_tables_equal_a_fresh_collect(sample, source, filters, session_key):
    got = view_for(source, filters).facts(session_key)
    want = reference(sample[0], filters, session_key)
    for by_workload in (False, True):
        a = present(chain_table(got, session_key, by_workload), session_key)
        b = present(chain_table(want, session_key, by_workload), session_key)
        if got.top_tier != want.top_tier:  # the one documented difference: top tier over all data
            a, b = (x.drop(columns=["top_tier_counterfactual_usd"]) for x in (a, b))
        same(a, b)


@pytest.mark.parametrize("filters", CASES, ids=lambda f: f.describe())
def test_sliced_metrics_equal_a_fresh_collect(sample, source, filters):
    got = view_for(source, filters).facts(None)
    want = reference(sample[0], filters, None)
    for metric in (refusals.slo, refusals.attempt_refusal_rate, refusals.refusals_by_category,
                   lambda f: tiers.resolution(f, True), lambda f: tiers.escalation_by_trigger(f, True),
                   lambda f: tiers.fallbacks_by_trigger(f, True), costs.start_tier_advice,
                   reliability.errors, reliability.outcomes, reliability.violations):
        same(metric(got), metric(want))
    assert credits.credit_summary(got) == credits.credit_summary(want)


@pytest.mark.parametrize("filters", CASES[:4], ids=lambda f: f.describe())
def test_the_views_slo_table_is_analytics_slo(source, filters):
    view = view_for(source, filters)
    shown = view.slo()
    same(shown.drop(columns="slo_source"), refusals.slo(view.facts(None)))
    assert set(shown["slo_source"]) == {"default"}  # the sample has no policy: every target is the default


def test_headline_matches_the_ground_truth(sample, source):
    db, truth = sample
    head = headline(view_for(source, Filters(D(2026, 10, 19), D(2026, 11, 15))))
    assert head["refusal rate"].numerator == truth["refused_chains"]
    assert head["refusal rate"].denominator == truth["chains"]
    assert head["fallback rate"].numerator == truth["fallback_chains"]
    assert head["escalation rate"].numerator == truth["escalated_chains"]
    assert head["unresolved rate"].numerator == truth["unresolved_chains"]
    assert head["sessions"] == truth["sessions"]
    assert head["attempts"] == truth["attempts"]
    assert head["credits"].credits_minted == truth["credits"]["minted"]
    assert head["credits"].redeemed == truth["credits"]["redeemed"]


def test_sankey_flows_add_up_to_the_chains_and_their_resolvers(sample, source):
    view = view_for(source, Filters(D(2026, 10, 19), D(2026, 11, 15)))
    flows = sankey_flows(view.facts(None))
    truth = sample[1]
    assert flows["chains"].sum() == truth["chains"]
    assert flows.loc[flows["resolver"] == "unresolved", "chains"].sum() == truth["unresolved_chains"]
    resolution = tiers.resolution(view.facts(None), by_workload=False)
    by_model = flows.groupby("resolver")["chains"].sum()
    for row in resolution.to_dict("records"):
        assert by_model.get(row["model"], 0) == row["chains_resolved"]
