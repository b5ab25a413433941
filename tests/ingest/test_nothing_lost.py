"""Nothing lost (docs/metrics.md §2, §3): every non-blank record is loaded, a duplicate, or a reject with a reason;
loads are idempotent and atomic per file, even under SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from builders import exchange, message, query, request, rows, usage, write_jsonl

from ingest import parse
from ingest.loader import LoadOptions, ingest_paths


def good(i: int, text: str = "q") -> dict:
    return exchange(f"2026-11-05T10:{i // 60:02d}:{i % 60:02d}Z", request("claude-haiku-4-5", f"{text} {i}"),
                    message(f"msg_{i}", "claude-haiku-4-5", usage_=usage(10, 5)), session_id=f"s{i}")


def mixed_file(tmp_path):
    big = good(3, "x" * 200_000)
    wrong_type = good(4)
    wrong_type["response"]["usage"]["input_tokens"] = "ten"
    negative = good(5)
    negative["response"]["usage"]["output_tokens"] = -1
    no_ts = good(6)
    del no_ts["ts"]
    bad_ts = good(8)
    bad_ts["ts"] = "yesterday"
    workload_num = good(9)
    workload_num["workload"] = 12
    lines = [
        good(1),
        json.dumps(good(2))[:-40].encode(),          # truncated JSON
        b"",                                          # blank: ignored
        big,                                          # a 200 KB line loads
        b"[1, 2, 3]",                                 # a JSON array
        b"\xff\xfe\x00garbage\x81",                   # binary junk
        wrong_type, negative, no_ts,
        b"   \t ",                                    # whitespace only: ignored
        bad_ts, workload_num,
        good(1),                                      # a duplicate of line 1
        good(7),
    ]
    return write_jsonl(tmp_path / "mixed.jsonl", lines)


EXPECTED_REJECTS = [
    (2, "invalid JSON"),
    (5, "not a JSON object"),
    (6, "not UTF-8"),
    (7, "field `response.usage.input_tokens` has the wrong type (expected an integer)"),
    (8, "negative token count in `response.usage.output_tokens`"),
    (9, "no timestamp"),
    (11, "unparseable timestamp in `ts`"),
    (12, "field `workload` has the wrong type (expected a string)"),
]


def test_mixed_file_loads_good_lines_and_rejects_each_bad_one_with_a_reason(tmp_path, db):
    path = mixed_file(tmp_path)
    [report] = ingest_paths(db, [str(path)])
    non_blank = sum(1 for line in path.read_bytes().split(b"\n") if line.strip())
    assert report.records == non_blank == 12
    assert report.loaded + report.duplicates + report.rejected == non_blank
    assert (report.loaded, report.duplicates, report.rejected) == (3, 1, 8)
    assert sorted(r["attempt_id"] for r in rows(db)) == ["msg_1", "msg_3", "msg_7"]
    rejects = query(db, "SELECT line_no, byte_offset, reason FROM rejects ORDER BY line_no")
    assert [(line, reason) for line, _, reason in rejects] == EXPECTED_REJECTS
    data = path.read_bytes()
    starts = [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A]
    assert [offset for _, offset, _ in rejects] == [starts[line - 1] for line, _ in EXPECTED_REJECTS]
    [load] = query(db, "SELECT records, attempts_loaded, duplicates, rejected, status FROM loads")
    assert load == (12, 3, 1, 8, "ok")


def test_loading_the_same_files_twice_changes_nothing(tmp_path, db):
    path = mixed_file(tmp_path)
    ingest_paths(db, [str(path)])
    before = query(db, "SELECT * FROM attempts ORDER BY attempt_id")
    rejects_before = query(db, "SELECT count(*) FROM rejects")
    [report] = ingest_paths(db, [str(path)])
    assert report.status == "skipped"
    # a copy under another name is recognised by its hash
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(path.read_bytes())
    [report] = ingest_paths(db, [str(copy)])
    assert report.status == "skipped"
    assert query(db, "SELECT * FROM attempts ORDER BY attempt_id") == before
    assert query(db, "SELECT count(*) FROM rejects") == rejects_before
    assert query(db, "SELECT status, count(*) FROM loads GROUP BY 1 ORDER BY 1") == [("ok", 1), ("skipped", 2)]


def test_a_copy_of_a_file_parsed_by_the_workers_is_skipped_by_its_hash(tmp_path, db, monkeypatch):
    # through the worker pool the hash is computed after parsing, beside linking: the copy is still skipped
    monkeypatch.setattr(parse, "POOL_THRESHOLD", 0)
    path = write_jsonl(tmp_path / "big.jsonl", [good(i) for i in range(50)])
    copy = tmp_path / "big-copy.jsonl"
    copy.write_bytes(path.read_bytes())
    first, second = ingest_paths(db, [str(path), str(copy)], LoadOptions(workers=1))
    assert (first.status, first.loaded, second.status) == ("ok", 50, "skipped")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert query(db, "SELECT status, sha256 FROM loads ORDER BY load_id") == [("ok", sha), ("skipped", sha)]
    assert query(db, "SELECT count(*) FROM attempts") == [(50,)]


def test_overlapping_file_counts_already_stored_records_as_duplicates(tmp_path, db):
    a = write_jsonl(tmp_path / "a.jsonl", [good(i) for i in range(5)])
    b = write_jsonl(tmp_path / "b.jsonl", [good(i) for i in range(3, 8)])
    ingest_paths(db, [str(a)])
    [report] = ingest_paths(db, [str(b)])
    assert (report.loaded, report.duplicates, report.rejected) == (3, 2, 0)
    assert len(rows(db)) == 8


def test_a_grown_file_loads_only_its_new_lines(tmp_path, db):
    path = write_jsonl(tmp_path / "app.log", [good(i) for i in range(4)])
    ingest_paths(db, [str(path)])
    with open(path, "ab") as fh:
        fh.write(json.dumps(good(4)).encode() + b"\n" + b"{broken\n")
    [report] = ingest_paths(db, [str(path)])
    assert (report.records, report.loaded, report.duplicates, report.rejected) == (2, 1, 0, 1)
    assert query(db, "SELECT line_no FROM rejects") == [(6,)]
    assert len(rows(db)) == 5


def test_missing_path_fails_with_one_sentence_and_exit_code_1(tmp_path, db):
    a = write_jsonl(tmp_path / "a.jsonl", [good(1)])
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "fallbackscope.cli", "ingest", str(a), str(tmp_path / "missing"),
                           "--db", str(db)], capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "missing: no such file or directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sigkill_mid_file_leaves_none_of_it_and_the_rerun_loads_it_fully(tmp_path, db):
    first = write_jsonl(tmp_path / "01.jsonl", [good(i) for i in range(10)])
    second = write_jsonl(tmp_path / "02.jsonl", [good(i) for i in range(10, 400)])
    marker = tmp_path / "holding"
    env = {**os.environ, "FALLBACKSCOPE_HOLD_BEFORE_COMMIT": str(marker), "FALLBACKSCOPE_HOLD_FILE": "02.jsonl"}
    proc = subprocess.Popen([sys.executable, "-m", "fallbackscope.cli", "ingest", str(tmp_path / "01.jsonl"),
                             str(second), "--db", str(db)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "ingest never reached the commit of file 2"
        time.sleep(0.05)
    # file 2's rows are inserted but not committed: kill the process now
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert query(db, "SELECT count(*) FROM attempts") == [(10,)]
    assert query(db, "SELECT path, status FROM loads") == [(str(first.resolve()), "ok")]
    [r1, r2] = ingest_paths(db, [str(first), str(second)])
    assert (r1.status, r2.status, r2.loaded) == ("skipped", "ok", 390)
    assert query(db, "SELECT count(*) FROM attempts") == [(400,)]


def test_an_id_repeated_within_a_file_keeps_its_first_record(tmp_path, db):
    """Of records sharing an attempt id in one file, the first line's is stored; the rest are duplicates."""
    def line(ts: str, rid: str, workload: str) -> dict:
        return exchange(ts, request("claude-haiku-4-5"), message(rid, "claude-haiku-4-5"), workload=workload)

    records = [line("2026-11-02T10:00:03Z", "msg_b", "first-b"), line("2026-11-02T10:00:01Z", "msg_a", "first-a"),
               line("2026-11-02T10:00:02Z", "msg_c", "only-c"), line("2026-11-02T10:00:00Z", "msg_a", "second-a"),
               line("2026-11-02T10:00:04Z", "msg_b", "second-b"), line("2026-11-02T10:00:05Z", "msg_a", "third-a")]
    [report] = ingest_paths(db, [str(write_jsonl(tmp_path / "rep.jsonl", records))])
    assert (report.records, report.loaded, report.duplicates) == (6, 3, 3)
    stored = [(r["attempt_id"], r["workload"], r["line_no"]) for r in rows(db)]
    assert stored == [("msg_a", "first-a", 2), ("msg_c", "only-c", 3), ("msg_b", "first-b", 1)]


def load_rows(db) -> list[tuple]:
    return query(db, "SELECT status, records, attempts_loaded, duplicates, rejected FROM loads ORDER BY load_id")


def stored_ids(db) -> list[tuple]:
    return query(db, "SELECT attempt_id, line_no FROM attempts ORDER BY attempt_id")


@pytest.mark.parametrize("pooled", [False, True], ids=["in-process", "workers"])
def test_a_grown_copy_of_a_file_loaded_whole_is_skipped(tmp_path, db, monkeypatch, pooled):
    # `a` grew since its load, but its whole content was loaded since as `b`: the sha256 rule wins
    if pooled:
        monkeypatch.setattr(parse, "POOL_THRESHOLD", 0)
    a = write_jsonl(tmp_path / "a.jsonl", [good(0), good(1)])
    ingest_paths(db, [str(a)], LoadOptions(workers=1))
    with open(a, "ab") as fh:
        fh.write(json.dumps(good(2)).encode() + b"\n")
    b = tmp_path / "b.jsonl"
    b.write_bytes(a.read_bytes())
    ingest_paths(db, [str(b)], LoadOptions(workers=1))
    [report] = ingest_paths(db, [str(a)], LoadOptions(workers=1))
    assert (report.status, report.records, report.attempts_loaded, report.duplicates, report.rejected) == (
        "skipped", 0, 0, 0, 0)
    assert load_rows(db) == [("ok", 2, 2, 0, 0), ("ok", 3, 1, 2, 0), ("skipped", 0, 0, 0, 0)]
    sha = hashlib.sha256(a.read_bytes()).hexdigest()
    assert query(db, "SELECT path, sha256 FROM loads WHERE load_id = ?", [report.load_id]) == [
        (str(a.resolve()), sha)]
    assert stored_ids(db) == [("msg_0", 1), ("msg_1", 2), ("msg_2", 3)]
    assert query(db, "SELECT count(*) FROM rejects") == [(0,)]


@pytest.mark.parametrize("pooled", [False, True], ids=["in-process", "workers"])
def test_a_last_line_completed_after_a_load_is_loaded_when_the_file_grows(tmp_path, db, monkeypatch, pooled):
    # the writer was mid-line at the first load: the partial line is rejected then, and read again,
    # whole, once the file has grown — it is never lost
    if pooled:
        monkeypatch.setattr(parse, "POOL_THRESHOLD", 0)
    last = json.dumps(good(2)).encode()
    path = tmp_path / "app.log"
    head = json.dumps(good(0)).encode() + b"\n" + json.dumps(good(1)).encode() + b"\n"
    path.write_bytes(head + last[:30])
    [first] = ingest_paths(db, [str(path)], LoadOptions(workers=1))
    assert first.reasons == {"invalid JSON (unterminated last line)": 1}
    with open(path, "ab") as fh:  # more of the line, still unfinished
        fh.write(last[30:60])
    ingest_paths(db, [str(path)], LoadOptions(workers=1))
    with open(path, "ab") as fh:
        fh.write(last[60:] + b"\n" + json.dumps(good(3)).encode() + b"\n" + b"{broken\n")
    ingest_paths(db, [str(path)], LoadOptions(workers=1))
    assert load_rows(db) == [("ok", 3, 2, 0, 1), ("ok", 1, 0, 0, 1), ("ok", 3, 2, 0, 1)]
    line_3 = len(head)
    assert query(db, "SELECT load_id, line_no, byte_offset, reason FROM rejects ORDER BY load_id") == [
        (1, 3, line_3, "invalid JSON (unterminated last line)"),
        (2, 3, line_3, "invalid JSON (unterminated last line)"),
        (3, 5, len(head) + len(last) + 1 + len(json.dumps(good(3))) + 1, "invalid JSON"),
    ]
    assert stored_ids(db) == [("msg_0", 1), ("msg_1", 2), ("msg_2", 3), ("msg_3", 4)]


def test_a_complete_last_line_without_its_newline_is_not_read_again_when_the_file_grows(tmp_path, db):
    # a valid last line is a whole record even without its newline: the next load starts after it, so it
    # counts only the new records, and the lines after it keep their numbers
    path = tmp_path / "app.log"
    path.write_bytes(json.dumps(good(0)).encode() + b"\n" + json.dumps(good(1)).encode())
    ingest_paths(db, [str(path)])
    with open(path, "ab") as fh:
        fh.write(b"\n" + json.dumps(good(2)).encode() + b"\n{broken\n")
    [report] = ingest_paths(db, [str(path)])
    assert (report.records, report.loaded, report.duplicates, report.rejected) == (2, 1, 0, 1)
    assert load_rows(db) == [("ok", 2, 2, 0, 0), ("ok", 2, 1, 0, 1)]
    assert query(db, "SELECT line_no, reason FROM rejects") == [(4, "invalid JSON")]
    assert stored_ids(db) == [("msg_0", 1), ("msg_1", 2), ("msg_2", 3)]
