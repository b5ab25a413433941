"""`fallbackscope demo`: sample logs → a fresh database → headline numbers (→ the dashboard)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from rich.console import Console

# A policy for the sample's workloads, so the demo shows tier advice, disclosure and SLO checks.
DEMO_POLICY = """\
[workloads.batch-extract]
chain = ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-8"]
fallback_on = ["quality", "server_error", "overloaded", "timeout", "rate_limit", "connection"]

[workloads.support-chat]
require_disclosure = true
refusal_slo = 0.10
"""


def build_demo_database(db: Path, logs: Path, *, seed: int = 7) -> dict:
    """Write the sample logs into `logs`, load them into a fresh `db`; return the ground truth."""
    from fallbackscope.core.config import key_path_for
    from fallbackscope.sample import SampleSpec, generate
    from ingest.loader import LoadOptions, ingest_paths

    if logs.exists():
        shutil.rmtree(logs)
    logs.mkdir(parents=True)
    truth = generate(logs, SampleSpec(seed=seed))
    for stale in (db, db.with_name(db.name + ".wal"), key_path_for(db)):
        stale.unlink(missing_ok=True)
    batch_files = sorted(logs.glob("batch-*.jsonl"))
    exchange_files = [str(p) for p in sorted(logs.glob("exchange-*.jsonl"))]
    policy = logs / "policy.toml"
    policy.write_text(DEMO_POLICY, encoding="utf-8")
    ingest_paths(db, exchange_files, LoadOptions(policy_file=policy))
    if batch_files:
        ingest_paths(db, [str(p) for p in batch_files],
                     LoadOptions(format="batch", batch_id=truth.get("batch_id"),
                                 default_ts=truth.get("batch_ts"), workload=truth.get("batch_workload")))
    return truth


def headline(db: Path) -> list[tuple[str, str]]:
    """Return the headline numbers of a database as (label, value) pairs."""
    from analytics.collect import collect
    from analytics.common import clean
    from analytics.summary import chain_table, present
    from fallbackscope.core import store

    con = store.connect(db, read_only=True, wait_seconds=10)
    try:
        total = present(chain_table(collect(con), None, False), None).iloc[0]
        loads = con.execute("SELECT count(*), sum(rejected) FROM loads WHERE status = 'ok'").fetchone()
    finally:
        con.close()
    attempts, chains, sessions = int(total["attempts"]), int(total["chains"]), int(total["sessions"])
    refused_chains, unpriced = int(total["refused_chains"]), int(total["unpriced_attempts"])
    cost = clean(total["cost_usd"])
    rate = f"{refused_chains / chains:.1%}" if chains else "n/a"
    return [
        ("attempts", f"{attempts:,}"),
        ("chains", f"{chains:,}"),
        ("sessions", f"{sessions:,}"),
        ("refusal rate (chains with a refusal)", f"{rate} ({refused_chains:,} of {chains:,})"),
        ("cost", f"${(cost or 0):,.2f}" + (f" (+{unpriced} unpriced attempts)" if unpriced else "")),
        ("files loaded", f"{loads[0]} ({loads[1] or 0} records rejected)"),
    ]


def run_demo(db: Path, logs: Path | None, console: Console, *, serve: bool = True, port: int = 8050) -> None:
    """Build the demo database, print its headline numbers and serve the dashboard when asked. The sample
    logs go to `logs` when given, else to a temporary folder removed once they are loaded."""
    if logs is None:
        console.print(f"Generating sample logs and loading them into {db} …", markup=False)
        with tempfile.TemporaryDirectory(prefix="fallbackscope-demo-") as folder:
            build_demo_database(db, Path(folder) / "logs")
    else:
        console.print(f"Writing sample logs to {logs}/ and loading them into {db} …", markup=False)
        build_demo_database(db, logs)
    for label, value in headline(db):
        console.print(f"  {label}: {value}", markup=False)
    if serve:
        from dashboard.app import serve as serve_dashboard

        serve_dashboard(db, host="127.0.0.1", port=port)
