"""The metric registry's SQL (analytics/metrics.py) is each metric's definition: the fast cubes of
`analytics.collect` must give the same numerator and denominator, on random chains and on the committed
sample; docs/metrics.md shows each registry entry's SQL verbatim under the metric's heading."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import duckdb
import pytest
from analytics_db import scratch_db
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_analytics_reference import _insert, chain

from analytics.collect import collect
from analytics.metrics import CHAINS_SQL, REGISTRY, SESSIONS_SQL, metric_sql
from analytics.rollup import model_metrics
from analytics.summary import chain_table, present

ROOT = Path(__file__).resolve().parents[2]


def _fast(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Return every registry column as the fast path counts it over the whole database."""
    facts = collect(con)
    total = present(chain_table(facts, None, False), None).iloc[0].to_dict()
    models = model_metrics(facts)
    out = {k: int(v) for k, v in total.items() if isinstance(v, int | float) and v == v and k != "_all"}
    out["answered_attempts"] = int(models["answered_attempts"].sum())
    out["refused_attempts"] = int(models["refused_attempts"].sum())
    return out


def _registry(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    return {name: tuple(int(v) for v in con.execute(metric_sql(name)).fetchone()) for name in REGISTRY}


def _assert_same(con: duckdb.DuckDBPyConnection) -> None:
    fast, slow = _fast(con), _registry(con)
    for name, metric in REGISTRY.items():
        assert (fast[metric.numerator], fast[metric.denominator]) == slow[name], name


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(chain, min_size=1, max_size=12))
def test_registry_sql_and_the_fast_cubes_count_the_same(chains):
    with scratch_db() as db:
        _insert(db, chains)
        _assert_same(db.writer)


def test_registry_sql_on_a_hand_computed_case(adb):
    # chain a: refusal on haiku, then ok on sonnet — refused, escalated, fallback, resolved (session s1)
    # chain b: error then ok on haiku — a same-model retry, resolved (session s1)
    # chain c: accepted: false on haiku only — unresolved (no session: its own session)
    import datetime as dt
    t = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)
    adb.add("a", 1, t, "claude-haiku-4-5", "refusal", session_id="s1")
    adb.add("a", 2, t + dt.timedelta(seconds=5), "claude-sonnet-4-5", "ok", session_id="s1", trigger="refusal")
    adb.add("b", 1, t, "claude-haiku-4-5", "error", session_id="s1", error_class="overloaded")
    adb.add("b", 2, t + dt.timedelta(seconds=5), "claude-haiku-4-5", "ok", session_id="s1")
    adb.add("c", 1, t, "claude-haiku-4-5", "ok", accepted=False)
    got = _registry(adb.writer)
    assert got["refusal_rate"] == (1, 3)
    assert got["session_refusal_rate"] == (1, 2)
    assert got["fallback_rate"] == (1, 3)
    assert got["escalation_rate"] == (1, 3)
    assert got["retry_rate"] == (1, 3)
    assert got["unresolved_rate"] == (1, 3)
    assert got["attempt_refusal_rate"] == (1, 4)
    assert got["error_rate"] == (1, 5)
    _assert_same(adb.writer)


def test_docs_show_each_metric_sql_under_its_heading():
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    for name, metric in REGISTRY.items():
        heading = re.search(rf"^#### `{re.escape(name)}`\s*$", text, re.M)
        assert heading, f"docs/metrics.md has no heading for {name}"
        section = text[heading.end():]
        section = section[:m.start()] if (m := re.search(r"^#{2,4} ", section, re.M)) else section
        assert f"```sql\n{textwrap.dedent(metric.sql).strip()}\n```" in section, name
        assert metric.section in text
    for relation in (CHAINS_SQL, SESSIONS_SQL):
        assert textwrap.dedent(relation).strip() in text


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
