"""The ground truth of a generated sample: what was planted, counted with the definitions of docs/metrics.md
(§1, §4, §6.1, §6.2, §6.5) from the planted chains, never by reading the files back."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from fallbackscope.core.outcomes import OUTCOMES, succeeded
from fallbackscope.core.periods import week_label
from fallbackscope.sample.spec import CATEGORIES, CREDIT_KEYS, Chain, Hop


def week_of_ms(ms: int) -> str:
    """Return the ISO week label of epoch milliseconds (UTC), e.g. `2026-W43`."""
    return week_label(dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date())


def category_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """Return refusals per category in the order of CATEGORIES, `None` shown as `unspecified`."""
    return {c: counts.get(c, 0) for c in (c or "unspecified" for c in CATEGORIES)}


def ground_truth(chains: list[Chain]) -> dict[str, Any]:
    """Count what was planted with the definitions of docs/metrics.md (§1, §4, §6.1, §6.2, §6.5)."""
    hops = [h for ch in chains for h in ch.hops]
    refused = [h for h in hops if h.outcome == "refusal"]
    by_category = Counter(h.category or "unspecified" for h in refused)
    credits = Counter(dict.fromkeys(CREDIT_KEYS, 0))
    presented: dict[str, list[Hop]] = defaultdict(list)
    for h in hops:
        if h.presented:
            presented[h.presented].append(h)
    for ch in chains:
        for i, h in enumerate(ch.hops):
            if not h.minted:
                continue
            credits["minted"] += 1
            if h.batch:
                credits["unredeemable"] += 1
                continue
            ok = [p for p in presented[h.minted] if p.http_2xx]
            if any(p.credit_status == "redeemed" for p in ok):
                credits["redeemed"] += 1
            elif any(p.credit_status == "not_applied" for p in ok):
                credits["rejected"] += 1
            elif ok:
                credits["unconfirmed"] += 1
            elif any(later.ts - h.ts <= 300_000 for later in ch.hops[i + 1 :]):
                credits["forfeited"] += 1
            else:
                credits["expired"] += 1
    zero = {"chains": 0, "refused_chains": 0, "sessions": 0, "refused_sessions": 0}
    weeks: dict[str, dict[str, int]] = {}
    workloads: dict[str, dict[str, int]] = {}
    sessions: dict[tuple[str, ...], bool] = {}  # (scope, session) -> refused there
    for ch in chains:
        first = ch.hops[0]
        resolver = next((h for h in ch.hops if succeeded(h.outcome, h.accepted)), None)
        is_refused = any(h.outcome == "refusal" for h in ch.hops)
        week = week_of_ms(first.ts)
        w = weeks.setdefault(week, zero | {"fallback_chains": 0, "escalated_chains": 0, "unresolved_chains": 0})
        wl = workloads.setdefault(ch.workload, dict(zero))
        for scope, row in ((("week", week), w), (("workload", ch.workload), wl)):
            row["chains"] += 1
            row["refused_chains"] += is_refused
            key = (*scope, ch.workload, ch.session)
            sessions[key] = sessions.get(key, False) or is_refused
        pinned = first.intended is not None and first.intended != first.model
        w["fallback_chains"] += pinned or (resolver is not None and resolver.model != first.model)
        w["escalated_chains"] += any(h.model != first.model for h in ch.hops[1:])
        w["unresolved_chains"] += resolver is None
    for (kind, scope, *_), was_refused in sessions.items():
        row = weeks[scope] if kind == "week" else workloads[scope]
        row["sessions"] += 1
        row["refused_sessions"] += was_refused
    totals = {
        k: sum(w[k] for w in weeks.values()) for k in ("fallback_chains", "escalated_chains", "unresolved_chains")
    }
    return {
        "attempts": len(hops),
        "chains": len(chains),
        "sessions": len({(ch.workload, ch.session) for ch in chains}),
        "refused_attempts": len(refused),
        "refused_chains": sum(any(h.outcome == "refusal" for h in ch.hops) for ch in chains),
        "refusals_by_category": category_counts(by_category),
        "credits": dict(credits),
        "errors_by_class": dict(sorted(Counter(h.error_class for h in hops if h.error_class).items())),
        "outcomes": {o: sum(h.outcome == o for h in hops) for o in OUTCOMES},
        "refusal_loops": sum(ch.loop for ch in chains),
        **totals,
        "weeks": dict(sorted(weeks.items())),
        "workloads": dict(sorted(workloads.items())),
    }

