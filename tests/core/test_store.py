"""The store (docs/metrics.md §2): numbered migrations applied once, in order, on open; the tables named."""

from __future__ import annotations

import pytest

from fallbackscope.core.errors import FallbackscopeError
from fallbackscope.core.store import LATEST_VERSION, attempt_columns, connect

CONTRACT_COLUMNS = (
    "attempt_id, load_id, ts, surface, workload, session_id, chain_id, attempt_index, request_id, requested_model, "
    "model, http_status, error_class, outcome, stop_reason, refusal_category, recommended_model, trigger, accepted, "
    "disclosed, intended_model, fallback_mode, is_batch, is_stream, service_tier, inference_geo, speed, latency_ms, "
    "input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, "
    "web_search_requests, had_output, credit_minted_fp, credit_presented_fp, prefill_claim, credit_status, "
    "credit_reason, prompt_fp, cost_usd").split(", ")


def test_a_new_database_gets_every_migration_once_in_order(tmp_path):
    path = tmp_path / "s.duckdb"
    con = connect(path)
    versions = [v for (v,) in con.execute("SELECT version FROM schema_version ORDER BY applied_at, version").fetchall()]
    assert versions == sorted(versions) and versions[-1] == LATEST_VERSION
    tables = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"attempts", "loads", "rejects", "schema_version", "policy"} <= tables
    assert set(CONTRACT_COLUMNS) <= set(attempt_columns(con))
    con.close()
    again = connect(path)  # reopening applies nothing twice
    assert again.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(versions)
    again.close()


def test_reading_a_missing_database_is_one_sentence(tmp_path):
    with pytest.raises(FallbackscopeError, match=r"no such database; load logs first"):
        connect(tmp_path / "absent.duckdb", read_only=True)


def test_a_file_that_is_no_database_is_refused_with_its_reason(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("not a database\n", encoding="utf-8")
    with pytest.raises(FallbackscopeError, match=r"notes\.duckdb: cannot open the database"):
        connect(path)
