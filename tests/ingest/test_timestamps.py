"""Timestamps (docs/metrics.md §3, issue 20 item 5): a time without an offset is read as UTC and counted in the
file's warnings; a date without a time of day is rejected; so is a time that ends beyond year 9999 in UTC."""

from __future__ import annotations

import datetime as dt

import pytest
from builders import exchange, message, query, request, write_jsonl

from ingest.fields import Reject, parse_ts, take_naive_timestamps
from ingest.loader import ingest_paths


def line(ts: str, mid: str) -> dict:
    return exchange(ts, request("claude-haiku-4-5"), message(mid, "claude-haiku-4-5"))


def test_local_times_are_read_as_utc_and_counted_in_the_files_warning(tmp_path, db):
    log = write_jsonl(tmp_path / "a.jsonl", [
        line("2026-11-02T10:00:00", "m1"), line("2026-11-02T10:00:01.5", "m2"), line("2026-11-02T11:00:00+01:00", "m3"),
        line("2026-11-02 10:00:02", "m4")])
    [report] = ingest_paths(db, [str(log)])
    assert report.naive_ts == 3
    assert "3 timestamps without an offset, read as UTC" in report.warnings()
    stored = dict(query(db, "SELECT attempt_id, epoch_us(ts) FROM attempts"))
    utc = dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC)
    assert stored == {"m1": _us(utc), "m2": _us(utc) + 1_500_000, "m3": _us(utc), "m4": _us(utc) + 2_000_000}


def test_a_file_with_offsets_everywhere_has_no_warning(tmp_path, db):
    log = write_jsonl(tmp_path / "a.jsonl", [line("2026-11-02T10:00:00Z", "m1")])
    [report] = ingest_paths(db, [str(log)])
    assert report.naive_ts == 0 and not any("offset" in w for w in report.warnings())


@pytest.mark.parametrize("text", ["2026-10-19", "20261019", "2026-W43-1"])
def test_a_date_without_a_time_of_day_is_rejected(text):
    with pytest.raises(Reject, match=r"^timestamp without a time of day in `ts`$"):
        parse_ts(text, "ts")


def test_a_date_alone_rejects_its_record_and_is_not_counted(tmp_path, db):
    log = write_jsonl(tmp_path / "a.jsonl", [line("2026-10-19", "m1"), line("2026-10-19T00:00:00Z", "m2")])
    [report] = ingest_paths(db, [str(log)])
    assert (report.attempts_loaded, report.rejected, report.naive_ts) == (1, 1, 0)
    assert report.reasons == {"timestamp without a time of day in `ts`": 1}


def test_a_time_beyond_year_9999_in_utc_is_out_of_range():
    with pytest.raises(Reject, match="out of range"):
        parse_ts("9999-12-31T23:59:59-23:59", "startTime")


def test_the_count_is_per_process_and_taken_once():
    take_naive_timestamps()
    parse_ts("2026-11-02T10:00:00", "ts")
    parse_ts("2026-11-02T10:00:00Z", "ts")
    assert take_naive_timestamps() == 1
    assert take_naive_timestamps() == 0


def _us(when: dt.datetime) -> int:
    return int(when.timestamp()) * 1_000_000
