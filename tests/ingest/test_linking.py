"""Chain linking (docs/metrics.md §4): which chain each attempt joins, its index, trigger and fallback mode —
by the app's chain id, a presented credit, the hops of one response, the same prompt in a scope within 10
minutes; across files loaded one after the other; in slices. Where a rule is written in two languages
(`ingest/linking.py`), the two agree."""

from __future__ import annotations

import itertools

import duckdb
import pyarrow as pa
import pytest
from builders import exchange, message, request, rows, token_fp, usage, write_jsonl
from test_exchange_format import TOKEN, refusal_record

from ingest import linking
from ingest.loader import LoadOptions, ingest_paths


def load(tmp_path, db, records, **options):
    path = write_jsonl(tmp_path / "x.jsonl", records)
    return ingest_paths(db, [str(path)], LoadOptions(**options))


# ---------------------------------------------------------------- one rule, two languages

NAMES = [None, "", "a", "b"]


def test_the_scope_sql_and_arrow_forms_agree():
    pairs = list(itertools.product(NAMES, ["default", "wl", ""]))
    table = pa.table({"session_id": pa.array([s for s, _ in pairs], pa.string()),
                      "workload": pa.array([w for _, w in pairs], pa.string())})
    con = duckdb.connect()
    con.register("t_arrow", table)
    sql = [row[0] for row in con.execute(f"SELECT {linking.scope_sql('t')} FROM t_arrow t").fetchall()]
    arrow = linking.scope_arrow(pa.chunked_array([table.column("session_id").combine_chunks()]),
                                table.column("workload")).to_pylist()
    assert sql == arrow
    assert arrow[:3] == ["w:default", "w:wl", "w:"] and arrow[3] == "s:"  # an empty session id is a session


@pytest.mark.parametrize(("intended", "model"), list(itertools.product(NAMES, NAMES)))
def test_the_pinned_rule_in_python_and_arrow_agree(intended, model):
    python = linking.first_trigger(intended, model)
    arrow = linking.first_trigger_arrow(pa.chunked_array([pa.array([intended], pa.string())]),
                                        pa.chunked_array([pa.array([model], pa.string())])).to_pylist()
    assert [python] == arrow
    assert python == ("pinned" if intended is not None and intended != model else None)


# ---------------------------------------------------------------- the rules, through a load


def test_same_prompt_after_ten_minutes_or_after_success_starts_a_new_chain(tmp_path, db):
    late = exchange("2026-11-02T10:10:00Z", refusal_record()["request"], message("msg_late", "claude-fable-5"),
                    session_id="s1")
    again = exchange("2026-11-02T10:11:00Z", refusal_record()["request"], message("msg_again", "claude-fable-5"),
                     session_id="s1")
    load(tmp_path, db, [refusal_record(), late, again])
    chains = [r["chain_id"] for r in rows(db)]
    assert chains == ["msg_ref1", "msg_late", "msg_again"]


def test_a_server_side_response_presenting_a_credit_joins_the_minting_chain_with_every_hop(tmp_path, db):
    # another session, another prompt and 20 minutes on: only the presented credit links it (rule 2, then 3)
    req = request("claude-fable-5", "other text", fallback_credit_token={"token": TOKEN, "mode": "best_effort"},
                  fallbacks=[{"model": "claude-opus-4-8"}])
    resp = message("msg_sc", "claude-opus-4-8",
                   content=[{"type": "fallback", "from": {"model": "claude-fable-5"},
                             "to": {"model": "claude-opus-4-8"}, "trigger": {"type": "overloaded_error"}},
                            {"type": "text", "text": "served"}],
                   usage_=usage(5, 3, fallback_credit={"status": {"type": "redeemed"}}))
    load(tmp_path, db, [refusal_record(), exchange("2026-11-02T10:20:00Z", req, resp, session_id="s2")])
    refused, hop1, hop2 = rows(db)
    assert refused["chain_id"] == hop1["chain_id"] == hop2["chain_id"] == "msg_ref1"
    assert [hop1["attempt_index"], hop2["attempt_index"]] == [2, 3]
    assert [hop1["trigger"], hop2["trigger"]] == ["refusal", "overloaded"]
    # the presented credit is judged on the response, which the serving hop carries
    assert hop1["credit_presented_fp"] is None and hop2["credit_presented_fp"] == token_fp(TOKEN)


def test_a_given_trigger_is_the_first_hops_and_later_hops_follow_the_hop_before(tmp_path, db):
    first = exchange("2026-11-02T11:00:00Z", request("claude-haiku-4-5"), message("msg_h", "claude-haiku-4-5"),
                     chain_id="C", accepted=False)
    resp = message("msg_e", "claude-sonnet-4-5",
                   content=[{"type": "fallback", "from": {"model": "claude-opus-4-8"},
                             "to": {"model": "claude-sonnet-4-5"}, "trigger": {"type": "overloaded_error"}},
                            {"type": "text", "text": "served"}])
    second = exchange("2026-11-02T11:00:05Z", request("claude-opus-4-8"), resp, chain_id="C", trigger="quality")
    load(tmp_path, db, [first, second])
    _, hop1, hop2 = rows(db)
    assert [hop1["trigger"], hop2["trigger"]] == ["quality", "overloaded"]


def test_an_attempt_without_a_model_is_no_change_of_model(tmp_path, db):
    failed = exchange("2026-11-02T11:00:00Z", None, {"type": "error", "error": {"type": "overloaded_error"}},
                      status=529, chain_id="C", request_id="req_1")
    served = exchange("2026-11-02T11:00:02Z", None, message("m2", "claude-opus-4-8"), chain_id="C")
    load(tmp_path, db, [failed, served])
    first, second = rows(db)
    assert first["model"] is None and second["attempt_index"] == 2
    assert second["fallback_mode"] == "none" and second["trigger"] == "overloaded"


def test_tier_chain_with_quality_rejection_and_pinned_first_attempt(tmp_path, db):
    recs = [
        exchange("2026-11-02T09:00:00Z", request("claude-haiku-4-5"), message("m1", "claude-haiku-4-5"),
                 chain_id="c1", attempt=1, accepted=False, intended_model="claude-haiku-4-5"),
        exchange("2026-11-02T09:00:05Z", request("claude-sonnet-4-5"), message("m2", "claude-sonnet-4-5"),
                 chain_id="c1", attempt=2, accepted=True),
        exchange("2026-11-02T09:30:00Z", request("claude-opus-4-8", "q2"), message("m3", "claude-opus-4-8"),
                 chain_id="c2", intended_model="claude-fable-5", disclosed=True),
        exchange("2026-11-02T09:31:00Z", request("claude-opus-4-8", "q3"), message("m4", "claude-opus-4-8"),
                 chain_id="c3", attempt=1, status=529),
        exchange("2026-11-02T09:31:01Z", request("claude-opus-4-8", "q3"), message("m5", "claude-opus-4-8"),
                 chain_id="c3", attempt=2),
    ]
    load(tmp_path, db, recs)
    by_id = {r["attempt_id"]: r for r in rows(db)}
    assert by_id["m1"]["trigger"] is None and by_id["m2"]["trigger"] == "quality"
    assert by_id["m2"]["fallback_mode"] == "client" and by_id["m1"]["accepted"] is False
    assert by_id["m3"]["trigger"] == "pinned" and by_id["m3"]["fallback_mode"] == "none"
    assert by_id["m3"]["intended_model"] == "claude-fable-5" and by_id["m3"]["disclosed"] is True
    m4 = next(r for r in by_id.values() if r["chain_id"] == "c3" and r["attempt_index"] == 1)
    assert m4["error_class"] == "overloaded"
    assert by_id["m5"]["trigger"] == "overloaded" and by_id["m5"]["fallback_mode"] == "none"  # same-model retry


def test_chains_continue_across_files_loaded_one_after_the_other(tmp_path, db):
    """Each rule of docs/metrics.md §4 links an attempt to a chain stored by an earlier load: the chain id, a presented
    credit, and the same prompt within 10 minutes of a chain that has not succeeded (but not one older)."""
    named = exchange("2026-11-02T09:00:00Z", request("claude-haiku-4-5", "tier me"),
                     message("msg_n1", "claude-haiku-4-5"), chain_id="app-1", accepted=False)
    old = exchange("2026-11-02T09:50:00Z", request("claude-fable-5", "stale prompt"),
                   message("msg_old", "claude-fable-5", stop_reason="refusal", content=[]), session_id="s1")
    refused = exchange("2026-11-02T10:00:10Z", request("claude-fable-5", "second prompt"),
                       message("msg_r2", "claude-fable-5", stop_reason="refusal", content=[]), session_id="s3")
    first = write_jsonl(tmp_path / "a.jsonl", [named, old, refusal_record(), refused])
    named_next = exchange("2026-11-02T10:00:30Z", request("claude-sonnet-4-5", "tier me"),
                          message("msg_n2", "claude-sonnet-4-5"), chain_id="app-1")
    by_credit = exchange("2026-11-02T10:01:00Z", request("claude-opus-4-8", "other words",
                                                         fallback_credit_token=TOKEN),
                         message("msg_cr", "claude-opus-4-8"), session_id="s2")
    by_prompt = exchange("2026-11-02T10:02:00Z", refused["request"], message("msg_pr", "claude-opus-4-8"),
                         session_id="s3")
    too_late = exchange("2026-11-02T10:03:00Z", old["request"], message("msg_tl", "claude-opus-4-8"),
                        session_id="s1")
    second = write_jsonl(tmp_path / "b.jsonl", [named_next, by_credit, by_prompt, too_late])
    for path in (first, second):
        ingest_paths(db, [str(path)])
    got = {r["attempt_id"]: (r["chain_id"], r["attempt_index"], r["trigger"]) for r in rows(db)}
    assert got["msg_n2"] == ("app-1", 2, "quality")
    assert got["msg_cr"] == ("msg_ref1", 2, "refusal")
    assert got["msg_pr"] == ("msg_r2", 2, "refusal")
    # the same prompt 13 minutes after its refused chain's last attempt: a new chain
    assert got["msg_tl"] == ("msg_tl", 1, None)


def test_hops_split_across_link_slices_still_share_the_presented_credit(tmp_path, db, monkeypatch):
    """The loader links a large file in slices; a slice never ends inside the hops of one response."""
    monkeypatch.setattr("ingest.linking.LINK_SLICE", 2)  # three attempts: a slice of 2 would end between the hops
    test_a_server_side_response_presenting_a_credit_joins_the_minting_chain_with_every_hop(tmp_path, db)


# ---------------------------------------------------------------- stored chains keep their ids


def test_a_late_attempt_heading_a_stored_chain_does_not_rename_it():
    # rows in link order: the late attempt n, then stored x and y of chain "x"; the linker named the chain "n"
    assert linking.keep_stored_ids(["n", "n", "n"], [None, "x", "x"], set()) == ["x", "x", "x"]


def test_stored_chains_merged_by_a_late_attempt_keep_the_older_ones_id():
    assert linking.keep_stored_ids(["a", "a", "a", "a"], ["a", None, "b", "b"], set()) == ["a"] * 4


def test_a_split_chain_gives_its_later_part_its_own_first_attempts_id():
    # stored chain "a" = [a, c]; a late success s between them ends it: [a, s] and [c]
    assert linking.keep_stored_ids(["a", "a", "c"], ["a", None, "a"], set()) == ["a", "a", "c"]


def test_a_chain_holding_a_stored_chains_first_row_takes_its_id_before_a_later_claim():
    # stored chain "x" = [x1, x2]; now x1 heads a chain of its own and x2 joins a late chain headed by n
    chains = linking.keep_stored_ids(["n", "x1", "n"], [None, "x", "x"], set())
    assert chains == ["n", "x", "n"]


def test_chains_named_by_the_app_or_seeded_from_before_keep_their_names():
    assert linking.keep_stored_ids(["app-1", "app-1", "s"], ["old", "old", "s"], {"app-1", "s"}) == [
        "app-1", "app-1", "s"]
