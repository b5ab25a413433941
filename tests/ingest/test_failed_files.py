"""A file that held records but of which none loaded is a failed file, not a quiet success (docs/metrics.md §2,
issue 15 item 1): status `rejected`, exit 1, one sentence with the commonest reason and the option that would fix
it; the next run loads it again like a new file."""

from __future__ import annotations

import json

import pytest
from builders import exchange, message, query, request, write_jsonl

from ingest.loader import IngestFailed, LoadOptions, ingest_paths


def batch_results(tmp_path):
    lines = [{"custom_id": f"r{i}", "result": {"type": "succeeded",
                                                "message": message(f"msg_b{i}", "claude-haiku-4-5")}} for i in range(3)]
    return write_jsonl(tmp_path / "batch-results.jsonl", lines)


def failed(db, paths, **options):
    with pytest.raises(IngestFailed) as caught:
        ingest_paths(db, [str(p) for p in paths], LoadOptions(**options))
    return caught.value.reports


def test_every_record_without_a_time_fails_the_file_and_names_default_ts(tmp_path, db):
    path = batch_results(tmp_path)
    [report] = failed(db, [path])
    assert report.status == "rejected"
    assert report.error == (f"{path}: none of its 3 records loaded (3 rejected: no timestamp); give their time "
                            "with --default-ts.")
    assert query(db, "SELECT status, records, rejected FROM loads") == [("rejected", 3, 3)]
    assert query(db, "SELECT count(*) FROM rejects") == [(3,)]
    # the next run loads it again like a new file
    [again] = ingest_paths(db, [str(path)], LoadOptions(default_ts="2026-11-02T02:00:00Z"))
    assert (again.status, again.attempts_loaded) == ("ok", 3)
    assert query(db, "SELECT status FROM loads ORDER BY load_id") == [("rejected",), ("ok",)]


@pytest.mark.parametrize("content", [b"hello\nworld\n", b'[{"a": 1},\n{"b": 2}]\n', b'[{"a": 1}, {"b": 2}]\n'],
                         ids=["plain text", "JSON array over lines", "JSON array on one line"])
def test_a_file_that_is_not_json_lines_says_so(tmp_path, db, content):
    path = tmp_path / "notes.json"
    path.write_bytes(content)
    [report] = failed(db, [path])
    assert report.status == "rejected"
    assert report.error.startswith(f"{path}: none of its ")
    assert report.error.endswith("records loaded: it is not JSON Lines (one JSON object per line), so nothing in it "
                                 "could be read.")


def test_records_of_another_format_name_the_format_that_reads_them(tmp_path, db):
    path = write_jsonl(tmp_path / "a.jsonl", [exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"),
                                                       message("m1", "claude-haiku-4-5"))])
    [report] = failed(db, [path], format="batch")
    assert report.status == "rejected" and "use --format exchange" in report.error


def test_a_file_of_duplicates_or_with_one_record_loaded_is_no_failure(tmp_path, db):
    good = exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"), message("m1", "claude-haiku-4-5"))
    first = write_jsonl(tmp_path / "a.jsonl", [good])
    again = write_jsonl(tmp_path / "b.jsonl", [good, b"{bad"])  # a duplicate and a reject: nothing new, no failure
    mixed = write_jsonl(tmp_path / "c.jsonl", [b"{bad", {**good, "response": {**good["response"], "id": "m2"}}])
    reports = ingest_paths(db, [str(first), str(again), str(mixed)])
    assert [r.status for r in reports] == ["ok", "ok", "ok"]


def test_a_last_line_still_being_written_is_no_failure(tmp_path, db):
    path = tmp_path / "app.log"
    path.write_bytes(b'{"ts": "2026-11-02T00:00:00Z", "http_st')
    [report] = ingest_paths(db, [str(path)])
    assert (report.status, report.rejected) == ("ok", 1)


def test_the_ledger_keeps_each_loads_options(tmp_path, db):
    path = batch_results(tmp_path)
    ingest_paths(db, [str(path)], LoadOptions(format="batch", default_ts="2026-11-02T02:00:00Z", workload="w"))
    [(options,)] = query(db, "SELECT options FROM loads")
    assert json.loads(options) == {"format": "batch", "default_ts": "2026-11-02T02:00:00Z", "workload": "w",
                                   "batch_id": None}
