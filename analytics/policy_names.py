"""Names in a policy that match nothing (docs/metrics.md §6.1): a misspelt workload or model is said, with
the closest known name, wherever a policy is given — not counted silently as violations."""

from __future__ import annotations

import difflib

import duckdb

from fallbackscope.core.modelnames import normalise_model
from fallbackscope.core.policy import Policy
from fallbackscope.core.prices import table_in_force


def policy_name_warnings(con: duckdb.DuckDBPyConnection, policy: Policy) -> list[str]:
    """Return one line per workload of `policy` never seen in the data, and per model of a declared chain
    that is neither in the price table nor in the data; each names the closest known name when one is
    close ("did you mean claude-sonnet-4-5?"). Empty when every name is known (or the database is empty)."""
    if not policy.workloads:
        return []
    workloads = {w for (w,) in con.execute("SELECT DISTINCT workload FROM attempts").fetchall() if w}
    if not workloads:
        return []  # nothing loaded yet: every name would be unknown, which says nothing
    table = table_in_force(con)
    models = {m for (m,) in con.execute("SELECT DISTINCT model FROM attempts").fetchall() if m}
    known_models = models | set(table.models()) | set(table.aliases)
    out = []
    for name, rules in sorted(policy.workloads.items()):
        if name not in workloads:
            out.append(f"policy: workload `{name}` has no attempts in the data{_closest(name, workloads)}.")
        for model in rules.chain or ():
            if model not in known_models and (normalise_model(model, table.aliases) or model) not in known_models:
                out.append(f"policy: model `{model}` in the chain of `{name}` is neither priced nor in the "
                           f"data{_closest(model, known_models)}.")
    return out


def _closest(name: str, known: set[str]) -> str:
    match = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    return f" (did you mean {match[0]}?)" if match else ""
