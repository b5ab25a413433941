"""Ingesting the generated sample reproduces its ground truth exactly (issue 2 acceptance)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import query

from fallbackscope.sample import SampleSpec, generate
from ingest.loader import LoadOptions, ingest_paths


def load_sample(folder: Path, db: Path) -> dict:
    truth = json.loads((folder / "ground_truth.json").read_text())
    exchange = sorted(str(p) for p in folder.iterdir() if p.name.startswith("exchange-"))
    reports = ingest_paths(db, exchange)
    batch = [str(p) for p in folder.iterdir() if p.name.startswith("batch-")]
    if batch:
        opts = truth["ingest_options"]
        reports += ingest_paths(db, batch, LoadOptions(format="batch", batch_id=opts["--batch-id"],
                                                       workload=opts["--workload"], default_ts=opts["--default-ts"]))
    assert all(r.rejected == 0 for r in reports)
    return truth


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample")
    generate(folder, SampleSpec(seed=11, days=14, chains_per_day=50))
    db = folder / "s.duckdb"
    import os

    os.environ["FALLBACKSCOPE_KEY"] = "sample-key"
    try:
        truth = load_sample(folder, db)
    finally:
        del os.environ["FALLBACKSCOPE_KEY"]
    return db, truth


def test_attempts_chains_and_sessions_match(sample_db):
    db, truth = sample_db
    assert query(db, "SELECT count(*) FROM attempts") == [(truth["attempts"],)]
    assert query(db, "SELECT count(DISTINCT chain_id) FROM attempts") == [(truth["chains"],)]
    assert query(db, "SELECT count(DISTINCT coalesce(session_id, 'chain:' || chain_id)) FROM attempts") == [
        (truth["sessions"],)]


def test_refusals_by_category_match(sample_db):
    db, truth = sample_db
    got = dict(query(db, "SELECT coalesce(refusal_category, 'unspecified'), count(*) FROM attempts"
                         " WHERE outcome = 'refusal' GROUP BY 1"))
    assert got == {k: v for k, v in truth["refusals_by_category"].items() if v}
    assert query(db, "SELECT count(DISTINCT chain_id) FROM attempts WHERE outcome = 'refusal'") == [
        (truth["refused_chains"],)]


def test_errors_by_class_and_outcomes_match(sample_db):
    db, truth = sample_db
    got = dict(query(db, "SELECT error_class, count(*) FROM attempts WHERE error_class IS NOT NULL GROUP BY 1"))
    assert got == {k: v for k, v in truth["errors_by_class"].items() if v}
    assert dict(query(db, "SELECT outcome, count(*) FROM attempts GROUP BY 1")) == {
        k: v for k, v in truth["outcomes"].items() if v}


def test_credits_minted_match(sample_db):
    db, truth = sample_db
    minted = query(db, "SELECT count(*), count(*) FILTER (is_batch) FROM attempts"
                       " WHERE outcome = 'refusal' AND credit_minted_fp IS NOT NULL")
    assert minted == [(truth["credits"]["minted"], truth["credits"]["unredeemable"])]


def test_committed_sample_matches_its_ground_truth(tmp_path):
    folder = Path(__file__).resolve().parents[2] / "sample_data"
    db = tmp_path / "c.duckdb"
    truth = load_sample(folder, db)
    assert query(db, "SELECT count(*), count(DISTINCT chain_id) FROM attempts") == [
        (truth["attempts"], truth["chains"])]


def test_credits_by_outcome_match(sample_db):
    import fallbackscope

    db, truth = sample_db
    summary = fallbackscope.open(db).credits()
    got = {"minted": summary.credits_minted, "unredeemable": summary.credits_unredeemable,
           "redeemed": summary.redeemed, "rejected": summary.rejected, "unconfirmed": summary.unconfirmed,
           "forfeited": summary.forfeited, "expired": summary.expired}
    assert got == truth["credits"]
