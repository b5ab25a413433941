"""The Spark engine gives the DuckDB engine's rows and numbers (issue 8): same inputs into both, then every
attempt row and every number of the weekly JSON report compared (counts exactly, money and rates to 1e-9).
Spark runs in local mode, really; one session for the whole module (see conftest)."""

from __future__ import annotations

import gzip
import importlib.util
import inspect
import json
import math
import os
import shutil
from pathlib import Path

import duckdb
import pytest
from builders import KEY

from ingest.loader import LoadOptions, ingest_paths

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"


# ---------------------------------------------------------------- comparing the engines


def duckdb_rows(db: Path) -> list[dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute("SELECT * FROM attempts ORDER BY attempt_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def spark_rows(store: Path) -> list[dict]:
    """The Spark store's attempts as its readers see them, read by DuckDB from the Parquet (`day` dropped)."""
    from fallbackscope.spark.store import duckdb_views

    con = duckdb.connect()
    try:
        duckdb_views(con, store)
        cur = con.execute("SELECT * FROM attempts ORDER BY attempt_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def assert_same(expected, actual, path: str = "") -> None:
    """Equal structures: integers, strings and booleans exactly, floats to 1e-9."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and list(expected) == list(actual), f"{path}: keys differ"
        for key in expected:
            assert_same(expected[key], actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(expected) == len(actual), f"{path}: lengths differ"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_same(e, a, f"{path}[{i}]")
    elif isinstance(expected, float) and not isinstance(actual, bool) and isinstance(actual, float | int):
        assert math.isclose(expected, actual, rel_tol=0, abs_tol=1e-9), f"{path}: {expected!r} != {actual!r}"
    else:
        assert type(expected) is type(actual) and expected == actual, f"{path}: {expected!r} != {actual!r}"


def assert_same_rows(db: Path, store: Path) -> int:
    expected, actual = duckdb_rows(db), spark_rows(store)
    assert [r["attempt_id"] for r in expected] == [r["attempt_id"] for r in actual]
    assert_same(expected, actual, "attempts")
    return len(expected)


def spark_report(spark, store: Path, week=None) -> dict:
    from fallbackscope.render.report import weekly_report
    from fallbackscope.spark.store import Store

    con = Store(spark, store).connection()
    try:
        return weekly_report(con, week)
    finally:
        con.close()


def duckdb_report(db: Path, week=None) -> dict:
    from fallbackscope.render.report import weekly_report

    con = duckdb.connect(str(db), read_only=True)
    try:
        return weekly_report(con, week)
    finally:
        con.close()


def both_ingest(spark, db: Path, store: Path, paths: list[str], **options) -> list:
    """Load the same files with both engines (the same options); return the Spark run's file reports."""
    from fallbackscope.spark.ingest import SparkLoadOptions, ingest_spark

    ingest_paths(db, paths, LoadOptions(**options))
    return ingest_spark(spark, str(store), paths, SparkLoadOptions(**options))


# ---------------------------------------------------------------- the committed sample


@pytest.fixture(scope="module")
def sample(spark, tmp_path_factory):
    """The committed sample loaded by both engines as its ground truth says (exchange files, then the batch)."""
    saved = os.environ.get("FALLBACKSCOPE_KEY")
    os.environ["FALLBACKSCOPE_KEY"] = KEY
    try:
        folder = tmp_path_factory.mktemp("sample")
        db, store = folder / "s.duckdb", folder / "store"
        options = json.loads((SAMPLE / "ground_truth.json").read_text())["ingest_options"]
        exchange = sorted(str(p) for p in SAMPLE.glob("exchange-*.jsonl*"))
        first = both_ingest(spark, db, store, exchange)
        second = both_ingest(spark, db, store, [str(SAMPLE / "batch-results.jsonl.gz")], format="batch",
                             batch_id=options["--batch-id"], workload=options["--workload"],
                             default_ts=options["--default-ts"])
        yield db, store, first + second
    finally:
        if saved is None:
            os.environ.pop("FALLBACKSCOPE_KEY", None)
        else:
            os.environ["FALLBACKSCOPE_KEY"] = saved


def test_spark_stores_the_same_attempt_rows_as_duckdb_on_the_committed_sample(sample):
    db, store, reports = sample
    assert assert_same_rows(db, store) > 1000
    assert all(r.status == "ok" and r.rejected == 0 for r in reports)
    con = duckdb.connect(str(db), read_only=True)
    ledger = con.execute("SELECT load_id, records, attempts_loaded, duplicates, rejected FROM loads"
                         " ORDER BY load_id").fetchall()
    con.close()
    assert [(r.load_id, r.records, r.attempts_loaded, r.duplicates, r.rejected) for r in reports] == ledger


def test_spark_weekly_report_equals_duckdb_on_the_committed_sample(spark, sample):
    db, store, _ = sample
    expected = duckdb_report(db)
    assert expected["totals"]["chains"] > 100 and expected["cache_credit"]["credits_minted"] > 0
    assert_same(expected, spark_report(spark, store))


def test_spark_rerun_and_a_decompressed_copy_write_nothing_new(spark, sample, tmp_path):
    from fallbackscope.spark.ingest import ingest_spark

    db, store, _ = sample
    before = len(spark_rows(store))
    again = ingest_spark(spark, str(store), [str(SAMPLE / "exchange-2026-11-02.jsonl.gz")])
    assert [r.status for r in again] == ["skipped"]
    plain = tmp_path / "copy.jsonl"
    plain.write_bytes(gzip.decompress((SAMPLE / "exchange-2026-11-03.jsonl.gz").read_bytes()))
    [copy] = ingest_spark(spark, str(store), [str(plain)])
    assert copy.status == "ok" and copy.records > 0
    assert (copy.attempts_loaded, copy.duplicates, copy.rejected) == (0, copy.records, 0)
    assert len(spark_rows(store)) == before


# ---------------------------------------------------------------- hand-made cases and canaries


def captured_cases(tmp_path: Path) -> list[tuple[list[str], dict]]:
    """Run the hand-made cases of tests/ingest/test_exchange_format.py and test_linking.py (on DuckDB) and
    return the files and options each loaded, in order."""
    loads: list[tuple[list[str], dict]] = []
    n = 0
    for name in ("test_exchange_format", "test_linking"):
        spec = importlib.util.spec_from_file_location(f"_cases_{name}", ROOT / "tests/ingest" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.ingest_paths = _recording(module.ingest_paths, loads, tmp_path)
        for fn_name, fn in inspect.getmembers(module, inspect.isfunction):
            if not fn_name.startswith("test_") or fn.__module__ != module.__name__:
                continue
            marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
            cases = [{}]
            if marks:
                names, values = marks[0].args[0], marks[0].args[1]
                names = [names] if isinstance(names, str) else list(names)
                if "," in names[0]:
                    names = [s.strip() for s in names[0].split(",")]
                cases = [dict(zip(names, v if len(names) > 1 else [v], strict=True)) for v in values]
            if set(inspect.signature(fn).parameters) - {"tmp_path", "db", *cases[0]}:
                continue  # a case that needs more fixtures (monkeypatch) or loads nothing (no db)
            if "db" not in inspect.signature(fn).parameters:
                continue
            for params in cases:
                n += 1
                case_dir = tmp_path / f"case{n}"
                case_dir.mkdir()
                fn(tmp_path=case_dir, db=case_dir / "t.duckdb", **params)
    return loads


def _recording(real, loads: list[tuple[list[str], dict]], tmp_path: Path):
    """Return `ingest_paths` that also keeps a copy of each file it loads, with the options, in `loads`."""
    def recording(db, paths, options=None, **kw):
        keep = []
        for p in paths:
            copy = tmp_path / "cases" / f"{len(loads):03d}-{Path(p).name}"
            copy.parent.mkdir(exist_ok=True)
            shutil.copyfile(p, copy)
            keep.append(str(copy))
        opts = {k: v for k, v in vars(options or LoadOptions()).items() if v is not None}
        loads.append((keep, opts))
        return real(db, paths, options, **kw)

    return recording


def canaries_and_inputs(folder: Path) -> tuple[list[str], list[tuple[list[str], dict]]]:
    """The privacy test's inputs (a canary in every text field of every format) and their load options."""
    spec = importlib.util.spec_from_file_location("_canaries", ROOT / "tests/ingest/test_privacy_canaries.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    inputs = module.write_inputs(folder)
    names = {"--default-ts": "default_ts", "--batch-id": "batch_id", "--format": "format"}
    out = []
    for path, flags in inputs:
        out.append(([str(path)], {names[flags[i]]: flags[i + 1] for i in range(0, len(flags), 2)}))
    return module.planted(folder), out


def test_spark_matches_duckdb_on_hand_made_cases_and_canaries_never_reach_sparks_files(spark, spark_root,
                                                                                          tmp_path):
    cases = captured_cases(tmp_path)
    assert len(cases) >= 20
    # the same inputs, one run per set of options, in the cases' order (an option set's files load together)
    groups: dict[str, tuple[list[str], dict]] = {}
    for paths, opts in cases:
        groups.setdefault(json.dumps(opts, sort_keys=True, default=str), ([], opts))[0].extend(paths)
    canaries, canary_inputs = canaries_and_inputs(tmp_path / "canary")
    for paths, opts in canary_inputs:
        groups.setdefault(json.dumps(opts, sort_keys=True, default=str), ([], opts))[0].extend(paths)
    db, store = tmp_path / "cases.duckdb", spark_root / "stores" / "cases"
    rejected = 0
    for paths, opts in groups.values():
        rejected += sum(r.rejected for r in both_ingest(spark, db, store, paths, **opts))
    assert assert_same_rows(db, store) >= 30
    assert rejected >= 3  # the canary lines that must be rejected were
    con = duckdb.connect(str(db), read_only=True)
    duck_rejects = con.execute("SELECT line_no, byte_offset, reason FROM rejects ORDER BY ALL").fetchall()
    con.close()
    spark_rejects = duckdb.connect().execute(
        "SELECT line_no, byte_offset, reason FROM read_parquet(?) ORDER BY ALL", [str(store / "rejects" / "*.parquet")]
    ).fetchall()
    assert spark_rejects == duck_rejects
    assert_same(duckdb_report(db, "2026-W45"), spark_report(spark, store, "2026-W45"))

    # privacy: no canary in the Parquet store, Spark's log, temp, local, warehouse or checkpoint dirs
    scanned = 0
    for path in spark_root.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            scanned += 1
            for c in canaries:
                assert c.encode() not in blob, f"{c} leaked into {path}"
    assert scanned > 10
    log = (spark_root / "logs" / "spark.log")
    assert log.exists() and log.stat().st_size > 0  # Spark really logged there


def test_spark_metrics_by_week_equal_duckdb_on_the_committed_sample(spark, sample):
    from analytics.rollup import compute_metrics
    from fallbackscope.spark.store import Store

    db, store, _ = sample
    con = duckdb.connect(str(db), read_only=True)
    try:
        expected = compute_metrics(con, by="week").to_dict("records")
    finally:
        con.close()
    scon = Store(spark, store).connection()
    try:
        actual = compute_metrics(scon, by="week").to_dict("records")
    finally:
        scon.close()
    assert len(expected) >= 4
    assert_same(_plain(expected), _plain(actual))


def _plain(records: list[dict]) -> list[dict]:
    """Metric rows as plain Python values (NaN → None, numpy scalars → Python), as the JSON output has them."""
    from analytics.common import clean

    out = []
    for row in records:
        values = {k: clean(v) for k, v in row.items()}
        out.append({k: (int(v) if isinstance(v, float) and v.is_integer() and "rate" not in k
                        and "usd" not in k and "cost" not in k else v) for k, v in values.items()})
    return out
