"""Object-store inputs with the DuckDB engine (docs/metrics.md §11), end to end through the command line against
moto's S3 server on loopback, with credentials given the usual way (environment variables):

a prefix loads like the same files in a local folder; a second run reads no object; a new object loads alone; a
rewritten one loads its new records (the others are duplicates); gzip is told by content; the ledger names each
object by its URL; no credential reaches the database, an output or an error. Also the rules of
`fallbackscope.core.objectstore` (versions, clean URLs, reasons) on each backend's shapes, and `export parquet`
to a URL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from builders import KEY, query
from s3server import (
    ACCESS_KEY,
    SAMPLE,
    SECRET_KEY,
    S3Server,
    client,
    inputs,
    jsonl,
    new_bucket,
    put,
    records,
    s3_server,
)

from fallbackscope.core import objectstore
from fallbackscope.core.errors import FallbackscopeError, UsageError

pytest.importorskip("s3fs")
pytest.importorskip("moto")

CANARIES = (ACCESS_KEY, SECRET_KEY)


@pytest.fixture
def s3(monkeypatch) -> S3Server:
    server = s3_server()
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    return server


@pytest.fixture
def bucket(s3) -> str:
    name = f"logs-{uuid.uuid4().hex[:12]}"
    new_bucket(s3, name)
    return name


def cli(server: S3Server, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **server.env(), "FALLBACKSCOPE_KEY": KEY, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "fallbackscope.cli", *args], capture_output=True, text=True,
                          env=full)


def ingest(server: S3Server, url: str, db: Path, outputs: list[str] | None = None) -> subprocess.CompletedProcess:
    proc = cli(server, "ingest", url, "--db", str(db))
    if outputs is not None:
        outputs += [proc.stdout, proc.stderr]
    return proc


def attempts(db: Path, also: str = "") -> list[tuple]:
    """Every stored attempt, every column but its load id (and `also`), in id order."""
    return query(db, f"SELECT * EXCLUDE (load_id{also}) FROM attempts ORDER BY attempt_id")


def ledger(db: Path, since: int = 0) -> list[tuple]:
    """(path, status, records, attempts_loaded, duplicates, sha256) of the loads after load `since`."""
    return query(db, "SELECT path, status, records, attempts_loaded, duplicates, sha256 FROM loads"
                     " WHERE load_id > ? ORDER BY load_id", [since])


def last_load(db: Path) -> int:
    return query(db, "SELECT coalesce(max(load_id), 0) FROM loads")[0][0]


def test_a_prefix_loads_like_the_same_files_in_a_local_folder_and_gzip_is_told_by_content(s3, bucket, tmp_path):
    files = inputs()
    put(s3, bucket, files)
    local = tmp_path / "logs"
    for name, body in files.items():
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_bytes(body)
    proc = ingest(s3, f"s3://{bucket}/logs/", tmp_path / "s3.duckdb")
    assert proc.returncode == 0, proc.stderr
    assert cli(s3, "ingest", str(local), "--db", str(tmp_path / "local.duckdb")).returncode == 0

    from_s3, from_disk = attempts(tmp_path / "s3.duckdb"), attempts(tmp_path / "local.duckdb")
    assert len(from_s3) > 50 and from_s3 == from_disk  # every column but the load id, chains included
    url = f"s3://{bucket}/logs/"
    s3_ledger = [(p.removeprefix(url), *rest) for p, *rest in ledger(tmp_path / "s3.duckdb")]
    disk_ledger = [(Path(p).relative_to(local.resolve()).as_posix(), *rest)
                   for p, *rest in ledger(tmp_path / "local.duckdb")]
    assert s3_ledger == disk_ledger
    assert [row[0] for row in s3_ledger] == ["a.jsonl", "day.log", "sub/day2.jsonl.gz"]  # name order, no hidden
    # the object's hash is of its bytes as stored; a gzip named `.log` was read as gzip (it has records)
    assert {row[0]: row[5] for row in s3_ledger} == {n: hashlib.sha256(files[n]).hexdigest() for n, *_ in s3_ledger}
    day = query(tmp_path / "s3.duckdb", "SELECT format, records, object_version FROM loads WHERE path LIKE '%day.log'")
    assert day[0][0] == "exchange" and day[0][1] > 10 and day[0][2]


def test_a_second_run_skips_every_object_without_reading_it(s3, bucket, tmp_path):
    put(s3, bucket, inputs())
    db = tmp_path / "x.duckdb"
    assert ingest(s3, f"s3://{bucket}/logs/", db).returncode == 0
    before, reads = last_load(db), len(s3.object_reads(bucket))
    stored = attempts(db)
    proc = ingest(s3, f"s3://{bucket}/logs/", db)
    assert proc.returncode == 0 and proc.stdout.count("skipped (already loaded)") == 3
    assert s3.object_reads(bucket)[reads:] == []  # not one byte of any object requested
    assert [row[1:5] for row in ledger(db, before)] == [("skipped", 0, 0, 0)] * 3
    assert [row[5] for row in ledger(db, before)] == [row[5] for row in ledger(db)[:3]]  # the hash of its last load
    assert attempts(db) == stored


def test_a_new_object_loads_only_itself(s3, bucket, tmp_path):
    put(s3, bucket, inputs())
    db = tmp_path / "x.duckdb"
    assert ingest(s3, f"s3://{bucket}/logs/", db).returncode == 0
    put(s3, bucket, {"b.jsonl": jsonl(records("b", 4))})
    before, reads = last_load(db), len(s3.object_reads(bucket))
    assert ingest(s3, f"s3://{bucket}/logs/", db).returncode == 0
    assert set(s3.object_reads(bucket)[reads:]) == {"logs/b.jsonl"}
    rows = {path.rsplit("/logs/", 1)[1]: tuple(row[:4]) for path, *row in ledger(db, before)}
    assert rows == {"a.jsonl": ("skipped", 0, 0, 0), "b.jsonl": ("ok", 4, 4, 0), "day.log": ("skipped", 0, 0, 0),
                    "sub/day2.jsonl.gz": ("skipped", 0, 0, 0)}


def test_a_rewritten_object_loads_only_its_new_records_and_counts_the_rest_as_duplicates(s3, bucket, tmp_path):
    put(s3, bucket, {"a.jsonl": jsonl(records("a", 6)), "grown.jsonl": jsonl(records("g", 3))})
    db = tmp_path / "x.duckdb"
    assert ingest(s3, f"s3://{bucket}/logs/", db).returncode == 0
    before = last_load(db)
    # rewritten: old records in another order among new ones; grown: the same first bytes, more of them
    rewritten = records("a", 6)[::-1] + records("a", 3, start=6)
    put(s3, bucket, {"a.jsonl": jsonl(rewritten), "grown.jsonl": jsonl(records("g", 5))})
    assert ingest(s3, f"s3://{bucket}/logs/", db).returncode == 0
    rows = {path.rsplit("/", 1)[1]: tuple(row[:4]) for path, *row in ledger(db, before)}
    assert rows == {"a.jsonl": ("ok", 9, 3, 6), "grown.jsonl": ("ok", 2, 2, 0)}
    assert query(db, "SELECT count(*) FROM attempts")[0][0] == 9 + 5
    fresh = tmp_path / "fresh.duckdb"  # the same as loading the objects as they are now, but where a stored
    assert ingest(s3, f"s3://{bucket}/logs/", fresh).returncode == 0  # attempt was first read (its line)
    assert attempts(db, ", line_no") == attempts(fresh, ", line_no")


def test_a_database_from_before_object_versions_opens_and_reads_each_object_once_more(s3, bucket, tmp_path):
    import duckdb

    put(s3, bucket, inputs())
    db = tmp_path / "x.duckdb"
    assert ingest(s3, f"s3://{bucket}/logs/", db).returncode == 0
    con = duckdb.connect(str(db))  # as a database written before migration 007 left it
    con.execute("ALTER TABLE loads DROP COLUMN object_version")
    con.execute("DELETE FROM schema_version WHERE version = 7")
    con.close()
    stored, reads = attempts(db), len(s3.object_reads(bucket))
    proc = ingest(s3, f"s3://{bucket}/logs/", db)  # no version to compare: each object hashed, found loaded
    assert proc.returncode == 0 and proc.stdout.count("skipped (already loaded)") == 3, proc.stderr
    assert len(s3.object_reads(bucket)) > reads
    reads = len(s3.object_reads(bucket))
    proc = ingest(s3, f"s3://{bucket}/logs/", db)  # the versions those skips recorded: unread from now on
    assert proc.returncode == 0 and proc.stdout.count("skipped (already loaded)") == 3
    assert s3.object_reads(bucket)[reads:] == []
    assert attempts(db) == stored and query(db, "SELECT max(version) FROM schema_version")[0][0] == 7


def test_an_object_reloads_and_is_forgotten_by_its_url(s3, bucket, tmp_path):
    put(s3, bucket, inputs())
    db = tmp_path / "x.duckdb"
    assert ingest(s3, f"s3://{bucket}/logs/", db).returncode == 0
    stored = attempts(db)
    a = f"s3://{bucket}/logs/a.jsonl"
    reloaded = cli(s3, "ingest", "--reload", a, "--db", str(db))
    assert reloaded.returncode == 0, reloaded.stderr
    assert attempts(db) == stored
    forgotten = cli(s3, "loads", "forget", a, "--db", str(db))
    assert forgotten.returncode == 0, forgotten.stderr
    assert query(db, "SELECT count(*) FROM attempts WHERE attempt_id LIKE 'msg_a_%'")[0][0] == 0
    assert ingest(s3, f"s3://{bucket}/logs/", db).returncode == 0  # forgotten: loaded afresh, the rest skipped
    assert attempts(db) == stored


def test_an_object_that_cannot_be_read_fails_in_one_sentence_and_the_others_load(s3, bucket, tmp_path, monkeypatch):
    from ingest import loader
    from ingest.loader import IngestFailed, ingest_paths

    put(s3, bucket, inputs())

    def listed_then_deleted(paths):  # the object goes between the listing and its read
        sources = loader_expand(paths)
        client(s3).delete_object(Bucket=bucket, Key="logs/a.jsonl")
        return sources

    loader_expand = loader.expand
    monkeypatch.setattr(loader, "expand", listed_then_deleted)
    with pytest.raises(IngestFailed) as raised:
        ingest_paths(tmp_path / "x.duckdb", [f"s3://{bucket}/logs/"])
    message = f"s3://{bucket}/logs/a.jsonl: cannot read the object (no such object or bucket)."
    assert str(raised.value) == message
    assert [r.status for r in raised.value.reports] == ["failed", "ok", "ok"]
    assert query(tmp_path / "x.duckdb", "SELECT path, status, error FROM loads ORDER BY load_id")[0] == (
        f"s3://{bucket}/logs/a.jsonl", "failed", message)


def test_the_ledger_lists_each_object_by_its_url(s3, bucket, tmp_path):
    put(s3, bucket, inputs())
    db = tmp_path / "x.duckdb"
    assert ingest(s3, f"s3://{bucket}/logs", db).returncode == 0  # a prefix named without its slash
    listed = cli(s3, "loads", "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    for name in ("a.jsonl", "day.log", "sub/day2.jsonl.gz"):
        assert f"s3://{bucket}/logs/{name}" in listed.stdout
    # one object named alone loads under the same URL: it is skipped, unread
    reads = len(s3.object_reads(bucket))
    proc = ingest(s3, f"s3://{bucket}/logs/a.jsonl", db)
    assert proc.returncode == 0 and proc.stdout.strip() == f"s3://{bucket}/logs/a.jsonl: skipped (already loaded)"
    assert s3.object_reads(bucket)[reads:] == []


def test_no_credential_reaches_the_database_an_output_or_an_error(s3, bucket, tmp_path):
    put(s3, bucket, inputs())
    db = tmp_path / "x.duckdb"
    outputs: list[str] = []
    assert ingest(s3, f"s3://{bucket}/logs/", db, outputs).returncode == 0
    assert ingest(s3, f"s3://{bucket}/logs/", db, outputs).returncode == 0
    proc = cli(s3, "loads", "--db", str(db))
    outputs += [proc.stdout, proc.stderr]
    # errors: a bucket that does not exist, credentials or a signature in the URL, no credentials at all
    missing = ingest(s3, f"s3://no-such-{bucket}/logs/", db, outputs)
    assert missing.returncode == 1 and missing.stderr.strip().count("\n") == 0
    assert missing.stderr == f"fallbackscope: s3://no-such-{bucket}/logs/: no such object or prefix.\n"
    in_url = ingest(s3, f"s3://{ACCESS_KEY}:{SECRET_KEY}@{bucket}/logs/", db, outputs)
    assert in_url.returncode == 2 and f"s3://{bucket}/logs/: a URL with credentials" in in_url.stderr
    signed = ingest(s3, f"s3://{bucket}/logs/a.jsonl?X-Amz-Credential={ACCESS_KEY}&X-Amz-Signature={SECRET_KEY}",
                    db, outputs)
    assert signed.returncode == 2 and f"s3://{bucket}/logs/a.jsonl: a URL with credentials" in signed.stderr
    nobody = tmp_path / "nobody"
    bare = cli(s3, "ingest", f"s3://{bucket}/logs/", "--db", str(db), env={
        "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": str(nobody),
        "AWS_CONFIG_FILE": str(nobody), "AWS_EC2_METADATA_DISABLED": "true", "HOME": str(tmp_path)})
    outputs += [bare.stdout, bare.stderr]
    assert bare.returncode == 1 and bare.stderr.strip().count("\n") == 0, bare.stderr
    assert f"s3://{bucket}/logs/: cannot list the objects (" in bare.stderr and "Traceback" not in bare.stderr
    assert len(query(db, "SELECT * FROM loads")) == 6  # the refused runs wrote nothing
    stored = [p for p in tmp_path.iterdir() if p.name.startswith("x.duckdb")]
    for canary in CANARIES:
        assert all(canary not in text for text in outputs), canary
        assert all(canary.encode() not in p.read_bytes() for p in stored), canary


def test_a_missing_backend_is_one_sentence_naming_the_extra(s3, tmp_path):
    code = ("import sys; sys.modules['s3fs'] = None; sys.argv = ['fallbackscope', 'ingest', 's3://b/logs/', "
            f"'--db', {str(tmp_path / 'x.duckdb')!r}]; from fallbackscope.cli import main; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "FALLBACKSCOPE_KEY": KEY})
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("fallbackscope: s3://b/logs/: reading s3:// URLs needs fsspec's s3 backend: "
                                   "pip install 'fallbackscope[s3]'.")


@pytest.mark.parametrize(("url", "extra"), [("gs://b/x/", "gcs"), ("az://c/x/", "azure"),
                                            ("abfs://c@acct.dfs.core.windows.net/x", "azure")])
def test_each_store_names_its_own_extra(url, extra):
    import importlib.util

    backend = {"gcs": "gcsfs", "azure": "adlfs"}[extra]
    if importlib.util.find_spec(backend) is not None:
        pytest.skip(f"{backend} is installed")
    scheme = url.split("://")[0]
    with pytest.raises(FallbackscopeError) as raised:
        objectstore.filesystem(url)
    assert str(raised.value) == (f"{url}: reading {scheme}:// URLs needs fsspec's {scheme} backend: "
                                 f"pip install 'fallbackscope[{extra}]'.")


# -- the rules, on each backend's shapes --------------------------------------------------------------------------


@pytest.mark.parametrize(("info", "version"), [
    ({"name": "b/k", "size": 3, "type": "file", "ETag": '"9a0364b9e99bb480dd25e1f0284c8555"',
      "LastModified": dt.datetime(2026, 10, 20, tzinfo=dt.UTC)}, "9a0364b9e99bb480dd25e1f0284c8555"),  # s3fs
    ({"name": "b/k", "size": 3, "type": "file", "etag": "CJDv2Mv3/4gDEAE=", "generation": "1760918400123456",
      "metageneration": "1", "updated": "2026-10-20T00:00:00.000Z"}, "1760918400123456"),  # gcsfs
    ({"name": "c/k", "size": 3, "type": "file", "etag": '"0x8DDF0A1B2C3D4E5"',
      "last_modified": dt.datetime(2026, 10, 20, tzinfo=dt.UTC)}, "0x8DDF0A1B2C3D4E5"),  # adlfs
    ({"name": "/tmp/k", "size": 3, "type": "file", "mtime": 1792454400.5}, None),  # local: no version
])
def test_an_objects_version_is_its_etag_or_generation(info, version):
    assert objectstore.object_version(info) == version
    assert objectstore.object_mtime_ns(info) in (1792454400 * 10**9, 1792454400 * 10**9 + 500_000_000)


@pytest.mark.parametrize(("url", "clean"), [
    ("s3://bucket/logs/", "s3://bucket/logs/"),
    ("s3://AKIA:secret@bucket/logs/a.jsonl", "s3://bucket/logs/a.jsonl"),
    ("s3://token@bucket/a", "s3://bucket/a"),
    ("gs://bucket/a.jsonl?generation=1&X-Goog-Signature=abc#frag", "gs://bucket/a.jsonl"),
    ("abfs://logs@acct.dfs.core.windows.net/day/", "abfs://logs@acct.dfs.core.windows.net/day/"),
    ("az://logs/day/a.jsonl?sv=2024&sig=secret", "az://logs/day/a.jsonl"),
    ("abfs://user:key@logs/x", "abfs://logs/x"),
])
def test_a_url_is_stored_and_shown_without_credentials_or_query(url, clean):
    assert objectstore.clean_url(url) == clean
    if url == clean:
        assert objectstore.checked_url(url) == url
    else:
        with pytest.raises(UsageError) as raised:
            objectstore.checked_url(url)
        assert str(raised.value).startswith(f"{clean}: ") and "secret" not in str(raised.value)


def test_a_failure_reason_never_quotes_the_error_text():
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    denied = ClientError({"Error": {"Code": "SignatureDoesNotMatch", "Message": f"key {SECRET_KEY}"}}, "GetObject")
    wrapped = OSError(5, f"echo {SECRET_KEY}")
    wrapped.__cause__ = denied
    assert objectstore.failure_reason(wrapped) == "the store answered SignatureDoesNotMatch"
    assert objectstore.failure_reason(NoCredentialsError()).startswith("no usable credentials")
    assert objectstore.failure_reason(EndpointConnectionError(endpoint_url="http://x")) == \
        "cannot reach the store's endpoint"
    assert objectstore.failure_reason(PermissionError(f"no {SECRET_KEY}")).startswith("access denied")
    assert objectstore.failure_reason(ValueError(SECRET_KEY)) == "ValueError"
    with pytest.raises(FallbackscopeError) as raised, objectstore.object_errors("s3://AKIA:pw@b/k?sig=1"):
        raise wrapped
    assert str(raised.value) == "s3://b/k: cannot read the object (the store answered SignatureDoesNotMatch)."


# -- export parquet to a URL ----------------------------------------------------------------------------------------


def test_export_parquet_writes_to_an_object_store_url(s3, bucket, tmp_path):
    import duckdb
    import s3fs

    put(s3, bucket, {"day.log": (SAMPLE / "exchange-2026-10-19.jsonl.gz").read_bytes()})
    db = tmp_path / "x.duckdb"
    assert ingest(s3, f"s3://{bucket}/logs/", db).returncode == 0
    local = tmp_path / "local"
    assert cli(s3, "export", "parquet", str(local), "--db", str(db)).returncode == 0
    stale = f"{bucket}/out/attempts/day=2026-10-19/attempts_7.parquet"
    client(s3).put_object(Bucket=bucket, Key=stale.split("/", 1)[1], Body=b"stale")
    for _ in range(2):  # exporting again replaces the days, never duplicates them
        proc = cli(s3, "export", "parquet", f"s3://{bucket}/out", "--db", str(db))
        assert proc.returncode == 0, proc.stderr
        assert f"to s3://{bucket}/out/attempts" in proc.stdout
    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    fetched = tmp_path / "fetched"
    fs.get(f"{bucket}/out/attempts", str(fetched / "attempts"), recursive=True)
    assert sorted(p.relative_to(fetched).as_posix() for p in fetched.rglob("*.parquet")) == \
        sorted(p.relative_to(local).as_posix() for p in local.rglob("*.parquet"))
    con = duckdb.connect()
    try:
        read = "SELECT * FROM read_parquet('{}/attempts/**/*.parquet', hive_partitioning = true) ORDER BY attempt_id"
        assert con.execute(read.format(fetched)).fetchall() == con.execute(read.format(local)).fetchall()
    finally:
        con.close()
    denied = cli(s3, "export", "parquet", f"s3://no-such-{bucket}/out", "--db", str(db))
    assert denied.returncode == 1 and denied.stderr.strip().count("\n") == 0
    assert denied.stderr.startswith(f"fallbackscope: s3://no-such-{bucket}/out: cannot write the export (")
    shutil.rmtree(fetched)
