"""Success and "got a 2xx" (docs/metrics.md §1, §6.5): the SQL and the Python twin agree on every case."""

from __future__ import annotations

import itertools

import duckdb

from fallbackscope.core.outcomes import GOT_2XX, OUTCOMES, SUCCESS, succeeded, success_sql


def test_success_in_sql_and_python_agree_on_every_outcome_and_verdict():
    con = duckdb.connect()
    cases = list(itertools.product([*OUTCOMES, None], [True, False, None]))
    con.execute("CREATE TABLE a (i INTEGER, outcome VARCHAR, accepted BOOLEAN)")
    con.executemany("INSERT INTO a VALUES (?, ?, ?)", [[i, o, v] for i, (o, v) in enumerate(cases)])
    sql = [bool(r[0]) for r in con.execute(f"SELECT coalesce({SUCCESS}, false) FROM a ORDER BY i").fetchall()]
    aliased = [bool(r[0]) for r in con.execute(
        f"SELECT coalesce({success_sql('x')}, false) FROM a x ORDER BY i").fetchall()]
    python = [succeeded(o, v) for o, v in cases]
    assert sql == python == aliased
    assert python.count(True) == 2  # ok with accepted true or unknown; never accepted: false


def test_got_a_2xx_counts_a_message_without_a_recorded_status():
    con = duckdb.connect()
    rows = [(200, "ok", True), (299, "error", True), (529, "error", False), (None, "refusal", True),
            (None, "error", False), (None, "ok", True), (300, "ok", False)]
    con.execute("CREATE TABLE a (http_status INTEGER, outcome VARCHAR)")
    con.executemany("INSERT INTO a VALUES (?, ?)", [r[:2] for r in rows])
    got = [bool(r[0]) for r in con.execute(f"SELECT coalesce({GOT_2XX}, false) FROM a").fetchall()]
    assert got == [r[2] for r in rows]
