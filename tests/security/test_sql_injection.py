"""SQL injection through every command-line argument and dashboard filter that reaches SQL: each attempt
either fails cleanly (one line, a documented exit code, no traceback) or is treated as data, and the
tables are intact afterwards."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlencode

import duckdb
import pytest
from builders import exchange, message, request, write_jsonl
from dashboard_support import callback_payload, page_callbacks
from hostile import MODELS, SURFACE, WEEK, WORKLOADS

from dashboard.app import create_app
from dashboard.data import DataSource
from dashboard.filters import Filters
from fallbackscope import cli
from fallbackscope.core.errors import ExitCode

PAYLOADS = [
    "'; DROP TABLE attempts; --",
    "' OR '1'='1",
    "\" OR \"1\"=\"1",
    "\u2019; DROP TABLE loads; -- \u02bc OR \u20181\u2019=\u20181",
    "1); DELETE FROM attempts; --",
    "x' UNION SELECT attempt_id FROM attempts --",
    "2026-W45'; DROP TABLE attempts; --",
]
TABLES = ("attempts", "loads", "rejects", "policy", "price_table", "schema_version")


def snapshot(db: Path) -> dict:
    """The tables of the database and their row counts, and a checksum of the attempts."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = sorted(r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall())
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        checksum = con.execute("SELECT sum(hash(attempt_id, workload, model, cost_usd)) FROM attempts").fetchone()[0]
        return {"tables": names, "counts": counts, "checksum": checksum}
    finally:
        con.close()


def run(capsys, *args: str | Path) -> tuple[int, str, str]:
    """Run the `fallbackscope` command in this process (as `main` does for the console script)."""
    argv = sys.argv
    sys.argv = ["fallbackscope", *map(str, args)]
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_clean_failure(code: int, err: str, expected: int = ExitCode.USAGE) -> None:
    assert code == expected, err
    assert "Traceback" not in err and "internal error" not in err
    assert len(err.strip().splitlines()) <= 2, err  # click's usage errors: a usage line and one sentence


# -------------------------------------------------------------------------------- read-only commands

REJECTED_OPTIONS = [
    ("metrics", "--since"), ("metrics", "--until"), ("metrics", "--by"), ("metrics", "--format"),
    ("report weekly", "--week"), ("report weekly", "--format"),
    ("export parquet {out}", "--since"), ("export parquet {out}", "--until"),
]


@pytest.mark.parametrize("command, option", REJECTED_OPTIONS)
def test_an_injection_in_an_option_is_a_one_line_usage_error_and_changes_nothing(hostile_copy, tmp_path, capsys,
                                                                                  command, option):
    before = snapshot(hostile_copy)
    words = command.format(out=tmp_path / "export").split()
    for payload in PAYLOADS:
        code, out, err = run(capsys, *words, "--db", hostile_copy, option, payload)
        assert_clean_failure(code, err)
        assert out == ""
    assert snapshot(hostile_copy) == before
    assert not (tmp_path / "export").exists()


def test_paths_holding_sql_are_only_paths(hostile_copy, tmp_path, capsys):
    before = snapshot(hostile_copy)
    for i, payload in enumerate(PAYLOADS):
        report = tmp_path / f"{payload}.json"
        code, _, err = run(capsys, "report", "weekly", "--db", hostile_copy, "--week", WEEK, "--out", report)
        assert code == 0, err
        assert json.loads(report.read_text())["week"] == WEEK
        folder = tmp_path / f"export {i} {payload}"
        code, out, err = run(capsys, "export", "parquet", folder, "--db", hostile_copy)
        assert code == 0, err
        con = duckdb.connect()
        glob = str(folder / "attempts" / "**" / "*.parquet").replace("'", "''")
        exported = con.execute(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)").fetchone()
        assert exported[0] == before["counts"]["attempts"]
        code, _, err = run(capsys, "metrics", "--db", hostile_copy, "--policy", tmp_path / f"{payload}.toml")
        assert_clean_failure(code, err)  # no such policy file: named, not read as SQL
    assert snapshot(hostile_copy) == before


def test_metrics_and_reports_group_by_hostile_names_as_data(hostile_copy, capsys):
    before = snapshot(hostile_copy)
    code, out, err = run(capsys, "metrics", "--db", hostile_copy, "--by", "workload", "--format", "json")
    assert code == 0, err
    assert sorted(row["workload"] for row in json.loads(out)) == sorted(WORKLOADS)
    code, out, err = run(capsys, "report", "weekly", "--db", hostile_copy, "--week", WEEK)
    assert code == 0, err
    report = json.loads(out)
    assert sorted(w["workload"] for w in report["workloads"]) == sorted(WORKLOADS)
    # the stored policy's sections are the hostile names: their declared chains are applied
    assert all(len(w["start_tier_advice"]) == 1 for w in report["workloads"])
    assert snapshot(hostile_copy) == before


def test_dashboard_host_and_port_injections_are_refused(hostile_copy, capsys, monkeypatch):
    monkeypatch.delenv("FALLBACKSCOPE_DASHBOARD_PASSWORD", raising=False)
    for payload in PAYLOADS:
        code, _, err = run(capsys, "dashboard", "--db", hostile_copy, "--host", payload)
        assert_clean_failure(code, err)
        code, _, err = run(capsys, "dashboard", "--db", hostile_copy, "--port", payload)
        assert_clean_failure(code, err)


# -------------------------------------------------------------------------------- ingest's arguments


def plain_log(folder: Path, name: str = "plain.jsonl") -> Path:
    """Two records that name no workload."""
    recs = [exchange(f"2026-11-20T10:0{i}:00Z", request("claude-haiku-4-5", f"p{i}"),
                     message(f"msg_plain_{i}", "claude-haiku-4-5")) for i in range(2)]
    for rec in recs:
        del rec["workload"]
    return write_jsonl(folder / name, recs)


def test_ingest_stores_an_injected_workload_batch_id_and_path_as_data(hostile_copy, tmp_path, capsys):
    before = snapshot(hostile_copy)
    for i, payload in enumerate(PAYLOADS):
        log = plain_log(tmp_path, f"{i} {payload}.jsonl")
        text = log.read_text().replace("msg_plain_", f"msg_plain_{i}_")
        log.write_text(text)
        code, out, err = run(capsys, "ingest", log, "--db", hostile_copy, "--workload", payload)
        assert code == 0, err
        batch = write_jsonl(tmp_path / f"batch-{i}.jsonl", [
            {"custom_id": f"a{i}", "result": {"type": "errored", "error": {"type": "api_error", "message": "m"}}}])
        code, out, err = run(capsys, "ingest", batch, "--db", hostile_copy, "--format", "batch", "--batch-id",
                             payload, "--default-ts", "2026-11-20T12:00:00Z", "--workload", "b")
        assert code == 0, err
        con = duckdb.connect(str(hostile_copy), read_only=True)
        try:
            stored = con.execute("SELECT count(*) FROM attempts WHERE workload = ? AND attempt_id LIKE ?",
                                 [payload, f"msg_plain_{i}_%"]).fetchone()[0]
            assert stored == 2
            assert con.execute("SELECT batch_id FROM attempts WHERE attempt_id = ?",
                               [f"{payload}:a{i}"]).fetchone() == (payload,)
            assert con.execute("SELECT count(*) FROM loads WHERE path = ?", [str(log)]).fetchone()[0] == 1
        finally:
            con.close()
    after = snapshot(hostile_copy)
    assert after["tables"] == before["tables"]
    assert after["counts"]["attempts"] == before["counts"]["attempts"] + 3 * len(PAYLOADS)
    assert after["counts"]["loads"] == before["counts"]["loads"] + 2 * len(PAYLOADS)


def test_ingest_refuses_an_injected_format_or_default_ts(hostile_copy, tmp_path, capsys):
    before = snapshot(hostile_copy)
    log = plain_log(tmp_path)
    for payload in PAYLOADS:
        code, _, err = run(capsys, "ingest", log, "--db", hostile_copy, "--format", payload)
        assert_clean_failure(code, err)
        code, _, err = run(capsys, "ingest", log, "--db", hostile_copy, "--default-ts", payload)
        assert_clean_failure(code, err)
    assert snapshot(hostile_copy) == before


def test_a_database_named_with_sql_is_opened_and_filtered_as_any_other(hostile_db, tmp_path, capsys):
    db = tmp_path / "x\"; DROP TABLE attempts; --'.duckdb"
    db.write_bytes(hostile_db.read_bytes())
    before = snapshot(db)
    code, _, err = run(capsys, "metrics", "--db", db)
    assert code == 0, err
    # the dashboard's model/surface scope names the database in SQL (a quoted identifier)
    base = DataSource(db).base(((MODELS[0],), (SURFACE,))).value
    assert int(base.facts.firsts["n"].sum()) == before["counts"]["attempts"] // 2  # every chain, whole
    assert snapshot(db) == before


# -------------------------------------------------------------------------------- the dashboard


@pytest.fixture(scope="module")
def client(hostile_db):
    return create_app(hostile_db).server.test_client()


def dependencies(client) -> list[dict]:
    return json.loads(client.get("/_dash-dependencies").data)


def post(client, dependency: dict, values: dict, changed: list[str] | None = None) -> tuple[int, dict]:
    payload = callback_payload(dependency, values)
    if changed is not None:
        payload["changedPropIds"] = changed
    response = client.post("/_dash-update-component", json=payload)
    body = json.loads(response.data) if response.status_code == 200 else {}
    return response.status_code, body.get("response", {})


def test_url_filters_with_sql_are_data_for_every_page(client, hostile_db):
    before = snapshot(hostile_db)
    deps = dependencies(client)
    sync = next(d for d in deps if "filters.data" in d["output"] and "url.search" in d["output"])
    pages = page_callbacks(deps)
    for payload in PAYLOADS:
        query = "?" + urlencode([("from", payload), ("to", payload), ("workload", payload), ("model", payload),
                                 ("surface", payload), ("workload", WORKLOADS[0])])
        status, out = post(client, sync, {"url.search": query})
        assert status == 200
        store = out["filters"]["data"]
        assert store["workloads"] == sorted([payload, WORKLOADS[0]]) and store["models"] == [payload]
        assert payload in [o["value"] for o in out["f-model"]["options"]]  # choosable, so it can be removed
        for page, dep in pages.items():
            status, response = post(client, dep, {"filters.data": store})
            assert status == 200, page
            assert "could not be computed" not in json.dumps(response), page
    assert snapshot(hostile_db) == before


def test_filter_controls_and_store_with_sql_are_data(client, hostile_db):
    before = snapshot(hostile_db)
    deps = dependencies(client)
    sync = next(d for d in deps if "filters.data" in d["output"] and "url.search" in d["output"])
    overview = page_callbacks(deps)["overview"]
    for payload in PAYLOADS:
        values = {"url.search": "", "f-range.start_date": payload, "f-range.end_date": payload,
                  "f-workload.value": [payload], "f-model.value": [payload, MODELS[1]],
                  "f-surface.value": [payload]}
        status, out = post(client, sync, values, changed=["f-model.value"])
        assert status == 200
        assert "model=" in out["url"]["search"]
        store = {"since": payload, "until": payload, "workloads": [payload], "models": [payload],
                 "surfaces": [payload]}
        status, response = post(client, overview, {"filters.data": store})
        assert status == 200 and "could not be computed" not in json.dumps(response)
    assert snapshot(hostile_db) == before


def test_filters_with_sql_select_nothing_and_leave_the_database_alone(hostile_db):
    before = snapshot(hostile_db)
    source = DataSource(hostile_db)
    for payload in PAYLOADS:
        filters = Filters.from_query("?" + urlencode({"model": payload, "surface": payload, "workload": payload}))
        assert filters.models == (payload,)
        base = source.base(filters.scope).value
        assert int(base.facts.firsts["n"].sum()) == 0  # no chain touches a model named like that
        assert source.subset_prefix(source.base().value, (payload, WORKLOADS[0])) is not None
    assert snapshot(hostile_db) == before
