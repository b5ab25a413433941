"""`ingest --reload` and `loads forget` (docs/metrics.md §2, issue 15 item 3): after any sequence of loads, reloads
with other options and forgets, the database equals a fresh load of the files that remain, in their load order
(a file's place: its first load since it was last forgotten), each with its final options — attempts on every
column but load_id, chains included."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from builders import KEY, exchange, message, query, request, write_jsonl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relink_support import assert_same, snapshot

from fallbackscope.core.errors import FallbackscopeError
from fallbackscope.sample import SampleSpec, generate
from ingest.loader import IngestFailed, LoadOptions, forget_loads, ingest_paths, list_loads

# per file, the options a load or reload may give (each file reads alike with any of them but for what they set)
OPTIONS = {
    "day1": [{}, {"workload": "other"}],
    "day2": [{}],
    "day3": [{}],
    "sse": [{"default_ts": "2026-10-20T12:00:00Z"}, {"default_ts": "2026-10-21T06:00:00Z", "workload": "sse"}],
    "batch": [{"default_ts": "2026-10-20T02:00:00Z"},
              {"default_ts": "2026-10-21T02:00:00Z", "workload": "batch-extract", "batch_id": "msgbatch_x"}],
    "nowl": [{}, {"workload": "wl-a"}, {"workload": "wl-b"}],
}
RELOAD_OPTIONS = {name: [{}, *choices] for name, choices in OPTIONS.items()}  # {}: keep the last load's


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Three day files, the wire capture of their streams (every stream a duplicate of a day file's line), the
    batch results, and a day of lines that name no workload (so --workload changes their link scope)."""
    folder = tmp_path_factory.mktemp("files")
    generate(folder, SampleSpec(seed=11, days=3, chains_per_day=8, prompt_words=(5, 12), with_sse=True,
                                across_midnight=True))
    days = sorted(folder.glob("exchange-*.jsonl"))
    other = folder / "other"
    generate(other, SampleSpec(seed=12, days=1, chains_per_day=8, prompt_words=(5, 12), with_batch=False,
                               start=SampleSpec.start.replace(day=25)))
    lines = [json.loads(line) for line in next(other.glob("exchange-*.jsonl")).read_text().splitlines()]
    nowl = write_jsonl(folder / "no-workload.jsonl", [{k: v for k, v in line.items() if k != "workload"}
                                                      for line in lines])
    return {"day1": days[0], "day2": days[1], "day3": days[2], "sse": folder / "stream-capture.sse",
            "batch": folder / "batch-results.jsonl", "nowl": nowl}


@st.composite
def operations(draw):
    ops = []
    for _ in range(draw(st.integers(2, 7))):
        kind = draw(st.sampled_from(["load", "load", "reload", "forget"]))
        name = draw(st.sampled_from(sorted(OPTIONS)))
        choices = RELOAD_OPTIONS[name] if kind == "reload" else OPTIONS[name]
        ops.append((kind, name, draw(st.sampled_from(choices))))
    return ops


def run(db: Path, files: dict[str, Path], ops: list[tuple[str, str, dict]]) -> list[tuple[str, dict]]:
    """Apply the operations; return the files that remain in their load order, with their final options."""
    state: dict[str, dict] = {}  # file → its options, in load order (dicts keep insertion order)
    for kind, name, options in ops:
        path = str(files[name])
        if kind == "forget":
            if name in state:
                forget_loads(db, [path])
                del state[name]
            else:
                with pytest.raises(FallbackscopeError):
                    forget_loads(db, [path])
        elif kind == "load":
            ingest_paths(db, [path], LoadOptions(**options))
            state.setdefault(name, options)  # a file loaded already is skipped: its options stand
        else:
            merged = {**state.get(name, {}), **options}
            if name not in state and "default_ts" not in merged and name in ("sse", "batch"):
                with pytest.raises(IngestFailed):  # no time for its records: nothing loads, nothing changes
                    ingest_paths(db, [path], LoadOptions(**options), reload=True)
                continue
            ingest_paths(db, [path], LoadOptions(**options), reload=True)
            if name in state:
                state[name] = merged  # in its place
            else:
                state[name] = options
    return list(state.items())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations())
def test_any_sequence_of_loads_reloads_and_forgets_equals_a_fresh_load_of_what_remains(files, ops):
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setenv("FALLBACKSCOPE_KEY", KEY)
        db, fresh = Path(folder) / "t.duckdb", Path(folder) / "fresh.duckdb"
        remaining = run(db, files, ops)
        for name, options in remaining:
            ingest_paths(fresh, [str(files[name])], LoadOptions(**options))
        if not remaining:
            assert not db.exists() or query(db, "SELECT count(*) FROM attempts") == [(0,)]
            return
        got, expected = snapshot(db), snapshot(fresh)
        assert_same(got[0], expected[0])
        assert got[1] == expected[1]


def test_forgetting_a_file_restores_the_attempts_another_file_held_from_that_file(files, tmp_path, db):
    """The wire capture's streams are duplicates of a day file's lines; forget the day file and they come back
    from the capture (its version of them), chains linked again."""
    sse = LoadOptions(default_ts="2026-10-20T12:00:00Z")
    ingest_paths(db, [str(files[day]) for day in ("day1", "day2", "day3")])
    [capture] = ingest_paths(db, [str(files["sse"])], sse)
    assert capture.duplicates == capture.records > 0
    assert forget_loads(db, [str(files["day2"])]) == [2]
    fresh = tmp_path / "fresh.duckdb"
    ingest_paths(fresh, [str(files["day1"]), str(files["day3"])])
    ingest_paths(fresh, [str(files["sse"])], sse)
    assert query(fresh, "SELECT count(*) FROM attempts WHERE load_id = 3")[0][0] > 0  # the capture's versions
    got, expected = snapshot(db), snapshot(fresh)
    assert_same(got[0], expected[0])
    assert got[1] == expected[1]
    assert [r["status"] for r in list_loads(db)] == ["ok", "forgotten", "ok", "ok"]


def test_a_reload_keeps_options_not_given_and_its_earlier_load_stays_replaced(files, db):
    ingest_paths(db, [str(files["batch"])], LoadOptions(default_ts="2026-10-20T02:00:00Z", workload="w1"))
    [report] = ingest_paths(db, [str(files["batch"])], LoadOptions(batch_id="msgbatch_x"), reload=True)
    assert report.status == "ok"
    rows = list_loads(db)
    assert [r["status"] for r in rows] == ["replaced", "ok"]
    assert json.loads(rows[1]["options"]) == {"batch_id": "msgbatch_x", "default_ts": "2026-10-20T02:00:00Z",
                                              "format": None, "workload": "w1"}
    assert query(db, "SELECT DISTINCT workload FROM attempts") == [("w1",)]


def test_a_reload_that_would_fail_or_of_a_rotated_file_changes_nothing(tmp_path, db):
    line = exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"), message("m1", "claude-haiku-4-5"))
    log = write_jsonl(tmp_path / "a.jsonl", [line])
    ingest_paths(db, [str(log)])
    before = db.read_bytes()
    with pytest.raises(IngestFailed, match="none of its 1 records loaded"):
        ingest_paths(db, [str(log)], LoadOptions(format="batch"), reload=True)
    write_jsonl(log, [{**line, "response": message("m2", "claude-haiku-4-5")}])  # rotated: other first bytes
    with pytest.raises(IngestFailed, match="no longer begins with the bytes its earlier loads read"):
        ingest_paths(db, [str(log)], reload=True)
    assert db.read_bytes() == before
    assert [r["status"] for r in list_loads(db)] == ["ok"]


def test_forget_changes_nothing_when_a_file_to_restore_from_is_gone(files, tmp_path, db):
    day = tmp_path / "day.jsonl"
    capture = tmp_path / "capture.sse"
    day.write_bytes(files["day2"].read_bytes())
    capture.write_bytes(files["sse"].read_bytes())
    ingest_paths(db, [str(day)])
    ingest_paths(db, [str(capture)], LoadOptions(default_ts="2026-10-20T12:00:00Z"))
    capture.unlink()
    before = snapshot(db)
    with pytest.raises(FallbackscopeError, match=f"{capture}: gone or changed since load 2 read it"):
        forget_loads(db, [str(day)])
    assert snapshot(db) == before
    assert [r["status"] for r in list_loads(db)] == ["ok", "ok"]
