"""What the load-order, reload and forget tests compare (docs/metrics.md §2, §4): the stored attempts, on every
column but those naming a load or a chain, and chain membership as a partition of the attempts."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import duckdb

from fallbackscope.sample import SampleSpec, generate

# a few days of every scenario, with refusals, credit retries, quality escalations and error retries across
# every midnight: small enough to load many times
DAYS = SampleSpec(seed=11, days=4, chains_per_day=10, prompt_words=(5, 12), with_batch=False, across_midnight=True)


def day_files(folder: Path, spec: SampleSpec = DAYS) -> list[Path]:
    """Write the sample into `folder`; return its day files in time order."""
    generate(folder, spec)
    return sorted(folder.glob("exchange-*.jsonl"))


def load_one_by_one(db: Path, paths: list[Path]) -> Path:
    """Load each file in its own run, in the order given, with the tests' key (module-scoped fixtures come
    before the autouse key fixture); return the database."""
    import pytest
    from builders import KEY

    from ingest.loader import ingest_paths

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FALLBACKSCOPE_KEY", KEY)
        for path in paths:
            ingest_paths(db, [str(path)])
    return db


def attempts(con, skip: tuple[str, ...] = ("load_id", "chain_id")) -> list[dict]:
    """Return the stored attempts (a DuckDB connection or the Spark engine's) by attempt id, without `skip`."""
    cur = con.execute("SELECT * FROM attempts ORDER BY attempt_id")
    names = [d[0] for d in cur.description]
    return [{k: v for k, v in zip(names, row, strict=True) if k not in skip} for row in cur.fetchall()]


def chains(con) -> set[frozenset[str]]:
    """Return chain membership as a partition: the sets of attempt ids that share a chain."""
    members: dict[str, set[str]] = defaultdict(set)
    for attempt_id, chain_id in con.execute("SELECT attempt_id, chain_id FROM attempts").fetchall():
        members[chain_id].add(attempt_id)
    return {frozenset(ids) for ids in members.values()}


def snapshot(db: Path) -> tuple[list[dict], set[frozenset[str]]]:
    """Return (attempts, chains) of a DuckDB file."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return attempts(con), chains(con)
    finally:
        con.close()


def crossing_midnight(con) -> int:
    """Return how many chains have attempts on two UTC days."""
    return con.execute("SELECT count(*) FROM (SELECT chain_id FROM attempts GROUP BY chain_id"
                       " HAVING count(DISTINCT CAST(ts AT TIME ZONE 'UTC' AS DATE)) > 1)").fetchone()[0]


def assert_same(got: list[dict], expected: list[dict]) -> None:
    """Assert equal attempt rows, naming the first attempt and columns that differ."""
    assert [r["attempt_id"] for r in got] == [r["attempt_id"] for r in expected], "other attempts"
    for mine, theirs in zip(got, expected, strict=True):
        differ = {k: (mine[k], theirs[k]) for k in theirs if mine.get(k) != theirs[k]}
        assert not differ, f"{theirs['attempt_id']}: {differ}"
