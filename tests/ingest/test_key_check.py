"""The fingerprint key's check value (docs/metrics.md §2, issue 20 item 1): a key other than the one the stored
attempts were written with is refused before anything is read or written; a database without attempts takes
any key."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import os
import subprocess
import sys

import pytest
from builders import exchange, query, write_jsonl

from fallbackscope.core.errors import FallbackscopeError
from ingest.loader import ingest_paths


def overloaded(i: int) -> dict:
    """An id-less error body: its attempt id is a keyed hash of its content, so it changes with the key."""
    return exchange(f"2026-11-02T00:00:0{i}Z", None, {"type": "error", "error": {"type": "overloaded_error"}},
                    status=529)


def five_idless(tmp_path):
    return write_jsonl(tmp_path / "a.jsonl", [overloaded(i) for i in range(5)])


def gz_copy(path):
    copy = path.with_name(path.name + ".gz")
    copy.write_bytes(gzip.compress(path.read_bytes()))
    return copy


def state(db):
    """What a refused run must leave untouched: the database's bytes and the files beside it."""
    return hashlib.sha256(db.read_bytes()).hexdigest(), sorted(p.name for p in db.parent.iterdir())


def test_a_lost_key_file_is_refused_before_anything_is_read_or_written(tmp_path, db, monkeypatch):
    monkeypatch.delenv("FALLBACKSCOPE_KEY")
    log = five_idless(tmp_path)
    ingest_paths(db, [str(log)])
    key_file = db.with_name(db.name + ".key")
    key_file.rename(tmp_path / "elsewhere.key")
    before = state(db)
    with pytest.raises(FallbackscopeError) as caught:
        ingest_paths(db, [str(gz_copy(log))])
    assert str(caught.value) == (f"{db}: this database was written with another fingerprint key: set the "
                                 f"FALLBACKSCOPE_KEY it was written with, or restore {key_file}.")
    after = state(db)
    assert after[0] == before[0]  # the database file's bytes are unchanged: no ledger row, no migration
    assert not key_file.exists()  # no key file was created
    assert query(db, "SELECT count(*) FROM attempts") == [(5,)]


def test_a_job_with_another_key_in_the_environment_is_refused_with_exit_1(tmp_path, db):
    log = five_idless(tmp_path)
    ingest_paths(db, [str(log)])
    before = state(db)
    env = {**os.environ, "FALLBACKSCOPE_KEY": "another key"}
    proc = subprocess.run([sys.executable, "-m", "fallbackscope.cli", "ingest", str(gz_copy(log)), "--db", str(db)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"fallbackscope: {db}: this database was written with another fingerprint key: "
                                   f"set the FALLBACKSCOPE_KEY it was written with, or restore {db}.key.")
    assert state(db)[0] == before[0]
    assert query(db, "SELECT count(*) FROM loads") == [(1,)]


def test_the_same_key_loads_and_only_its_check_value_is_stored(tmp_path, db):
    from builders import KEY

    log = five_idless(tmp_path)
    ingest_paths(db, [str(log)])
    ingest_paths(db, [str(gz_copy(log))])  # the same records again: duplicates, not new attempts
    assert query(db, "SELECT count(*) FROM attempts") == [(5,)]
    check = hmac.new(KEY.encode(), b"fallbackscope key check", hashlib.sha256).hexdigest()
    assert query(db, "SELECT check_value FROM key_check") == [(check,)]
    assert KEY.encode() not in db.read_bytes()


def test_a_database_without_attempts_takes_a_new_key(tmp_path, db, monkeypatch):
    empty = write_jsonl(tmp_path / "empty.jsonl", [])
    ingest_paths(db, [str(empty)])  # the check value of the first key is stored, but no attempt
    monkeypatch.setenv("FALLBACKSCOPE_KEY", "a new key")
    ingest_paths(db, [str(five_idless(tmp_path))])
    check = hmac.new(b"a new key", b"fallbackscope key check", hashlib.sha256).hexdigest()
    assert query(db, "SELECT check_value FROM key_check") == [(check,)]
    assert query(db, "SELECT count(*) FROM attempts") == [(5,)]
