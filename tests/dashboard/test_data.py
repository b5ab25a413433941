"""The read side: read-only, cached per file version, and still answering while a writer holds the file."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dashboard.data as data
from dashboard.data import DataSource, DataUnavailable
from fallbackscope.core.periods import date_to_day
from fallbackscope.core.store import connect

# Opens the database for writing, adds a load, and keeps the file (and its lock) until stdin closes.
HOLD_WRITE_LOCK = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("INSERT INTO loads (load_id, path, started_at, records, attempts_loaded, duplicates, rejected,"
                " status) VALUES (999, 'held.jsonl', now(), 0, 0, 0, 0, 'ok')")
    con.execute("CHECKPOINT")
    print("holding", flush=True)
    sys.stdin.readline()
    con.close()
""")


class WriteLock:
    """Another process holding the database open for writing (as `ingest` does while it writes)."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD_WRITE_LOCK, str(db)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def __enter__(self) -> WriteLock:
        assert self.proc.stdout.readline().strip() == "holding"
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reading_every_view_leaves_the_database_file_untouched(sample_copy):
    before, mtime = digest(sample_copy), sample_copy.stat().st_mtime_ns
    source = DataSource(sample_copy)
    source.dimensions(), source.ledger()
    base = source.base().value
    source.subset_prefix(base, ("code-assist", "support-chat"))
    source.base((("claude-opus-4-8",), ("bedrock",)))
    assert digest(sample_copy) == before
    assert sample_copy.stat().st_mtime_ns == mtime
    assert not sample_copy.with_name(sample_copy.name + ".wal").exists()


def test_the_file_is_closed_between_reads_so_a_writer_gets_in(sample_copy):
    source = DataSource(sample_copy)
    source.base()
    con = connect(sample_copy, wait_seconds=0)  # would raise if the dashboard still held the file
    con.close()


def test_a_cached_result_is_served_without_opening_the_file(sample, monkeypatch):
    opened = []
    real = data.connect
    monkeypatch.setattr(data, "connect", lambda *a, **k: opened.append(a) or real(*a, **k))
    source = DataSource(sample[0])
    first = source.dimensions()
    second = source.dimensions()
    assert second is first
    assert len(opened) == 1


def test_a_changed_file_is_read_again(sample_copy):
    source = DataSource(sample_copy, settle_seconds=0)
    loads = len(source.ledger().value.loads)
    con = connect(sample_copy)
    con.execute("INSERT INTO loads (load_id, path, started_at, records, attempts_loaded, duplicates, rejected,"
                " status) VALUES (998, 'new.jsonl', now(), 0, 0, 0, 0, 'ok')")
    con.close()
    result = source.ledger()
    assert not result.stale
    assert len(result.value.loads) == loads + 1


def test_while_a_writer_holds_the_file_the_last_good_result_is_served_as_stale(sample_copy):
    source = DataSource(sample_copy, wait_seconds=0.3, settle_seconds=0, fresh_wait=2)
    good = source.ledger()
    with WriteLock(sample_copy):
        during = source.ledger()
        assert during.stale
        assert during.value is good.value
    after = source.ledger()
    assert not after.stale
    assert "held.jsonl" in set(after.value.loads["path"])


def test_a_change_is_not_read_before_the_file_settles(sample_copy):
    source = DataSource(sample_copy, settle_seconds=60)
    good = source.ledger()
    con = connect(sample_copy)
    con.execute("INSERT INTO loads (load_id, path, started_at, records, attempts_loaded, duplicates, rejected,"
                " status) VALUES (997, 'busy.jsonl', now(), 0, 0, 0, 0, 'ok')")
    con.close()
    result = source.ledger()
    assert result.stale and result.value is good.value


def test_with_nothing_cached_a_locked_file_is_reported_as_unavailable(sample_copy):
    source = DataSource(sample_copy, wait_seconds=0.3)
    with WriteLock(sample_copy), pytest.raises(DataUnavailable, match="locked"):
        source.dimensions()


def test_a_missing_database_is_reported_as_unavailable(tmp_path):
    with pytest.raises(DataUnavailable, match="no such database"):
        DataSource(tmp_path / "none.duckdb").dimensions()


def test_dimensions_list_what_the_filters_offer(sample):
    dims = DataSource(sample[0]).dimensions().value
    assert dims.workloads == ("batch-extract", "code-assist", "doc-summarise", "research-agent", "support-chat")
    assert "anthropic" in dims.surfaces and "claude-opus-4-8" in dims.models
    assert (dims.first_day, dims.last_day) == (dt.date(2026, 10, 19), dt.date(2026, 11, 15))
    assert dims.attempts == sample[1]["attempts"]


@pytest.mark.parametrize("since, until, workloads", [
    ("2026-10-19", "2026-11-15", ()), ("2026-10-25", "2026-10-31", ()), ("2026-11-03", "2026-11-03", ()),
    ("2026-10-19", "2026-11-15", ("support-chat",)), ("2026-10-22", "2026-11-09", ("code-assist", "support-chat")),
])
def test_session_counts_of_any_range_are_exact(sample, since, until, workloads):
    source = DataSource(sample[0])
    base = source.base().value
    lo, hi = date_to_day(dt.date.fromisoformat(since)), date_to_day(dt.date.fromisoformat(until)) + 1
    frame = data.session_frame(
        lambda key: base.prefixes.get(key) or source.subset_prefix(base, key), workloads, base.workloads,
        lo, hi, None)
    con = connect(sample[0], read_only=True)
    try:
        want = con.execute(f"""
            WITH f AS (SELECT chain_id, session_id FROM attempts
                       WHERE attempt_index = 1 AND session_id IS NOT NULL AND ts >= ?::DATE AND ts < ?::DATE + 1
                       {"AND workload IN (SELECT unnest(?::VARCHAR[]))" if workloads else ""}),
                 r AS (SELECT DISTINCT chain_id FROM attempts WHERE outcome = 'refusal')
            SELECT count(DISTINCT session_id), count(DISTINCT session_id) FILTER (WHERE r.chain_id IS NOT NULL)
            FROM f LEFT JOIN r USING (chain_id)
        """, [since, until] + ([list(workloads)] if workloads else [])).fetchone()
    finally:
        con.close()
    overall = frame[frame["workload"].isna()]
    assert (int(overall["sessions"].sum()), int(overall["refused_sessions"].sum())) == want
