"""Chains do not depend on load order (docs/metrics.md §4, issue 20 item 2): day files loaded in any order give
every attempt the chain, index, trigger and fallback mode that loading them in time order gives; a chain keeps
the id it was first stored with."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pytest
from builders import exchange, message, request, rows, write_jsonl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relink_support import assert_same, crossing_midnight, day_files, load_one_by_one, snapshot

from ingest.loader import ingest_paths


@pytest.fixture(scope="module")
def days(tmp_path_factory) -> list[Path]:
    return day_files(tmp_path_factory.mktemp("days"))


@pytest.fixture(scope="module")
def in_time_order(days, tmp_path_factory):
    return load_one_by_one(tmp_path_factory.mktemp("ref") / "t.duckdb", days)


def test_the_day_files_hold_refusals_retries_and_escalations_across_midnight(in_time_order):
    con = duckdb.connect(str(in_time_order), read_only=True)
    try:
        assert crossing_midnight(con) >= 6
        triggers = {row[0] for row in con.execute(
            "SELECT DISTINCT a.trigger FROM attempts a JOIN attempts b ON a.chain_id = b.chain_id"
            " AND b.attempt_index = a.attempt_index - 1"
            " WHERE CAST(a.ts AT TIME ZONE 'UTC' AS DATE) > CAST(b.ts AT TIME ZONE 'UTC' AS DATE)").fetchall()}
        assert {"refusal", "quality"} <= triggers
        assert con.execute("SELECT count(*) FROM attempts WHERE credit_presented_fp IS NOT NULL"
                           " AND extract(hour FROM ts AT TIME ZONE 'UTC') = 0"
                           " AND extract(minute FROM ts AT TIME ZONE 'UTC') = 0").fetchone()[0] >= 1
    finally:
        con.close()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(4)))
def test_day_files_in_any_order_link_as_in_time_order(days, in_time_order, order):
    expected_rows, expected_chains = snapshot(in_time_order)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "t.duckdb"
        for i in order:
            ingest_paths(db, [str(days[i])])
        got_rows, got_chains = snapshot(db)
    assert_same(got_rows, expected_rows)
    assert got_chains == expected_chains


def test_a_late_refusal_heads_the_stored_chain_which_keeps_its_id(tmp_path, db):
    """Issue 20's case: day 2 loaded before day 1. The 23:59:58 Haiku refusal is attempt 1 of the chain and the
    Sonnet success after midnight attempt 2, a client fallback after a refusal — the chain keeps the id it was
    stored with (the success's)."""
    req = request("claude-haiku-4-5", "same words")
    refused = exchange("2026-11-01T23:59:58Z", req, message("msg_h", "claude-haiku-4-5", stop_reason="refusal",
                                                            content=[]), session_id="s1")
    served = exchange("2026-11-02T00:00:03Z", {**req, "model": "claude-sonnet-4-5"},
                      message("msg_s", "claude-sonnet-4-5"), session_id="s1")
    day1 = write_jsonl(tmp_path / "day1.jsonl", [refused])
    day2 = write_jsonl(tmp_path / "day2.jsonl", [served])
    ingest_paths(db, [str(day2)])
    ingest_paths(db, [str(day1)])
    got = {r["attempt_id"]: (r["chain_id"], r["attempt_index"], r["trigger"], r["fallback_mode"]) for r in rows(db)}
    assert got == {"msg_h": ("msg_s", 1, None, "none"), "msg_s": ("msg_s", 2, "refusal", "client")}
