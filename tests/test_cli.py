"""The command line: help texts, exit codes, one-sentence errors, prices, key file, import hygiene."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
from builders import exchange, message, query, request, write_jsonl

COMMANDS = ["ingest", "sample", "prices", "demo", "metrics", "report", "dashboard", "export", "loads"]


def cli(*args: str, env: dict | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fallbackscope.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=timeout)


def test_help_lists_every_command():
    proc = cli("--help")
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_description(command):
    proc = cli(command, "--help")
    assert proc.returncode == 0
    usage_line, _, rest = proc.stdout.partition("\n")
    assert len(rest.strip().splitlines()[0].strip()) > 20, proc.stdout


def test_usage_error_exits_2():
    assert cli("ingest", "--no-such-option").returncode == 2


def test_bad_default_ts_is_one_sentence_and_exit_2(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [])
    proc = cli("ingest", str(path), "--db", str(tmp_path / "d.duckdb"), "--default-ts", "not-a-time")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "fallbackscope: --default-ts: not an RFC 3339 time: 'not-a-time'."


def test_bad_memory_limit_in_the_environment_is_one_sentence_and_exit_2(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [])
    proc = cli("ingest", str(path), "--db", str(tmp_path / "d.duckdb"), env={"FALLBACKSCOPE_DUCKDB_MEMORY": "1; x"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "fallbackscope: $FALLBACKSCOPE_DUCKDB_MEMORY is not a memory size such as 512MB."


def test_bad_price_file_names_the_key(tmp_path):
    prices = tmp_path / "p.toml"
    prices.write_text('[[price]]\nmodel = "m"\nvalid_from = 2026-01-01\ninput = -1\ncache_write_5m = 1\n'
                      'cache_write_1h = 1\ncache_read = 1\noutput = 1\n')
    proc = cli("ingest", str(write_jsonl(tmp_path / "a.jsonl", [])), "--db", str(tmp_path / "d.duckdb"),
               "--prices", str(prices))
    assert proc.returncode == 2
    assert "price.0.input" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    prices.write_text(prices.read_text().replace("input = -1", "input = 1").replace("cache_read", "cache_reed"))
    proc = cli("ingest", str(write_jsonl(tmp_path / "a.jsonl", [])), "--db", str(tmp_path / "d.duckdb"),
               "--prices", str(prices))
    assert proc.returncode == 2  # the misspelt key is named, not the key it left missing
    assert proc.stderr.strip().endswith("bad price table at `price.0.cache_reed`: unknown key (a typo?).")


def test_prices_prints_the_table_in_force_and_a_stored_replacement(tmp_path):
    proc = cli("prices")
    assert proc.returncode == 0
    for model in ["claude-fable-5", "claude-fable-5-1", "claude-opus-4-5", "claude-opus-4-6", "claude-opus-4-7",
                  "claude-opus-4-8", "claude-opus-5", "claude-opus-5-5", "claude-sonnet-4-5", "claude-sonnet-4-6",
                  "claude-sonnet-5", "claude-sonnet-5-5", "claude-haiku-4-5", "claude-haiku-5-5",
                  "claude-haiku-3-5"]:
        assert model in proc.stdout
    assert ">100,000" in proc.stdout  # the Haiku 5.5 band
    db = tmp_path / "d.duckdb"
    prices = tmp_path / "p.toml"
    prices.write_text('[[price]]\nmodel = "claude-haiku-4-5"\nvalid_from = 2020-01-01\ninput = 2\n'
                      'cache_write_5m = 2.5\ncache_write_1h = 4\ncache_read = 0.2\noutput = 10\n')
    log = write_jsonl(tmp_path / "a.jsonl", [exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"),
                                                      message("m1", "claude-haiku-4-5"))])
    assert cli("ingest", str(log), "--db", str(db)).returncode == 0
    from builders import query

    assert query(db, "SELECT cost_usd FROM attempts") == [(pytest.approx((10 * 1 + 5 * 5) / 1e6),)]
    stored = cli("ingest", "--db", str(db), "--prices", str(prices))  # no file: only the table is stored
    assert stored.returncode == 0 and f"price table stored: {prices}" in stored.stdout
    assert query(db, "SELECT cost_usd FROM attempts") == [(pytest.approx((10 * 2 + 5 * 10) / 1e6),)]  # repriced
    assert cli("ingest", "--db", str(db)).returncode == 2  # nothing to do at all is a usage error
    proc = cli("prices", "--db", str(db))
    assert "p.toml" in proc.stdout and "claude-fable-5" not in proc.stdout


def test_every_alias_of_the_shipped_price_table_names_a_priced_model():
    from fallbackscope.core.prices import default_toml, parse_price_toml

    table = parse_price_toml(default_toml())
    assert set(table.aliases.values()) <= set(table.models())


def test_prices_piped_to_a_narrow_reader_keep_whole_rows():
    from fallbackscope.core.prices import default_toml, parse_price_toml

    proc = cli("prices", env={"COLUMNS": "80"})
    assert proc.returncode == 0
    rows = {line.split("│")[1].strip(): line for line in proc.stdout.splitlines() if line.startswith("│")}
    for row in parse_price_toml(default_toml()).price:
        assert row.model in rows and str(row.valid_from) in proc.stdout
    assert "│ claude-haiku-5-5  │ 2026-01-01 │ 0.1 " in proc.stdout  # one row, one line


def test_a_stored_price_table_brings_its_aliases_to_attempts_already_stored(tmp_path):
    from builders import query

    db = tmp_path / "d.duckdb"
    line = exchange("2026-11-02T00:00:00Z", request("acme-sonnet"), message("m1", "acme-sonnet"))
    line["intended_model"] = "acme-sonnet"
    assert cli("ingest", str(write_jsonl(tmp_path / "a.jsonl", [line])), "--db", str(db)).returncode == 0
    assert query(db, "SELECT model, intended_model, cost_usd FROM attempts") == [("acme-sonnet", "acme-sonnet", None)]
    from fallbackscope.core.prices import default_toml

    prices = tmp_path / "p.toml"
    prices.write_text(default_toml().replace("[aliases]\n", '[aliases]\n"acme-sonnet" = "claude-sonnet-4-5"\n', 1))
    empty = write_jsonl(tmp_path / "empty.jsonl", [])
    assert cli("ingest", str(empty), "--db", str(db), "--prices", str(prices)).returncode == 0
    assert query(db, "SELECT model, intended_model, requested_model, cost_usd FROM attempts") == [
        ("claude-sonnet-4-5", "claude-sonnet-4-5", "acme-sonnet", pytest.approx((10 * 3 + 5 * 15) / 1e6))]


def test_ctrl_c_during_an_ingest_is_one_sentence_exit_130_and_keeps_only_whole_files(tmp_path):
    import signal
    import time

    from builders import query

    db = tmp_path / "d.duckdb"
    first = write_jsonl(tmp_path / "a.jsonl", [exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"),
                                                        message("m1", "claude-haiku-4-5"))])
    second = write_jsonl(tmp_path / "b.jsonl", [exchange("2026-11-02T00:01:00Z", request("claude-haiku-4-5", "x"),
                                                         message("m2", "claude-haiku-4-5"))])
    marker = tmp_path / "holding"
    env = {**os.environ, "COLUMNS": "200", "FALLBACKSCOPE_HOLD_BEFORE_COMMIT": str(marker),
           "FALLBACKSCOPE_HOLD_FILE": "b.jsonl"}
    proc = subprocess.Popen([sys.executable, "-m", "fallbackscope.cli", "ingest", str(first), str(second), "--db",
                             str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:  # b.jsonl is inside its transaction
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, errors = proc.communicate(timeout=60)
    assert proc.returncode == 130
    said = [line for line in errors.splitlines() if not line.startswith("ts=")]  # logfmt lines aside
    assert len(said) == 1 and said[0].startswith("fallbackscope: interrupted")
    assert "Traceback" not in errors and "a.jsonl: 1 loaded" in out
    assert query(db, "SELECT attempt_id FROM attempts") == [("m1",)]  # a.jsonl whole, nothing of b.jsonl
    assert cli("ingest", str(first), str(second), "--db", str(db)).returncode == 0
    assert query(db, "SELECT attempt_id FROM attempts ORDER BY 1") == [("m1",), ("m2",)]


@pytest.mark.parametrize(("damage", "why"), [("truncate", "truncated"), ("corrupt", "corrupt")])
def test_an_unreadable_file_is_named_in_one_sentence_and_the_others_still_load(tmp_path, damage, why):
    import gzip

    from builders import query

    logs = tmp_path / "logs"
    logs.mkdir()
    lines = [exchange(f"2026-11-02T00:0{i}:00Z", request("claude-haiku-4-5", f"p{i}"),
                      message(f"m{i}", "claude-haiku-4-5")) for i in range(4)]
    write_jsonl(logs / "a.jsonl", lines[:1])
    packed = gzip.compress(b"".join(json.dumps(line).encode() + b"\n" for line in lines[1:3] * 200))
    if damage == "truncate":
        packed = packed[: len(packed) // 2]
    else:  # flip bytes inside the deflate stream
        middle = len(packed) // 2
        packed = packed[:middle] + bytes(b ^ 0xFF for b in packed[middle:middle + 64]) + packed[middle + 64:]
    (logs / "b.jsonl.gz").write_bytes(packed)
    write_jsonl(logs / "c.jsonl", lines[3:])
    db = tmp_path / "d.duckdb"
    for _ in range(2):  # the next night: the good files are skipped, the bad one named again
        proc = cli("ingest", str(logs), "--db", str(db))
        assert proc.returncode == 1
        said = [line for line in proc.stderr.splitlines() if not line.startswith("ts=")]
        assert len(said) == 1 and "b.jsonl.gz: cannot read the file" in said[0] and why in said[0], proc.stderr
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert query(db, "SELECT attempt_id FROM attempts ORDER BY 1") == [("m0",), ("m3",)]
    assert query(db, "SELECT count(*) FROM loads WHERE status = 'failed' AND path LIKE '%b.jsonl.gz'") == [(2,)]


def test_dashboard_port_out_of_range_is_a_usage_error_and_a_port_in_use_one_sentence(tmp_path):
    import socket

    db = tmp_path / "d.duckdb"
    log = write_jsonl(tmp_path / "a.jsonl", [exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"),
                                                      message("m1", "claude-haiku-4-5"))])
    assert cli("ingest", str(log), "--db", str(db)).returncode == 0
    for bad in ("99999", "0", "-5"):
        proc = cli("dashboard", "--db", str(db), "--port", bad, timeout=60)  # a server would never return
        assert proc.returncode == 2 and "--port" in proc.stderr and "Traceback" not in proc.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = cli("dashboard", "--db", str(db), "--port", str(port), timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"fallbackscope: 127.0.0.1:{port} is in use; pick another port with --port."
    assert "http://" not in proc.stdout  # no banner for a server that never started


def test_output_paths_that_cannot_be_written_say_why(tmp_path):
    db = tmp_path / "d.duckdb"
    log = write_jsonl(tmp_path / "a.jsonl", [exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"),
                                                      message("m1", "claude-haiku-4-5"))])
    assert cli("ingest", str(log), "--db", str(db)).returncode == 0
    missing = tmp_path / "nodir" / "w.md"
    cases = [(("report", "weekly", "--db", str(db), "--out", str(missing)),
              f"{missing}: cannot write there (the directory {missing.parent} does not exist)."),
             (("report", "weekly", "--db", str(db), "--out", str(tmp_path)),
              f"{tmp_path}: cannot write there (it is a directory; name a file)."),
             (("sample", str(log)), f"{log}: cannot write there (it is a file, not a directory).")]
    for args, sentence in cases:
        proc = cli(*args)
        assert (proc.returncode, proc.stderr.strip()) == (1, f"fallbackscope: {sentence}"), args


def test_an_empty_directory_is_named_not_silently_done(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = cli("ingest", str(tmp_path / "empty"), "--db", str(tmp_path / "d.duckdb"))
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"fallbackscope: {tmp_path / 'empty'}: no files to load in this directory."


def test_a_db_path_that_cannot_be_a_database_says_why(tmp_path):
    log = write_jsonl(tmp_path / "a.jsonl", [])
    text = tmp_path / "notes.duckdb"
    text.write_text("hello\n")
    for db, why in [(tmp_path / "no" / "such" / "d.duckdb", f"the directory {tmp_path / 'no' / 'such'} does not exist"),
                    (text, "it is not a DuckDB database file"), (tmp_path, "it is a directory, not a database file")]:
        proc = cli("ingest", str(log), "--db", str(db))
        assert proc.returncode == 1
        assert proc.stderr.strip() == f"fallbackscope: {db}: cannot open the database ({why}).", proc.stderr
    for db, why in [(text, "it is not a DuckDB database file"), (tmp_path, "it is a directory, not a database file")]:
        proc = cli("dashboard", "--db", str(db), "--port", "65000", timeout=60)  # refused before it serves
        assert (proc.returncode, proc.stderr.strip()) == (1, f"fallbackscope: {db}: cannot open the database ({why}).")


def test_key_file_is_created_once_with_mode_0600_and_never_stored(tmp_path):
    db = tmp_path / "d.duckdb"
    env = {k: v for k, v in os.environ.items() if k != "FALLBACKSCOPE_KEY"}
    log = write_jsonl(tmp_path / "a.jsonl", [exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"),
                                                      message("m1", "claude-haiku-4-5"))])
    proc = subprocess.run([sys.executable, "-m", "fallbackscope.cli", "ingest", str(log), "--db", str(db)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    key_file = tmp_path / "d.duckdb.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) == 64 and all(c in "0123456789abcdef" for c in key)
    assert key.encode() not in db.read_bytes()


def test_ingest_prints_a_per_file_summary(tmp_path):
    log = write_jsonl(tmp_path / "a.jsonl", [exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"),
                                                      message("m1", "claude-haiku-4-5")), b"{bad"])
    proc = cli("ingest", str(log), "--db", str(tmp_path / "d.duckdb"))
    assert proc.returncode == 0
    assert f"{log}: 1 loaded (1 attempts), 0 duplicate, 1 rejected [exchange]" in proc.stdout
    assert "rejected 1: invalid JSON" in proc.stdout


@pytest.mark.parametrize("packed", [False, True])
def test_stdin_is_read_with_dash_plain_or_gzipped(tmp_path, packed):
    import gzip

    record = exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"), message("m_stdin", "claude-haiku-4-5"))
    data = (json.dumps(record) + "\n").encode()
    proc = subprocess.run([sys.executable, "-m", "fallbackscope.cli", "ingest", "-",
                           "--db", str(tmp_path / "d.duckdb")],
                          input=gzip.compress(data) if packed else data, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert b"-: 1 loaded (1 attempts), 0 duplicate, 0 rejected" in proc.stdout


def test_engine_packages_never_import_dash_or_plotly():
    code = ("import sys, ingest.loader, ingest.formats, fallbackscope.core.store, fallbackscope.core.prices; "
            "import importlib, pkgutil, analytics\n"
            "for m in pkgutil.iter_modules(analytics.__path__): importlib.import_module('analytics.' + m.name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dash', 'plotly')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_ingest_logs_one_logfmt_line_per_file_to_stderr_when_not_a_terminal(tmp_path):
    a = write_jsonl(tmp_path / "a b.jsonl", [exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"),
                                                      message("m1", "claude-haiku-4-5")), b"{bad"])
    proc = cli("ingest", str(a), "--db", str(tmp_path / "d.duckdb"))
    [line] = proc.stderr.strip().splitlines()
    import shlex

    fields = dict(part.split("=", 1) for part in shlex.split(line))
    assert fields["event"] == "file" and fields["path"] == str(a) and fields["status"] == "ok"
    assert (fields["records"], fields["loaded"], fields["rejected"]) == ("2", "1", "1")


def test_report_weekly_formats_backfill_and_fail_on_slo(tmp_path):
    from builders import exchange as ex

    db = tmp_path / "d.duckdb"
    records = []
    for day in range(9):  # two ISO weeks; every chain of workload w refused, so its SLO is missed
        ts = f"2026-11-{2 + day:02d}T10:00:00Z"
        records.append(ex(ts, request("claude-fable-5", f"q{day}"),
                          message(f"r{day}", "claude-fable-5", stop_reason="refusal", content=[]),
                          session_id=f"s{day}"))
    log = write_jsonl(tmp_path / "a.jsonl", records)
    assert cli("ingest", str(log), "--db", str(db)).returncode == 0
    proc = cli("report", "weekly", "--db", str(db), "--week", "2026-W45")
    assert proc.returncode == 0
    report = json.loads(proc.stdout)
    assert report["week"] == "2026-W45" and report["refusal_rate"]["value"] == 1.0
    assert report["totals"]["chains"] == 7
    failed = cli("report", "weekly", "--db", str(db), "--week", "2026-W45", "--fail-on-slo")
    assert failed.returncode == 3 and "wl" in failed.stderr
    folder = tmp_path / "weeks"
    backfill = cli("report", "weekly", "--db", str(db), "--all-weeks", "--format", "md", "--out", str(folder))
    assert backfill.returncode == 0
    assert sorted(p.name for p in folder.iterdir()) == ["weekly-2026-W45.md", "weekly-2026-W46.md"]
    assert cli("report", "weekly", "--db", str(db), "--format", "pdf").returncode == 2


def test_dashboard_refuses_a_non_local_bind_without_a_password(tmp_path):
    proc = cli("dashboard", "--host", "0.0.0.0", "--db", str(tmp_path / "none.duckdb"),
               env={"FALLBACKSCOPE_DASHBOARD_PASSWORD": ""})
    assert proc.returncode == 2
    assert "FALLBACKSCOPE_DASHBOARD_PASSWORD" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_ingest_summary_line_carries_the_files_warnings(tmp_path):
    """Issue 20: local times read as UTC, and attempts whose stop reason was not logged (refusals cannot be seen
    in them), are said on the file's summary line and in its logfmt line."""
    redacted = message("m2", "claude-haiku-4-5", stop_reason=None)
    log = write_jsonl(tmp_path / "a.jsonl", [
        exchange("2026-11-02T10:00:00", request("claude-haiku-4-5"), message("m1", "claude-haiku-4-5")),
        exchange("2026-11-02T10:00:01", request("claude-haiku-4-5"), redacted),
        exchange("2026-11-02T10:00:02Z", request("claude-haiku-4-5"), {**redacted, "id": "m3"})])
    proc = cli("ingest", str(log), "--db", str(tmp_path / "d.duckdb"))
    assert proc.returncode == 0, proc.stderr
    assert (f"{log}: 3 loaded (3 attempts), 0 duplicate, 0 rejected [exchange]; 2 timestamps without an offset, "
            "read as UTC; 2 attempts without a stop reason: refusals cannot be seen in them") in proc.stdout
    [line] = proc.stderr.strip().splitlines()
    assert "naive_timestamps=2" in line and "no_stop_reason=2" in line


def test_a_sample_folder_ingests_with_no_option_and_no_reject(tmp_path):
    """Issue 15 item 1: `sample DIR` then `ingest DIR` loads everything plainly; the ground truth and the batch
    results (which need options) wait in DIR/.sample, which ingest passes over, and load with its options."""
    logs, db = tmp_path / "logs", tmp_path / "d.duckdb"
    assert cli("sample", str(logs), "--days", "2", "--chains-per-day", "6").returncode == 0
    proc = cli("ingest", str(logs), "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [str(logs / "exchange-2026-10-19.jsonl"),
                                                     str(logs / "exchange-2026-10-20.jsonl")]
    assert all(", 0 rejected [exchange]" in line for line in lines)
    truth = json.loads((logs / ".sample" / "ground_truth.json").read_text())
    options = [item for pair in truth["ingest_options"].items() for item in pair]
    proc = cli("ingest", str(logs / ".sample" / "batch-results.jsonl"), "--db", str(db), *options)
    assert proc.returncode == 0 and ", 0 rejected [batch]" in proc.stdout


def test_a_file_none_of_whose_records_loaded_fails_the_run_in_one_sentence(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\nworld\n")
    good = write_jsonl(tmp_path / "a.jsonl", [exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"),
                                                       message("m1", "claude-haiku-4-5"))])
    proc = cli("ingest", str(notes), str(good), "--db", str(tmp_path / "d.duckdb"))
    assert proc.returncode == 1
    said = [line for line in proc.stderr.splitlines() if not line.startswith("ts=")]
    assert said == [f"fallbackscope: {notes}: none of its 2 records loaded: it is not JSON Lines (one JSON object "
                    "per line), so nothing in it could be read."]
    assert f"{good}: 1 loaded" in proc.stdout  # the other files still load


def test_loads_lists_the_ledger_and_forget_and_reload_work_from_the_command_line(tmp_path):
    """Issue 15 item 3: `loads` lists every run's rows, `ingest --reload` takes a file's place with new options,
    `loads forget` removes a file's rows (ledger rows stay), and the file can then be loaded afresh."""
    db = str(tmp_path / "d.duckdb")
    log = write_jsonl(tmp_path / "a.jsonl", [exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"),
                                                      message("m1", "claude-haiku-4-5"))])
    assert cli("ingest", str(log), "--db", db).returncode == 0
    assert cli("ingest", str(log), "--db", db, "--reload", "--workload", "w2").returncode == 0
    listed = cli("loads", "--db", db)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.strip().splitlines()
    assert header.split() == ["id", "path", "format", "options", "started", "records", "loaded", "duplicates",
                              "rejected", "status"]
    assert [row.split()[-1] for row in rows] == ["replaced", "ok"]
    assert "workload=w2" in rows[1]
    proc = cli("loads", "forget", str(log), "--db", db)
    assert proc.returncode == 0 and proc.stdout.strip() == "forgot 1 load: 2"
    assert query(tmp_path / "d.duckdb", "SELECT count(*) FROM attempts") == [(0,)]
    assert cli("loads", "forget", "2", "--db", db).returncode == 1  # nothing of it is in force any more
    proc = cli("ingest", str(log), "--db", db)
    assert proc.returncode == 0 and "1 loaded" in proc.stdout  # afresh, not skipped
    assert [row.split()[-1] for row in cli("loads", "--db", db).stdout.strip().splitlines()[1:]] == [
        "replaced", "forgotten", "ok"]
