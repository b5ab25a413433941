"""The read side of the dashboard: the DuckDB file opened read-only for short windows, results cached.

DuckDB lets one process write a file and no other process open it meanwhile, so a nightly `ingest`
and this dashboard take turns. The dashboard never holds the file between requests:

- every computation opens the file read-only (`fallbackscope.core.store.connect(..., read_only=True,
  wait_seconds=...)`, which retries while a writer holds it), reads, and closes it;
- results are cached under the file's *version* — mtime and size of the database and its WAL — so
  requests for unchanged data never open the file at all;
- when the version changes, the last good result keeps being served (marked stale) while a new one is
  computed in the background, once the file has stopped changing for `settle_seconds` (an ingest writes
  file after file; reading between every write would only slow it down);
- a computation that finds the file locked for longer than `wait_seconds` falls back to the last good
  result; only a view that was never computed has to wait (and reports `DataUnavailable` if it cannot).

The heavy result is the `Base` of a *scope* (the model and surface filters): the facts of the whole
database (`analytics.collect.collect`) plus a table of sessions per day. Date-range and workload filters
are cheap slices of a Base (see `dashboard.frames`), so moving the range never rereads the file.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import duckdb
import numpy as np
import pandas as pd

from analytics.collect import collect
from analytics.facts import Facts
from analytics.policy_names import policy_name_warnings
from analytics.sessions import session_days_sql
from fallbackscope.core.errors import FallbackscopeError
from fallbackscope.core.periods import UTC, Period, day_sql, day_to_date, week_start_day
from fallbackscope.core.policy import Policy, load_policy_file, resolve_policy
from fallbackscope.core.store import connect

T = TypeVar("T")
Version = tuple[int, int, int, int]
Scope = tuple[tuple[str, ...], tuple[str, ...]]  # (models, surfaces)

UNSCOPED: Scope = ((), ())


class DataUnavailable(FallbackscopeError):
    """The database could not be read (locked for too long, missing, or unreadable) and nothing is cached."""


def file_version(db_path: Path) -> Version:
    """Return the version of a database file: mtime (ns) and size of the file and of its WAL (0 if none)."""
    out: list[int] = []
    for path in (db_path, db_path.with_name(db_path.name + ".wal")):
        try:
            st = os.stat(path)
            out += [st.st_mtime_ns, st.st_size]
        except FileNotFoundError:
            out += [0, 0]
    return out[0], out[1], out[2], out[3]


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Dimensions:
    """What the filters can choose from, and the span of the data."""

    workloads: tuple[str, ...]
    models: tuple[str, ...]
    surfaces: tuple[str, ...]
    first_day: dt.date | None
    last_day: dt.date | None
    attempts: int


@dataclass(frozen=True)
class Ledger:
    """The load ledger: one row per loaded file (`loads`) and the rejects per load and reason."""

    loads: pd.DataFrame
    rejects: pd.DataFrame


@dataclass(frozen=True)
class Base:
    """The facts of one scope over the whole database, the source every page slices.

    `facts` are collected over all time with sessions per day; `prefixes` answer session counts for any
    day range, over all workloads (key None) and per workload (key `(name,)`); days are counted from
    `day0` over `days` days. `scope` is (models, surfaces): chains with an attempt on one of those models
    on one of those surfaces (empty = all). `policy_warnings`: names in the policy in force that match
    nothing in the whole database (`analytics.policy_names.policy_name_warnings`).
    """

    scope: Scope
    facts: Facts
    day0: int
    days: int
    prefixes: dict[tuple[str, ...] | None, SessionPrefix] = field(repr=False)
    seconds: float = 0.0
    policy_warnings: tuple[str, ...] = ()

    @property
    def workloads(self) -> tuple[str, ...]:
        """The workloads with sessions, sorted."""
        return tuple(sorted(k[0] for k in self.prefixes if k is not None and len(k) == 1))


@dataclass(frozen=True)
class Result(Generic[T]):
    """A computed value, the database version it was read at and when."""

    value: T
    version: Version
    computed_at: dt.datetime
    stale: bool = False

    def as_stale(self) -> Result[T]:
        """Return the same result marked as older than the database."""
        return Result(self.value, self.version, self.computed_at, True)


class _Job:
    """One computation in flight; requests for the same key wait on it instead of starting another."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Result[Any] | None = None
        self.error: BaseException | None = None


# ---------------------------------------------------------------------------- SQL of the read side


def session_count_sql(subset_table: str | None) -> str:
    """Return SQL counting session-days for the prefix tables of `SessionPrefix` (parameter: day0).

    A session counts in a range of days when it has a chain starting in it, refused when one of those
    chains had a refused attempt (the rows of `analytics.sessions.session_days_sql`). Per session, each day
    with a chain is one row; a row counts for the ranges that contain its day but not the session's previous day (`p`),
    so a range's sessions are the rows with day in [lo, hi) and p < lo. Refused sessions likewise, with
    `p` the previous refused day. Rows are per workload (`workload` set) and over all workloads (or the
    workloads of `subset_table`; `workload` NULL).
    """
    first = f"workload IN (SELECT v FROM {subset_table})" if subset_table else "TRUE"
    per_workload = "" if subset_table else """
        UNION ALL
        SELECT 's', workload, coalesce(prev_w, ? - 1), day, count(*) FROM w GROUP BY ALL
        UNION ALL
        SELECT 'r', workload, coalesce(prev_ref_w, ? - 1), day, count(*) FROM w WHERE refused GROUP BY ALL"""
    return f"""
    WITH per AS (
        {session_days_sql(first)}
    ), across AS (
        SELECT day, session_id, bool_or(refused) AS refused FROM per GROUP BY day, session_id
    ), a AS (
        SELECT day, refused, lag(day) OVER s AS prev,
            max(CASE WHEN refused THEN day END) OVER (s ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_ref
        FROM across WINDOW s AS (PARTITION BY session_id ORDER BY day)
    ), w AS (
        SELECT day, workload, refused, lag(day) OVER s AS prev_w,
            max(CASE WHEN refused THEN day END) OVER (s ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_ref_w
        FROM per WINDOW s AS (PARTITION BY workload, session_id ORDER BY day)
    )
    SELECT 's' AS kind, NULL AS workload, coalesce(prev, ? - 1) AS p, day, count(*) AS n FROM a GROUP BY ALL
    UNION ALL
    SELECT 'r', NULL, coalesce(prev_ref, ? - 1), day, count(*) FROM a WHERE refused GROUP BY ALL
    {per_workload}
    """


@dataclass(frozen=True)
class SessionPrefix:
    """Sessions (and refused sessions) of any day range in O(1): 2-D prefix sums of session-day rows by
    (previous day, day), days counted from `day0` (see `session_count_sql`)."""

    day0: int
    sessions: np.ndarray  # shape (days + 2, days + 1)
    refused: np.ndarray

    @classmethod
    def of(cls, rows: pd.DataFrame, day0: int, days: int) -> SessionPrefix:
        """Return the prefix sums of rows (kind, p, day, n) of one workload set."""
        out = []
        for kind in ("s", "r"):
            grid = np.zeros((days + 1, days), dtype=np.int64)
            part = rows[rows["kind"] == kind]
            if len(part):
                np.add.at(grid, (part["p"].to_numpy(np.int64) - day0 + 1, part["day"].to_numpy(np.int64) - day0),
                          part["n"].to_numpy(np.int64))
            prefix = np.zeros((days + 2, days + 1), dtype=np.int64)
            prefix[1:, 1:] = grid.cumsum(axis=0).cumsum(axis=1)
            out.append(prefix)
        return cls(day0, out[0], out[1])

    def count(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (sessions, refused sessions) of each day range [lo, hi) (day numbers, clipped to the data)."""
        days = self.sessions.shape[1] - 1
        a = np.clip(np.asarray(lo, dtype=np.int64) - self.day0, 0, days)
        b = np.clip(np.asarray(hi, dtype=np.int64) - self.day0, 0, days)
        b = np.maximum(a, b)
        return (self.sessions[a + 1, b] - self.sessions[a + 1, a], self.refused[a + 1, b] - self.refused[a + 1, a])


def session_frame(prefixes: Callable[[tuple[str, ...] | None], SessionPrefix], workloads: tuple[str, ...],
                  known: tuple[str, ...], lo_day: int | None, hi_day: int | None,
                  session_key: str | None) -> pd.DataFrame:
    """Return the `Facts.sessions` frame — bucket, workload (null: all selected workloads), sessions,
    refused_sessions — of chains starting in [lo_day, hi_day), per day, ISO week or the range (None).

    `prefixes(None)` gives the SessionPrefix of all workloads, `prefixes((w,))` of one workload and
    `prefixes(subset)` of several; `known` lists every workload."""
    columns = ["bucket", "workload", "sessions", "refused_sessions"]
    overall = prefixes(None)
    first = overall.day0
    last = first + overall.sessions.shape[1] - 1  # exclusive
    lo = first if lo_day is None else max(lo_day, first)
    hi = last if hi_day is None else min(hi_day, last)
    if lo >= hi:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c != "workload" else object) for c in columns})
    if session_key == "day":
        starts = np.arange(lo, hi, dtype=np.int64)
        buckets, ends = starts, starts + 1
    elif session_key == "week":
        mondays = np.arange(week_start_day(lo), hi, 7, dtype=np.int64)
        buckets, starts, ends = mondays, np.maximum(mondays, lo), np.minimum(mondays + 7, hi)
    else:
        buckets, starts, ends = np.zeros(1, dtype=np.int64), np.array([lo]), np.array([hi])
    selected = tuple(sorted(workloads)) if workloads else None
    parts = []
    for name in selected or known:
        n, r = prefixes((name,)).count(starts, ends)
        parts.append(pd.DataFrame({"bucket": buckets, "workload": name, "sessions": n, "refused_sessions": r}))
    n, r = (prefixes(selected) if selected and len(selected) > 1 else
            prefixes(selected) if selected else overall).count(starts, ends)
    parts.append(pd.DataFrame({"bucket": buckets, "workload": None, "sessions": n, "refused_sessions": r}))
    out = pd.concat(parts, ignore_index=True)
    out["workload"] = out["workload"].astype(object)
    return out[out["sessions"] > 0].reset_index(drop=True)[columns]


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def install_scope(con: duckdb.DuckDBPyConnection, scope: Scope) -> None:
    """Shadow `attempts` on this connection with a TEMP VIEW of the chains in `scope` (whole chains: every
    attempt of a chain with an attempt on a selected model on a selected surface). The selected names
    are inserted as bound parameters into TEMP tables, never spliced into SQL."""
    models, surfaces = scope
    if not models and not surfaces:
        return
    stored = f"{_quoted(con.execute('SELECT current_database()').fetchone()[0])}.main.attempts"
    conds = []
    for name, values, column in (("fs_dash_models", models, "model"), ("fs_dash_surfaces", surfaces, "surface")):
        if values:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} (v VARCHAR)")
            con.executemany(f"INSERT INTO {name} VALUES (?)", [[v] for v in values])
            conds.append(f"{column} IN (SELECT v FROM {name})")
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW attempts AS
        SELECT * FROM {stored}
        WHERE chain_id IN (SELECT chain_id FROM {stored} WHERE {' AND '.join(conds)})
    """)


def compute_base(con: duckdb.DuckDBPyConnection, scope: Scope, policy: Policy | None) -> Base:
    """Return the Base of `scope`: the facts of all time (sessions per day) and the session prefix sums."""
    started = time.perf_counter()
    policy = resolve_policy(con, policy)
    warnings = tuple(policy_name_warnings(con, policy))  # before the scope: names are checked against all data
    install_scope(con, scope)
    facts = collect(con, Period(), policy, session_key="day")
    first, last = con.execute(
        f"SELECT min({day_sql('ts')}), max({day_sql('ts')}) FROM attempts WHERE attempt_index = 1").fetchone()
    day0, days = (int(first), int(last) - int(first) + 1) if first is not None else (0, 1)
    rows = con.execute(session_count_sql(None), [day0] * 4).df()
    prefixes: dict[tuple[str, ...] | None, SessionPrefix] = {
        None: SessionPrefix.of(rows[rows["workload"].isna()], day0, days)}
    for name, part in rows[rows["workload"].notna()].groupby("workload"):
        prefixes[(str(name),)] = SessionPrefix.of(part, day0, days)
    return Base(scope=scope, facts=facts, day0=day0, days=days, prefixes=prefixes,
                seconds=time.perf_counter() - started, policy_warnings=warnings)


def compute_subset_prefix(con: duckdb.DuckDBPyConnection, scope: Scope, subset: tuple[str, ...], day0: int,
                          days: int) -> SessionPrefix:
    """Return the SessionPrefix of the sessions of several workloads taken together (a session seen in two
    of them counts once)."""
    install_scope(con, scope)
    con.execute("CREATE OR REPLACE TEMP TABLE fs_dash_subset (v VARCHAR)")
    con.executemany("INSERT INTO fs_dash_subset VALUES (?)", [[w] for w in subset])
    rows = con.execute(session_count_sql("fs_dash_subset"), [day0] * 2).df()
    return SessionPrefix.of(rows, day0, days)


def compute_dimensions(con: duckdb.DuckDBPyConnection) -> Dimensions:
    """Return the workloads, models and surfaces stored, the first and last day and the attempt count."""
    first, last, attempts = con.execute(
        f"SELECT min({day_sql('ts')}), max({day_sql('ts')}), count(*) FROM attempts").fetchone()

    def names(column: str) -> tuple[str, ...]:
        rows = con.execute(f"SELECT DISTINCT {column} FROM attempts WHERE {column} IS NOT NULL").fetchall()
        return tuple(sorted(str(r[0]) for r in rows))

    return Dimensions(
        workloads=names("workload"), models=names("model"), surfaces=names("surface"),
        first_day=day_to_date(first) if first is not None else None,
        last_day=day_to_date(last) if last is not None else None,
        attempts=int(attempts or 0),
    )


def compute_ledger(con: duckdb.DuckDBPyConnection) -> Ledger:
    """Return every load (oldest first; times as naive UTC) and the rejects counted per load and reason."""
    loads = con.execute("""
        SELECT load_id, path, format, status, timezone('UTC', started_at) AS started_at,
            timezone('UTC', finished_at) AS finished_at, records, attempts_loaded, duplicates, rejected, error
        FROM loads ORDER BY started_at, load_id
    """).df()
    rejects = con.execute(
        "SELECT load_id, reason, count(*) AS rejects FROM rejects GROUP BY ALL ORDER BY load_id, rejects DESC"
    ).df()
    return Ledger(loads=loads, rejects=rejects)


# ---------------------------------------------------------------------------- the source


class DataSource:
    """Cached, read-only access to one fallbackscope database (thread-safe; one per app).

    `wait_seconds`: how long a computation waits for a writer to release the file; `settle_seconds`:
    how long the file must stay unchanged before a changed file is reread while an older result can be
    shown; `fresh_wait`: how long a request waits for that reread before it answers with the older result.
    """

    def __init__(self, db_path: str | Path, policy_path: str | Path | None = None, *,
                 wait_seconds: float = 10.0, settle_seconds: float = 1.0, fresh_wait: float = 0.5,
                 max_bases: int = 4, max_results: int = 128, max_views: int = 48) -> None:
        self.db_path = Path(db_path)
        self.policy: Policy | None = load_policy_file(policy_path) if policy_path is not None else None
        self.wait_seconds = wait_seconds
        self.settle_seconds = settle_seconds
        self.fresh_wait = fresh_wait
        self._limits = {"base": max_bases, "small": max_results}
        self._cache: dict[str, OrderedDict[Hashable, Result[Any]]] = {"base": OrderedDict(),
                                                                      "small": OrderedDict()}
        self._jobs: dict[tuple[Hashable, Version], _Job] = {}
        self._lock = threading.Lock()
        self._heavy = threading.Semaphore(1)  # one whole-database pass at a time on a small machine
        self._seen: OrderedDict[Version, float] = OrderedDict()
        self._memo: OrderedDict[Hashable, Any] = OrderedDict()
        self._max_memo = max_views
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ public reads

    def version(self) -> Version:
        """Return the database file's current version (see `file_version`)."""
        return file_version(self.db_path)

    def dimensions(self) -> Result[Dimensions]:
        """Return what the filters can choose from (cached per database version)."""
        return self._fetch("small", ("dimensions",), compute_dimensions, heavy=False)

    def ledger(self) -> Result[Ledger]:
        """Return the load ledger (cached per database version)."""
        return self._fetch("small", ("ledger",), compute_ledger, heavy=False)

    def base(self, scope: Scope = UNSCOPED) -> Result[Base]:
        """Return the Base of a scope (cached per database version; the heavy read)."""
        policy = self.policy
        return self._fetch("base", ("base", scope), lambda con: compute_base(con, scope, policy), heavy=True)

    def read(self, key: Hashable, compute: Callable[[duckdb.DuckDBPyConnection], T]) -> Result[T]:
        """Return `compute(con)` of a small read (the alerting and billing tables), on a read-only connection
        to the whole database (no scope), cached per database version under `key`."""
        return self._fetch("small", ("read", key), compute, heavy=False)

    def memo(self, key: Hashable, make: Callable[[], T]) -> T:
        """Return the value kept under `key`, made (once) by `make` when missing; least recently used
        values are dropped beyond `max_views`. For values derived from cached results (views, pages)."""
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        value = make()
        with self._lock:
            value = self._memo.setdefault(key, value)
            self._memo.move_to_end(key)
            while len(self._memo) > self._max_memo:
                self._memo.popitem(last=False)
        return value

    def subset_prefix(self, base: Base, subset: tuple[str, ...]) -> SessionPrefix:
        """Return the SessionPrefix of several workloads together, for `base`'s scope and days (cached)."""
        def compute(con: duckdb.DuckDBPyConnection) -> SessionPrefix:
            return compute_subset_prefix(con, base.scope, subset, base.day0, base.days)

        return self._fetch("small", ("sessions", base.scope, subset, base.day0, base.days), compute,
                           heavy=True).value

    def warm(self) -> None:
        """Compute (or refresh) what the first page view needs: dimensions, the unscoped base, the ledger."""
        for fetch in (self.dimensions, self.base, self.ledger):
            try:
                fetch()
            except FallbackscopeError:
                pass

    def start_watcher(self, poll_seconds: float = 1.0) -> None:
        """Warm the cache now and again whenever the database file changes (a daemon thread)."""
        if self._watcher is not None:
            return

        def run() -> None:
            while not self._stop.is_set():
                self.warm()
                self._stop.wait(poll_seconds)

        self._watcher = threading.Thread(target=run, name="fallbackscope-warm", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """Stop the watcher thread (computations in flight finish on their own)."""
        self._stop.set()

    # ------------------------------------------------------------------ caching

    def _settled(self, version: Version) -> bool:
        now = time.monotonic()
        with self._lock:
            first = self._seen.setdefault(version, now)
            while len(self._seen) > 16:
                self._seen.popitem(last=False)
        return now - first >= self.settle_seconds

    def _fetch(self, kind: str, key: Hashable, compute: Callable[[duckdb.DuckDBPyConnection], T],
               *, heavy: bool) -> Result[T]:
        version = self.version()
        self._settled(version)  # note when this version was first seen
        with self._lock:
            last = self._cache[kind].get(key)
            if last is not None:
                self._cache[kind].move_to_end(key)
        if last is not None and last.version == version:
            return last
        if last is not None:
            if not self._settled(version):
                return last.as_stale()
            job = self._submit(kind, key, version, compute, heavy)
            if job.done.wait(self.fresh_wait) and job.result is not None:
                return job.result
            return last.as_stale()
        job = self._submit(kind, key, version, compute, heavy)
        job.done.wait()
        if job.result is None:
            error = job.error
            if isinstance(error, FallbackscopeError):
                raise DataUnavailable(str(error)) from None
            raise DataUnavailable(f"{self.db_path}: cannot read the database ({type(error).__name__}).") from None
        return job.result

    def _submit(self, kind: str, key: Hashable, version: Version,
                compute: Callable[[duckdb.DuckDBPyConnection], T], heavy: bool) -> _Job:
        with self._lock:
            job = self._jobs.get((key, version))
            if job is not None:
                return job
            job = _Job()
            self._jobs[(key, version)] = job
        thread = threading.Thread(target=self._run, args=(job, kind, key, version, compute, heavy),
                                  name="fallbackscope-read", daemon=True)
        thread.start()
        return job

    def _run(self, job: _Job, kind: str, key: Hashable, version: Version,
             compute: Callable[[duckdb.DuckDBPyConnection], T], heavy: bool) -> None:
        try:
            if heavy:
                self._heavy.acquire()
            try:
                con = connect(self.db_path, read_only=True, wait_seconds=self.wait_seconds)
                try:
                    # no writer can change the file while it is open: this is the version being read
                    read_version = self.version()
                    value = compute(con)
                finally:
                    con.close()
            finally:
                if heavy:
                    self._heavy.release()
            result = Result(value, read_version, dt.datetime.now(UTC))
            with self._lock:
                cache = self._cache[kind]
                old = cache.get(key)
                if old is None or old.version != read_version or old.computed_at < result.computed_at:
                    cache[key] = result
                cache.move_to_end(key)
                while len(cache) > self._limits[kind]:
                    cache.popitem(last=False)
            job.result = result
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
            job.error = exc
        finally:
            with self._lock:
                self._jobs.pop((key, version), None)
            job.done.set()
