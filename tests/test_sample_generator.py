"""The sample generator: seeded, realistic, and its ground truth agrees with the files it wrote.

The checks below read the files back with a deliberately small, independent reading of docs/metrics.md §3-§6 (not
the ingester), so a mistake in the generator's bookkeeping shows up as a mismatch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fallbackscope.sample import CATEGORIES, SampleSpec, generate, generate_lines

SMALL = SampleSpec(days=3, chains_per_day=25, with_sse=True)
STATUS_CLASS = {
    400: "invalid_request",
    413: "invalid_request",
    401: "auth",
    402: "billing",
    403: "permission",
    404: "not_found",
    409: "conflict",
    429: "rate_limit",
    500: "server_error",
    502: "server_error",
    503: "server_error",
    408: "timeout",
    504: "timeout",
    529: "overloaded",
}
TYPE_CLASS = {"overloaded_error": "overloaded", "invalid_request_error": "invalid_request"}
ALL_CLASSES = {
    "invalid_request",
    "auth",
    "billing",
    "permission",
    "not_found",
    "conflict",
    "rate_limit",
    "server_error",
    "timeout",
    "overloaded",
    "connection",
}


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def _hops(line: dict[str, Any]) -> list[dict[str, Any]]:
    """The attempts one exchange line stands for: outcome, error_class, category, model (docs/metrics.md §3.1-§3.7)."""
    if "transport_error" in line:
        kind = line["transport_error"]
        return [{"outcome": kind, "error_class": kind}]
    status = line["http_status"]
    if status >= 400:
        cls = STATUS_CLASS[status]
        return [{"outcome": cls if cls == "timeout" else "error", "error_class": cls}]
    if "events" in line:
        msg = dict(line["events"][0]["message"])
        for ev in line["events"]:
            if ev["type"] == "message_delta":
                msg.update(ev["delta"])
            if ev["type"] == "error":
                return [{"outcome": "error", "error_class": TYPE_CLASS[ev["error"]["type"]]}]
    else:
        msg = line["response"]
    hops = []
    for block in msg["content"]:
        if block["type"] == "fallback":
            trig = block["trigger"]
            if trig["type"] == "refusal":
                hops.append({"outcome": "refusal", "category": trig["category"], "model": block["from"]["model"]})
            else:
                hops.append({"outcome": "error", "error_class": TYPE_CLASS[trig["type"]]})
    if msg["stop_reason"] == "refusal":
        hops.append({"outcome": "refusal", "category": msg["stop_details"]["category"]})
    else:
        hops.append({"outcome": "ok", "accepted": line.get("accepted")})
    return hops


def _batch_hops(row: dict[str, Any]) -> list[dict[str, Any]]:
    result = row["result"]
    if result["type"] == "succeeded":
        msg = result["message"]
        if msg["stop_reason"] == "refusal":
            return [{"outcome": "refusal", "category": msg["stop_details"]["category"]}]
        return [{"outcome": "ok"}]
    if result["type"] == "errored":
        return [{"outcome": "error", "error_class": TYPE_CLASS[result["error"]["error"]["type"]]}]
    return [{"outcome": result["type"]}]


def _fingerprint(request: dict[str, Any]) -> str:
    messages = list(request["messages"])
    if messages and messages[-1]["role"] == "assistant":
        messages.pop()
    return json.dumps([messages, request.get("system"), request.get("tools")], sort_keys=True)


def _link(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """metrics.md §4 in a few lines: chain_id, then credit token, then prompt within 10 minutes of a non-success."""
    chains: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    by_token: dict[str, dict[str, Any]] = {}
    by_prompt: dict[tuple[str, str], dict[str, Any]] = {}
    for line in lines:
        ts = dt.datetime.fromisoformat(line["ts"])
        request, hops = line["request"], _hops(line)
        token = request.get("fallback_credit_token")
        token = token["token"] if isinstance(token, dict) else token
        scope = line.get("session_id") or "wl:" + line["workload"]
        key = (scope, _fingerprint(request))
        chain = None
        if "chain_id" in line:
            chain = by_id.get(line["chain_id"])
        elif token in by_token:
            chain = by_token[token]
        elif key in by_prompt:
            last = by_prompt[key]
            if not last["success"] and ts - last["last_ts"] < dt.timedelta(minutes=10):
                chain = last
        if chain is None:
            chain = {"first_ts": ts, "workload": line["workload"], "session": line.get("session_id"), "hops": []}
            chains.append(chain)
            if "chain_id" in line:
                by_id[line["chain_id"]] = chain
        final = _final_message(line)
        details, usage = final.get("stop_details") or {}, final.get("usage") or {}
        hops[-1].update(
            presented=token,
            minted=details.get("fallback_credit_token"),
            ok_2xx=line.get("http_status") == 200 and hops[-1].get("error_class") is None,
            credit=usage.get("fallback_credit", {}).get("status", {}).get("type"),
        )
        for hop in hops:
            hop["ts"] = ts
        chain["hops"] += hops
        chain["last_ts"] = ts
        chain["success"] = hops[-1]["outcome"] == "ok" and hops[-1].get("accepted") is not False
        by_prompt[key] = chain
        if hops[-1]["minted"]:
            by_token[hops[-1]["minted"]] = chain
    return chains


def _final_message(line: dict[str, Any]) -> dict[str, Any]:
    if "events" not in line:
        return line.get("response") or {}
    msg = dict(line["events"][0]["message"])
    for ev in line["events"]:
        if ev["type"] == "message_delta":
            msg.update(ev["delta"], usage=ev["usage"])
    return msg


def _credit_ladder(chains: list[dict[str, Any]]) -> Counter[str]:
    """docs/metrics.md §6.5 over the linked files: the first outcome that holds for each minted credit."""
    presenters: dict[str, list[dict[str, Any]]] = {}
    for chain in chains:
        for hop in chain["hops"]:
            if hop.get("presented"):
                presenters.setdefault(hop["presented"], []).append(hop)
    fates: Counter[str] = Counter()
    for chain in chains:
        for i, hop in enumerate(chain["hops"]):
            if not hop.get("minted"):
                continue
            ok = [p for p in presenters.get(hop["minted"], []) if p["ok_2xx"]]
            if any(p["credit"] == "redeemed" for p in ok):
                fates["redeemed"] += 1
            elif any(p["credit"] == "not_applied" for p in ok):
                fates["rejected"] += 1
            elif ok:
                fates["unconfirmed"] += 1
            elif any(h["ts"] - hop["ts"] <= dt.timedelta(minutes=5) for h in chain["hops"][i + 1 :]):
                fates["forfeited"] += 1
            else:
                fates["expired"] += 1
    return fates


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("sample")
    truth = generate(out, SampleSpec(with_sse=True))
    lines = [json.loads(raw) for p in sorted(out.glob("exchange-*.jsonl")) for raw in p.read_text().splitlines()]
    return out, truth, lines


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first, second = generate(tmp_path / "a", SMALL), generate(tmp_path / "b", SMALL)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert first == second == json.loads((tmp_path / "a" / "ground_truth.json").read_text())


def test_a_seed_writes_the_bytes_it_always_wrote(tmp_path: Path) -> None:
    """Pinned from the generator as it was before it became a package: sample_data/ and the goldens rely on
    a seed meaning the same bytes, so a refactor of the generator must not change one."""
    generate(tmp_path / "a", SampleSpec(seed=7, days=3, chains_per_day=20, with_sse=True))
    generate_lines(500, tmp_path / "b.jsonl", seed=3)
    digest = hashlib.sha256()
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(tmp_path).as_posix().encode() + b"\0" + path.read_bytes())
    assert digest.hexdigest() == "8fd904fa819569c190db7ce0601903cf4a0377d1558689b287c90c08ab480a56"


def test_a_different_seed_gives_different_files(tmp_path: Path) -> None:
    generate(tmp_path / "a", SMALL)
    generate(tmp_path / "b", SampleSpec(seed=8, days=3, chains_per_day=25, with_sse=True))
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(a[name] != b[name] for name in a)


def test_files_hold_the_lines_the_ground_truth_names(sample) -> None:
    out, truth, _ = sample
    assert set(truth["files"]) | {"ground_truth.json"} == {p.name for p in out.iterdir()}
    assert len([n for n in truth["files"] if n.startswith("exchange-")]) == 28
    for name, info in truth["files"].items():
        assert len((out / name).read_bytes().splitlines()) == info["lines"], name


def test_every_line_is_in_its_days_file_in_time_order(sample) -> None:
    out, _, _ = sample
    for path in sorted(out.glob("exchange-*.jsonl")):
        stamps = [json.loads(raw)["ts"] for raw in path.read_text().splitlines()]
        assert stamps == sorted(stamps)
        assert {s[:10] for s in stamps} == {path.stem.removeprefix("exchange-")}


def test_attempts_refusals_errors_and_outcomes_match_the_files(sample) -> None:
    out, truth, lines = sample
    batch = [json.loads(raw) for raw in (out / "batch-results.jsonl").read_text().splitlines()]
    hops = [h for line in lines for h in _hops(line)] + [h for row in batch for h in _batch_hops(row)]
    extra_hops = sum(len(_hops(line)) - 1 for line in lines)
    assert extra_hops > 0
    assert truth["attempts"] == len(lines) + extra_hops + len(batch) == len(hops)
    refused = [h for h in hops if h["outcome"] == "refusal"]
    assert truth["refused_attempts"] == len(refused)
    assert truth["refusals_by_category"] == {
        c or "unspecified": sum(h["category"] == c for h in refused) for c in CATEGORIES
    }
    assert truth["errors_by_class"] == dict(
        sorted(Counter(h["error_class"] for h in hops if h.get("error_class")).items())
    )
    assert truth["outcomes"] == {o: sum(h["outcome"] == o for h in hops) for o in truth["outcomes"]}


def test_chains_link_by_the_spec_rules_to_the_planted_chains(sample) -> None:
    out, truth, lines = sample
    chains = _link(lines)
    n_batch = truth["files"]["batch-results.jsonl"]["lines"]
    fates = _credit_ladder(chains)
    assert {k: v for k, v in truth["credits"].items() if k not in ("minted", "unredeemable")} == fates
    assert truth["credits"]["minted"] == fates.total() + truth["credits"]["unredeemable"]
    assert len(chains) + n_batch == truth["chains"]
    week_of = {c["first_ts"].strftime("%G-W%V") for c in chains}
    for week in week_of:
        mine = [c for c in chains if c["first_ts"].strftime("%G-W%V") == week]
        batch_week = dt.datetime.fromisoformat(truth["ingest_options"]["--default-ts"]).strftime("%G-W%V")
        assert len(mine) + (n_batch if week == batch_week else 0) == truth["weeks"][week]["chains"]
    for name, row in truth["workloads"].items():
        mine = [c for c in chains if c["workload"] == name]
        refused = [c for c in mine if any(h["outcome"] == "refusal" for h in c["hops"])]
        if name != "batch-extract":  # the batch results join that workload through --workload
            assert len(mine) == row["chains"], name
            assert len(refused) == row["refused_chains"], name
            sessions = {c["session"] or id(c) for c in mine}
            assert len(sessions) == row["sessions"], name


def test_every_error_class_category_credit_outcome_and_shape_is_planted(sample) -> None:
    out, truth, lines = sample
    assert set(truth["errors_by_class"]) == ALL_CLASSES
    assert all(truth["refusals_by_category"].values())
    assert all(truth["credits"].values()) and truth["credits"]["unredeemable"] == 1
    assert sum(truth["credits"][k] for k in ("redeemed", "rejected", "unconfirmed", "forfeited", "expired")) == (
        truth["credits"]["minted"] - truth["credits"]["unredeemable"]
    )
    assert all(truth["outcomes"].values())
    text = (out / "exchange-2026-10-19.jsonl").read_text() + "".join(
        p.read_text() for p in sorted(out.glob("exchange-*.jsonl"))
    )
    for needle in (
        '"type":"fallback"',
        '"type":"overloaded_error"}',
        '"fallback_message"',
        '"intended_model"',
        '"disclosed":true',
        '"disclosed":false',
        '"inference_geo":"us"',
        '"web_search_requests"',
        '"ephemeral_1h_input_tokens"',
        '"mode":"best_effort"',
        '"accepted":false',
        '"trigger":"quality"',
        '"fallback_has_prefill_claim":true',
        '"transport_error":"timeout"',
        '"surface":"bedrock"',
        '"status":{"type":"not_applied"',
        '"type":"error","error":{"type":"overloaded_error"',
    ):
        assert needle in text, needle
    streamed_refusals = [line for line in lines if "events" in line and "refusal" in json.dumps(line["events"])]
    assert streamed_refusals
    assert truth["weeks"]["2026-W46"]["refused_chains"] > truth["weeks"]["2026-W43"]["refused_chains"]


def test_message_ids_are_unique_and_the_sse_capture_repeats_the_streams(sample) -> None:
    out, truth, lines = sample
    ids = [line["response"]["id"] for line in lines if "id" in line.get("response", {})]
    ids += [line["events"][0]["message"]["id"] for line in lines if "events" in line]
    assert len(ids) == len(set(ids)) and all(i.startswith("msg_") for i in ids)
    assert all(line["request_id"].startswith("req_") for line in lines if "request_id" in line)
    sse = (out / "stream-capture.sse").read_text()
    starts = [
        json.loads(row[6:])["message"]["id"]
        for row in sse.splitlines()
        if '"message_start"' in row and row.startswith("data: ")
    ]
    assert len(starts) == truth["files"]["stream-capture.sse"]["records"] == sum("events" in x for x in lines)
    assert set(starts) <= set(ids)


def test_generate_lines_writes_realistic_2_5_kb_lines(tmp_path: Path) -> None:
    path = tmp_path / "bench.jsonl"
    truth = generate_lines(2000, path, seed=3)
    raw = path.read_bytes().splitlines()
    assert len(raw) == truth["files"]["bench.jsonl"]["lines"] == truth["attempts"] == 2000
    assert 2000 <= sum(map(len, raw)) / len(raw) <= 3000
    lines = [json.loads(r) for r in raw]
    assert sum(h["outcome"] == "refusal" for line in lines for h in _hops(line)) == truth["refused_attempts"]
    assert len({line["chain_id"] for line in lines}) == truth["chains"]
    assert (
        len({line["response"]["id"] for line in lines if "id" in line["response"]})
        == truth["outcomes"]["ok"] + (truth["refused_attempts"])
    )
    assert generate_lines(2000, tmp_path / "again.jsonl", seed=3) == truth | {"files": {"again.jsonl": {"lines": 2000}}}
    assert (tmp_path / "again.jsonl").read_bytes() == path.read_bytes()
