"""Random chains against a naive, chain-by-chain reference written straight from docs/metrics.md §6.1–§6.3.

The analytics count one-attempt chains from a cube of first attempts and correct for longer chains; this
test checks that the shortcut gives the same numbers as walking every chain.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import pytest
from analytics_db import AttemptDB, scratch_db
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.collect import collect
from analytics.summary import chain_table, present
from analytics.tiers import fallbacks_by_trigger, resolution

MODELS = ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-8")
START = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)

attempt = st.fixed_dictionaries({
    "model": st.sampled_from(MODELS),
    "outcome": st.sampled_from(["ok", "ok", "refusal", "error"]),
    "accepted": st.sampled_from([None, None, False]),
    "disclosed": st.sampled_from([None, True]),
    "cost": st.sampled_from([0.0, 0.001, 0.01, None]),
})
chain = st.fixed_dictionaries({
    "workload": st.sampled_from(["w1", "w2"]),
    "session": st.sampled_from([None, "s1", "s2", "s3"]),
    "minute": st.integers(min_value=0, max_value=20 * 24 * 60),
    "pinned": st.booleans(),
    "attempts": st.lists(attempt, min_size=1, max_size=5),
})


def _insert(db: AttemptDB, chains: list[dict]) -> list[dict]:
    stored = []
    for i, c in enumerate(chains):
        start = START + dt.timedelta(minutes=c["minute"])
        rows = []
        for k, a in enumerate(c["attempts"], start=1):
            extra = {"workload": c["workload"], "session_id": c["session"], "disclosed": a["disclosed"],
                     "cost_usd": a["cost"]}
            if a["outcome"] == "ok" and a["accepted"] is False:
                extra["accepted"] = False
            if k == 1 and c["pinned"]:
                extra["trigger"] = "pinned"
            rows.append(db.add(f"c{i}", k, start + dt.timedelta(seconds=20 * (k - 1)), a["model"], a["outcome"],
                               **extra))
        stored.append({"id": f"c{i}", "workload": c["workload"], "session": c["session"], "start": start,
                       "rows": rows})
    return stored


def _reference(chains: list[dict]) -> dict:
    weeks: dict[str, Counter] = defaultdict(Counter)
    sessions: dict[tuple[str, str], bool] = {}
    triggers: Counter = Counter()
    resolved_by: Counter = Counter()
    for c in chains:
        rows = c["rows"]
        first = rows[0]
        week = c["start"].strftime("%G-W%V")
        resolver = next((r for r in rows if r["outcome"] == "ok" and r.get("accepted") is not False), None)
        refused = any(r["outcome"] == "refusal" for r in rows)
        escalated = any(r["model"] != first["model"] for r in rows[1:])
        w = weeks[week]
        w["chains"] += 1
        w["attempts"] += len(rows)
        w["refused_chains"] += refused
        w["resolved_chains"] += resolver is not None
        w["fallback_chains"] += first.get("trigger") == "pinned" or (
            resolver is not None and resolver["model"] != first["model"])
        w["escalated_chains"] += escalated
        w["retried_chains"] += any(rows[k]["model"] == rows[k - 1]["model"] for k in range(1, len(rows)))
        if escalated:
            before = rows if resolver is None else rows[: rows.index(resolver)]
            w["overhead_micro"] += round(sum(r["cost_usd"] or 0 for r in before) * 1e6)
            w["overhead_parts"] += len(before)
            w["overhead_known"] += sum(r["cost_usd"] is not None for r in before)
        key = (week, c["session"] or "chain:" + c["id"])
        sessions[key] = sessions.get(key, False) or refused
        for k in range(1, len(rows)):
            if rows[k]["model"] != rows[k - 1]["model"]:
                triggers[rows[k].get("trigger") or "unknown"] += 1
        resolved_by[resolver["model"] if resolver else "unresolved"] += 1
    for (week, _), refused in sessions.items():
        weeks[week]["sessions"] += 1
        weeks[week]["refused_sessions"] += refused
    return {"weeks": weeks, "triggers": triggers, "resolved_by": resolved_by}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(chain, min_size=1, max_size=12))
def test_cube_shortcut_matches_a_chain_by_chain_reference(chains):
    with scratch_db() as db:
        stored = _insert(db, chains)
        ref = _reference(stored)
        facts = collect(db.writer, session_key="week")
        table = present(chain_table(facts, "week", False), "week")
        got = {}
        for row in table.to_dict("records"):
            if not row["chains"]:
                continue
            got[row["week"]] = {k: int(row[k]) for k in (
                "chains", "attempts", "refused_chains", "resolved_chains", "fallback_chains", "escalated_chains",
                "retried_chains", "sessions", "refused_sessions")}
            overhead = row["escalation_overhead_usd"]
            got[row["week"]]["overhead_micro"] = None if overhead != overhead else round(float(overhead) * 1e6)
        want = {}
        for week, c in ref["weeks"].items():
            want[week] = {k: int(c[k]) for k in got.get(week, {}) if k != "overhead_micro"}
            unpriced = c["overhead_parts"] > 0 and c["overhead_known"] == 0
            want[week]["overhead_micro"] = None if unpriced else int(c["overhead_micro"])
        assert got == want
        per_trigger = fallbacks_by_trigger(collect(db.writer)).set_index("trigger")["fallbacks"].to_dict()
        assert per_trigger == dict(ref["triggers"])
        res = resolution(collect(db.writer), by_workload=False)
        assert {m: n for m, n in zip(res["model"], res["chains_resolved"], strict=True) if n} == {
            m: n for m, n in ref["resolved_by"].items() if n}


def test_reference_helper_counts_a_known_case():
    rows = [{"model": "a", "outcome": "refusal", "cost_usd": 0.0},
            {"model": "b", "outcome": "ok", "trigger": "refusal", "cost_usd": 0.0}]
    ref = _reference([{"id": "x", "workload": "w", "session": None, "start": START, "rows": rows}])
    assert ref["weeks"]["2026-W10"]["fallback_chains"] == 1
    assert ref["triggers"] == Counter({"refusal": 1})
    assert ref["resolved_by"] == Counter({"b": 1})


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
