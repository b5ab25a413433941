"""Every metric the sample generator plants reproduces its ground truth after ingest (issue 3 acceptance)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from analytics.collect import collect
from analytics.credits import credit_summary
from analytics.refusals import refusals_by_category
from analytics.reliability import errors, outcomes
from analytics.summary import chain_table, present
from analytics.violations import violations
from fallbackscope.core.periods import Period, parse_week
from fallbackscope.core.store import connect
from fallbackscope.render.report import weekly_report

loader = pytest.importorskip("ingest.loader", reason="the ingester (ingest.loader) is not importable yet")
sample = pytest.importorskip("fallbackscope.sample", reason="the sample generator is not importable yet")

COMMITTED = Path(__file__).resolve().parents[2] / "sample_data"


def _load(folder: Path, db: Path) -> dict:
    truth = json.loads((folder / "ground_truth.json").read_text())
    files = sorted(p for p in folder.iterdir() if p.name.startswith("exchange-"))
    previous = os.environ.get("FALLBACKSCOPE_KEY")
    os.environ["FALLBACKSCOPE_KEY"] = "sample-key"
    try:
        loader.ingest_paths(db, [str(p) for p in files])
        batch = [str(p) for p in folder.iterdir() if p.name.startswith("batch-")]
        if batch:
            opts = truth["ingest_options"]
            loader.ingest_paths(db, batch, loader.LoadOptions(format="batch", batch_id=opts["--batch-id"],
                                                              workload=opts["--workload"],
                                                              default_ts=opts["--default-ts"]))
    finally:
        if previous is None:
            del os.environ["FALLBACKSCOPE_KEY"]
        else:
            os.environ["FALLBACKSCOPE_KEY"] = previous
    return truth


@pytest.fixture(scope="module", params=["committed", "generated"])
def loaded(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "committed":
        if not (COMMITTED / "ground_truth.json").exists():
            pytest.skip("no committed sample_data")
        source = COMMITTED
    else:
        sample.generate(folder, sample.SampleSpec(seed=23, days=14, chains_per_day=60))
        source = folder
    db = folder / "s.duckdb"
    truth = _load(source, db)
    con = connect(db, read_only=True)
    yield con, truth
    con.close()


def _table(con, time_key=None, by_workload=False):
    facts = collect(con, session_key=time_key)
    return present(chain_table(facts, time_key, by_workload), time_key)


def test_totals_match_the_ground_truth(loaded):
    con, truth = loaded
    total = _table(con).iloc[0]
    assert int(total["attempts"]) == truth["attempts"]
    assert int(total["chains"]) == truth["chains"]
    assert int(total["sessions"]) == truth["sessions"]
    assert int(total["refused_chains"]) == truth["refused_chains"]
    assert int(total["fallback_chains"]) == truth["fallback_chains"]
    assert int(total["escalated_chains"]) == truth["escalated_chains"]
    assert int(total["unresolved_chains"]) == truth["unresolved_chains"]


def test_weeks_match_the_ground_truth(loaded):
    con, truth = loaded
    weeks = _table(con, "week").set_index("week")
    keys = ("chains", "refused_chains", "sessions", "refused_sessions", "fallback_chains", "escalated_chains",
            "unresolved_chains")
    got = {w: {k: int(weeks.loc[w, k]) for k in keys} for w in weeks.index if weeks.loc[w, "chains"]}
    assert got == {w: {k: v[k] for k in keys} for w, v in truth["weeks"].items()}


def test_workloads_match_the_ground_truth(loaded):
    con, truth = loaded
    per = _table(con, None, True).set_index("workload")
    keys = ("chains", "refused_chains", "sessions", "refused_sessions")
    got = {w: {k: int(per.loc[w, k]) for k in keys} for w in per.index}
    assert got == {w: {k: v[k] for k in keys} for w, v in truth["workloads"].items()}


def test_refusals_errors_and_outcomes_match_the_ground_truth(loaded):
    con, truth = loaded
    facts = collect(con)
    cats = refusals_by_category(facts).set_index("category")["refused_attempts"].to_dict()
    assert cats == {k: v for k, v in truth["refusals_by_category"].items() if v}
    assert sum(cats.values()) == truth["refused_attempts"]
    assert errors(facts).set_index("error_class")["attempts"].to_dict() == {
        k: v for k, v in truth["errors_by_class"].items() if v}
    assert outcomes(facts).set_index("outcome")["attempts"].to_dict() == {
        k: v for k, v in truth["outcomes"].items() if v}


def test_cache_credit_outcomes_match_the_ground_truth(loaded):
    con, truth = loaded
    s = credit_summary(collect(con))
    expected = truth["credits"]
    assert (s.credits_minted, s.credits_unredeemable) == (expected["minted"], expected["unredeemable"])
    assert {k: getattr(s, k) for k in ("redeemed", "rejected", "unconfirmed", "forfeited", "expired")} == {
        k: expected[k] for k in ("redeemed", "rejected", "unconfirmed", "forfeited", "expired")}
    assert s.redemption_rate.denominator == expected["minted"] - expected["unredeemable"]


def test_refusal_loops_match_the_ground_truth(loaded):
    con, truth = loaded
    found = violations(collect(con))
    assert int(found[found["kind"] == "refusal_loop"]["count"].sum()) == truth["refusal_loops"]


def test_weekly_reports_add_up_to_the_ground_truth_weeks(loaded):
    con, truth = loaded
    for week, expected in truth["weeks"].items():
        report = weekly_report(con, week)
        assert report["totals"]["chains"] == expected["chains"]
        assert report["refusal_rate"]["numerator"] == expected["refused_chains"]
        assert (report["session_refusal_rate"]["numerator"], report["session_refusal_rate"]["denominator"]) == (
            expected["refused_sessions"], expected["sessions"])
        assert sum(w["chains"] for w in report["workloads"]) == expected["chains"]


def test_each_week_counts_only_its_own_chains(loaded):
    con, truth = loaded
    for week, expected in truth["weeks"].items():
        assert collect(con, Period.week(parse_week(week))).chain_count() == expected["chains"]
