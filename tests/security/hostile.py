"""A small database whose names are attacks: SQL injection, HTML/script injection, spreadsheet formulas,
Markdown and plotly markup in workloads, models, sessions, refusal categories and surfaces."""

from __future__ import annotations

import json
from pathlib import Path

from builders import exchange, message, request, write_jsonl

SCRIPT = "<script>alert('xss-1')</script>"
IMG = "<img src=x onerror=\"alert('xss-2')\">"
SVG = "<svg onload=alert('xss-3')>"
LINK = "<a href=\"https://evil.example/x\">click</a>"
BOLD = "<b>bold</b>"
SQLI = "'; DROP TABLE attempts; --"
FORMULA = "=HYPERLINK(\"https://evil.example\",\"x\")"
MARKDOWN = "**bold** | [link](https://evil.example) `code`"
TEMPLATE = "%{y} %{fullData.name}"
UNICODE_QUOTES = "\u2019 OR \u20181\u2019=\u20181 \u02bc; DROP TABLE loads; --"

WORKLOADS = [SCRIPT, IMG, SQLI, FORMULA, MARKDOWN, UNICODE_QUOTES]
MODELS = [IMG, "<body onload=alert('xss-4')>"]  # each chain falls back from the first to the second
CATEGORY = SVG
SESSION = LINK
SURFACE = BOLD
#: every hostile name that must only ever be shown as text
NAMES = sorted({*WORKLOADS, *MODELS, CATEGORY, SESSION, SURFACE, TEMPLATE})
#: the markup that must never reach a page unescaped
MARKUP = [SCRIPT, IMG, SVG, LINK, BOLD]
WEEK = "2026-W45"  # 2026-11-02 .. 2026-11-08


def records() -> list[dict]:
    """Two weeks of chains: per workload and day, a refusal on one hostile model answered by the other."""
    out = []
    for day in range(2, 16):
        for i, workload in enumerate(WORKLOADS):
            ts = f"2026-11-{day:02d}T10:{i:02d}:00Z"
            chain = f"c-{day}-{i}"
            refused = message(f"m-{day}-{i}-a", MODELS[0], stop_reason="refusal", content=[],
                              stop_details={"type": "refusal", "category": CATEGORY})
            out.append(exchange(ts, request(MODELS[0], f"q{day}{i}"), refused, workload=workload, chain_id=chain,
                                attempt=1, session_id=SESSION if i % 2 else TEMPLATE, surface=SURFACE))
            ts2 = f"2026-11-{day:02d}T10:{i:02d}:30Z"
            out.append(exchange(ts2, request(MODELS[1], f"q{day}{i}"), message(f"m-{day}-{i}-b", MODELS[1]),
                                workload=workload, chain_id=chain, attempt=2, session_id=SESSION, surface=SURFACE))
    return out


def policy_toml() -> str:
    """A policy whose workload sections are hostile names (TOML-quoted), each declaring the two models."""
    sections = []
    for workload in WORKLOADS:
        sections.append(f"[workloads.{json.dumps(workload)}]\nchain = {json.dumps(MODELS)}\n"
                        "require_disclosure = true\nrefusal_slo = 0.05\n")
    return "\n".join(sections)


def build(folder: Path) -> Path:
    """Write the logs and the policy into `folder`, load them; return the database path."""
    from ingest.loader import LoadOptions, ingest_paths

    folder.mkdir(parents=True, exist_ok=True)
    log = write_jsonl(folder / "hostile.jsonl", records())
    policy = folder / "policy.toml"
    policy.write_text(policy_toml(), encoding="utf-8")
    db = folder / "hostile.duckdb"
    [report] = ingest_paths(db, [str(log)], LoadOptions(policy_file=policy))
    assert report.rejected == 0 and report.records == len(records())
    return db
