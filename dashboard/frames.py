"""Everything the pages show, as DataFrames derived from a Base for one set of filters.

A `View` slices the whole-database facts of a Base to the filters' days and workloads (a chain belongs to
the day of its first attempt, and every fact is keyed by that day and the chain's workload, so a slice is
exactly the facts `analytics.collect.collect` returns for that period) and rolls them up through the
`analytics` functions. Sessions cannot be sliced from day counts (a session spans days), so each slice
asks the Base's session-day table for its own counts.

One deliberate difference from a fresh `collect` of the range: a workload without a declared chain takes
as its top tier (for the counterfactual cost) the priciest model it used in the whole database, not only
in the range.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pandas as pd

from analytics import costs, credits, refusals, reliability, tiers
from analytics.common import Rate, clean, rate_frame
from analytics.coverage import Coverage, partial_week
from analytics.facts import Facts
from analytics.metrics import REGISTRY, blended_cost_per_request
from analytics.summary import chain_table, present
from dashboard.data import Base, DataSource, Dimensions, Ledger, Result, SessionPrefix, session_frame
from dashboard.filters import Filters
from fallbackscope.core.periods import date_to_day, day_to_date, parse_week, week_label, week_of, week_start_day

UNKNOWN = "unknown"
#: a range longer than this is bucketed by week in the stacked charts
DAILY_LIMIT_DAYS = 62

#: label → (numerator, denominator) columns of analytics.summary.chain_table, from the metric registry
RATE_METRICS = {REGISTRY[name].label: (REGISTRY[name].numerator, REGISTRY[name].denominator)
                for name in ("refusal_rate", "session_refusal_rate", "fallback_rate", "escalation_rate",
                             "unresolved_rate")}


def day_bounds(filters: Filters) -> tuple[int | None, int | None]:
    """Return the filters' days as day numbers [lo, hi) (hi exclusive), None for an open side."""
    lo = date_to_day(filters.since) if filters.since else None
    hi = date_to_day(filters.until) + 1 if filters.until else None
    return lo, hi


def _cut(df: pd.DataFrame, lo: int | None, hi: int | None, workloads: tuple[str, ...]) -> pd.DataFrame:
    mask = pd.Series(True, index=df.index)
    if lo is not None:
        mask &= df["day"] >= lo
    if hi is not None:
        mask &= df["day"] < hi
    if workloads:
        mask &= df["workload"].isin(list(workloads))
    return df[mask].reset_index(drop=True)


def cut_frames(facts: Facts, filters: Filters) -> dict[str, pd.DataFrame]:
    """Return every frame of `facts` keyed by day and workload (the documented invariant of Facts; all but
    `sessions`) restricted to the filters' days and workloads."""
    lo, hi = day_bounds(filters)
    cut = {}
    for fld in dataclasses.fields(facts):
        value = getattr(facts, fld.name)
        if fld.name != "sessions" and isinstance(value, pd.DataFrame) and {"day", "workload"} <= set(value.columns):
            cut[fld.name] = _cut(value, lo, hi, filters.workloads)
    return cut


def slice_facts(base: Base, filters: Filters, session_key: str | None,
                subset_prefix: Callable[[tuple[str, ...]], SessionPrefix] | None = None,
                cut: dict[str, pd.DataFrame] | None = None) -> Facts:
    """Return the Facts of `base` restricted to the filters' days and workloads, sessions per `session_key`
    (day, week or None for the whole range). Several workloads taken together need `subset_prefix`
    (their sessions counted once, see `DataSource.subset_prefix`); `cut` reuses `cut_frames`."""
    lo, hi = day_bounds(filters)
    cut = cut if cut is not None else cut_frames(base.facts, filters)

    def prefixes(key: tuple[str, ...] | None) -> SessionPrefix:
        if key in base.prefixes:
            return base.prefixes[key]
        if key is not None and len(key) == 1:  # a workload without sessions
            return SessionPrefix.of(pd.DataFrame({"kind": [], "p": [], "day": [], "n": []}), base.day0, base.days)
        if subset_prefix is None:
            raise ValueError("several workloads need subset_prefix")
        return subset_prefix(key)

    sessions = session_frame(prefixes, filters.workloads, base.workloads, lo, hi, session_key)
    return dataclasses.replace(base.facts, period=filters.period(), session_key=session_key, sessions=sessions,
                               **cut)


class View:
    """The numbers of one set of filters (dates resolved), computed on first use and kept."""

    def __init__(self, base: Result[Base], filters: Filters, dims: Dimensions,
                 subset_prefix: Callable[[tuple[str, ...]], SessionPrefix] | None = None) -> None:
        self.base = base
        self.subset_prefix = subset_prefix
        self.filters = filters
        self.dims = dims
        self._memo: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def memo(self, key: Any, make: Callable[[], Any]) -> Any:
        """Return the value kept under `key`, made by `make` on first use (results of these filters)."""
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        value = make()
        with self._lock:
            return self._memo.setdefault(key, value)

    @property
    def stale(self) -> bool:
        """True when the database changed since the base was read (a load is under way)."""
        return self.base.stale

    @property
    def time_key(self) -> str:
        """The bucket of the stacked charts: day for ranges up to DAILY_LIMIT_DAYS days, else week."""
        if self.filters.since and self.filters.until:
            if (self.filters.until - self.filters.since).days + 1 > DAILY_LIMIT_DAYS:
                return "week"
        return "day"

    def facts(self, session_key: str | None = None) -> Facts:
        """Return the sliced Facts with sessions per day, week or the whole range (None)."""
        return self.memo(("facts", session_key), lambda: slice_facts(
            self.base.value, self.filters, session_key, self.subset_prefix,
            self.memo("cut", lambda: cut_frames(self.base.value.facts, self.filters))))

    def chains(self, time_key: str | None = None, by_workload: bool = False) -> pd.DataFrame:
        """Return `analytics.summary.chain_table` per day / week / the range (and workload), keys readable."""
        return self.memo(("chains", time_key, by_workload),
                         lambda: present(chain_table(self.facts(time_key), time_key, by_workload), time_key))

    def rate(self, numerator: str, denominator: str, time_key: str | None = None,
             by_workload: bool = False) -> pd.DataFrame:
        """Return a rate of two chain-table columns per group: keys + value, numerator, denominator,
        ci95_low, ci95_high (what `analytics.refusals.refusal_rate` and its kin return)."""
        table = self.chains(time_key, by_workload)
        keys = [c for c in ("day", "week", "workload") if c in table.columns]
        return rate_frame(table, keys, numerator, denominator)

    def slo(self) -> pd.DataFrame:
        """Return what `analytics.refusals.slo` returns for the range, from the (shared) per-workload chain
        table — workload, sessions, refused_sessions, session_refusal_rate, ci95_low, ci95_high, slo,
        slo_met, burn_rate — and slo_source (`policy` or `default`, docs/metrics.md §6.1)."""
        def make() -> pd.DataFrame:
            policy = self.base.value.facts.policy
            table = refusals.slo_table(self.chains(None, True), policy)
            return table.assign(slo_source=[policy.for_workload(str(w)).slo_source for w in table["workload"]])

        return self.memo("slo", make)


@dataclasses.dataclass(frozen=True)
class SloTargets:
    """The SLO targets of the workloads in view (the session refusal rate's, docs/metrics.md §6.1): each
    distinct target and where the targets came from (`policy`, `default`)."""

    targets: tuple[float, ...]
    sources: tuple[str, ...]

    @property
    def single(self) -> float | None:
        """The one target every workload in view has; None when they differ (or there is none)."""
        return self.targets[0] if len(self.targets) == 1 else None


def slo_targets(slo: pd.DataFrame) -> SloTargets:
    """Return the SloTargets of a `View.slo` table."""
    if slo.empty:
        return SloTargets((), ())
    return SloTargets(tuple(sorted({float(t) for t in slo["slo"]})), tuple(sorted({str(s) for s in slo["slo_source"]})))


def view_for(source: DataSource, filters: Filters) -> View:
    """Return the View of `filters` (missing dates: the default range) over the source's current base.

    Raises `dashboard.data.DataUnavailable` when the database cannot be read and nothing is cached.
    """
    dims = source.dimensions().value
    resolved = filters.with_default_range(dims.first_day, dims.last_day)
    base = source.base(resolved.scope)
    key = ("view", resolved, base.version, base.computed_at, base.stale)
    return source.memo(key, lambda: View(base, resolved, dims,
                                         lambda subset: source.subset_prefix(base.value, subset)))


# ---------------------------------------------------------------------------- overview


def rate_of(row: pd.Series | dict[str, Any], metric: str) -> Rate:
    """Return one of RATE_METRICS of a chain-table row as a Rate."""
    num, den = RATE_METRICS[metric]
    return Rate.of(row[num], row[den])


def headline(view: View) -> dict[str, Any]:
    """Return the range's headline numbers: counts, the rates of RATE_METRICS (Rate objects), cost, cost
    per request, unpriced attempts, unknown_stop_attempts (the refusal rates are then lower bounds), the
    credit summary and the SLO table."""
    total = view.chains(None, False)
    row = total.iloc[0] if len(total) else pd.Series({c: 0 for c in total.columns})
    out: dict[str, Any] = {name: rate_of(row, name) for name in RATE_METRICS}
    chains = int(row.get("chains", 0) or 0)
    cost = clean(row.get("cost_usd"))
    out.update(
        chains=chains, attempts=int(row.get("attempts", 0) or 0), sessions=int(row.get("sessions", 0) or 0),
        cost_usd=cost, cost_per_request=blended_cost_per_request(cost, chains),
        unpriced_attempts=int(row.get("unpriced_attempts", 0) or 0),
        unknown_stop_attempts=int(row.get("unknown_stop_attempts", 0) or 0),
        credits=view.memo("credits", lambda: credits.credit_summary(view.facts(None))),
        slo=view.slo(),
    )
    return out


def weekly(view: View) -> pd.DataFrame:
    """Return per ISO week of the range: the chain table (sessions per week), each rate of RATE_METRICS
    with its interval (`<metric>`, `<metric>_low`, `<metric>_high`), credit savings and the number of
    the week's days inside the range (`days`)."""
    table = view.chains("week", False).copy()
    if table.empty:
        return table
    for metric in RATE_METRICS:
        rates = [rate_of(r, metric) for r in table.to_dict("records")]
        table[metric] = [r.value for r in rates]
        table[f"{metric}_low"] = [r.ci95_low for r in rates]
        table[f"{metric}_high"] = [r.ci95_high for r in rates]
    cube = view.facts("week").credits
    savings = {}
    if not cube.empty:
        by_week = cube.assign(week=[week_label(day_to_date(week_start_day(d))) for d in cube["day"]])
        savings = {w: credits.summarise(g).savings_usd for w, g in by_week.groupby("week")}
    table["savings_usd"] = [savings.get(w, 0.0) for w in table["week"]]
    table["days"] = [_days_in_range(w, view.filters) for w in table["week"]]
    daily = view.chains("day", False)
    with_data = daily.loc[daily["chains"] > 0, "day"]
    per_week = pd.Series([week_label(week_of(d)) for d in with_data], dtype=object).value_counts()
    table["days_with_data"] = [int(per_week.get(w, 0)) for w in table["week"]]
    return table


def _days_in_range(week: str, filters: Filters) -> int:
    monday = parse_week(week)
    days = [monday + dt.timedelta(days=i) for i in range(7)]
    return sum(1 for d in days if (filters.since is None or d >= filters.since)
               and (filters.until is None or d <= filters.until))


def week_coverage(weeks: pd.DataFrame) -> tuple[Coverage, Coverage] | None:
    """Return the Coverage of the range's last two weeks (previous, latest) of a `weekly` frame, None
    without two weeks. A day with data is a day on which a chain of the view starts: the day every number
    of the comparison is counted on (docs/metrics.md §6: a chain belongs to the day of its first attempt)."""
    if len(weeks) < 2:
        return None
    prev, last = weeks.iloc[-2], weeks.iloc[-1]
    return Coverage(int(prev["days_with_data"]), 7), Coverage(int(last["days_with_data"]), 7)


def partial_week_flag(weeks: pd.DataFrame) -> str | None:
    """Return `analytics.coverage.partial_week`'s flag for the range's last two weeks, None when they hold
    as many days of data (or there are not two weeks)."""
    both = week_coverage(weeks)
    return partial_week(both[1], both[0]) if both else None


def week_over_week(weeks: pd.DataFrame) -> pd.DataFrame:
    """Return the change of each headline SLI between the range's last two weeks: metric, previous,
    latest, change (rates in percentage points, money in percent), unit, previous_week, latest_week."""
    columns = ["metric", "previous", "latest", "change", "unit", "previous_week", "latest_week"]
    if len(weeks) < 2:
        return pd.DataFrame(columns=columns)
    prev, last = weeks.iloc[-2], weeks.iloc[-1]
    rows = []
    for metric in ("refusal rate", "session refusal rate", "fallback rate", "escalation rate"):
        a, b = clean(prev[metric]), clean(last[metric])
        rows.append([metric, a, b, None if a is None or b is None else (b - a) * 100, "pp"])
    for metric, col in (("cost", "cost_usd"), ("credit savings", "savings_usd")):
        a, b = clean(prev[col]), clean(last[col])
        rows.append([metric, a, b, None if a is None or b is None or not a else (b - a) / a * 100, "%"])
    out = pd.DataFrame(rows, columns=columns[:5])
    out["previous_week"], out["latest_week"] = prev["week"], last["week"]
    return out


def daily_rates(view: View) -> pd.DataFrame:
    """Return per day: chains, cost_usd and each rate of RATE_METRICS with its interval."""
    table = view.chains("day", False)
    out = table[["day", "chains", "sessions", "cost_usd"]].copy()
    for metric in RATE_METRICS:
        rates = [rate_of(r, metric) for r in table.to_dict("records")]
        out[metric] = [r.value for r in rates]
        out[f"{metric}_low"] = [r.ci95_low for r in rates]
        out[f"{metric}_high"] = [r.ci95_high for r in rates]
    return out


# ---------------------------------------------------------------------------- refusals


def refusal_series(view: View, time_key: str) -> pd.DataFrame:
    """Return the chain refusal rate per day or week: bucket, value, numerator, denominator, ci95_low,
    ci95_high (`bucket` is the date, or the ISO week's name)."""
    out = view.rate("refused_chains", "chains", time_key)
    return out.rename(columns={time_key: "bucket"})


def drift_table(view: View) -> pd.DataFrame:
    """Return per week of the range (from the second): the refusal rate, the previous week's, and the
    drift (delta, z, p_value, significant at p < 0.01) of docs/metrics.md §6.1."""
    weeks = view.rate("refused_chains", "chains", "week")
    rows = []
    for prev, cur in zip(weeks.to_dict("records"), weeks.to_dict("records")[1:], strict=False):
        a, b = Rate.of(prev["numerator"], prev["denominator"]), Rate.of(cur["numerator"], cur["denominator"])
        d = refusals.drift(b, a)
        rows.append({"week": cur["week"], "refusal_rate": b.value, "previous": a.value,
                     "delta": d.delta if d else None, "z": d.z if d else None,
                     "p_value": d.p_value if d else None, "significant": bool(d and d.significant)})
    return pd.DataFrame(rows, columns=["week", "refusal_rate", "previous", "delta", "z", "p_value", "significant"])


def workload_drift(view: View) -> pd.DataFrame:
    """Return per workload the drift of its chain refusal rate between the range's last two weeks:
    workload, week, refusal_rate, previous, delta, p_value, significant."""
    columns = ["workload", "week", "refusal_rate", "previous", "delta", "p_value", "significant"]
    weeks = view.rate("refused_chains", "chains", "week", by_workload=True)
    rows = []
    for workload, group in weeks.groupby("workload"):
        group = group.sort_values("week")
        if len(group) < 2:
            continue
        prev, cur = group.iloc[-2], group.iloc[-1]
        a, b = Rate.of(prev["numerator"], prev["denominator"]), Rate.of(cur["numerator"], cur["denominator"])
        d = refusals.drift(b, a)
        rows.append([workload, cur["week"], b.value, a.value, d.delta if d else None, d.p_value if d else None,
                     bool(d and d.significant)])
    return pd.DataFrame(rows, columns=columns)


def attempt_cube(facts: Facts) -> pd.DataFrame:
    """Return the attempt cube (first and later attempts): day, workload, model, outcome,
    refusal_category, error_class, n, cost, priced."""
    cols = ["day", "workload", "model", "outcome", "refusal_category", "error_class", "n", "cost", "priced"]
    return pd.concat([facts.firsts[cols], facts.laters[cols]], ignore_index=True)


def bucket_label(days: pd.Series, time_key: str) -> list[Any]:
    """Return the readable bucket (a date, or an ISO week name) of each day number."""
    if time_key == "week":
        return [week_label(day_to_date(week_start_day(int(d)))) for d in days]
    return [day_to_date(int(d)) for d in days]


def attempts_by(facts: Facts, dimension: str, time_key: str, *, where: pd.Series | None = None,
                value: str = "n", missing: str = UNKNOWN) -> pd.DataFrame:
    """Return the attempt cube summed per bucket and `dimension` (e.g. refusal_category, error_class,
    model): columns bucket, <dimension>, <value>. Rows can be narrowed with a boolean `where`."""
    cube = attempt_cube(facts)
    if where is not None:
        cube = cube[where(cube) if callable(where) else where]
    if cube.empty:
        return pd.DataFrame({"bucket": pd.Series(dtype=object), dimension: pd.Series(dtype=object),
                             value: pd.Series(dtype=float)})
    labels = cube[dimension].astype(object).where(cube[dimension].notna(), missing)
    cube = cube.assign(bucket=bucket_label(cube["day"], time_key), **{dimension: labels})
    out = cube.groupby(["bucket", dimension], dropna=False)[value].sum(min_count=1).reset_index()
    return out.sort_values(["bucket", dimension]).reset_index(drop=True)


def refusals_by_category(facts: Facts, time_key: str) -> pd.DataFrame:
    """Return refused attempts per bucket and category (null shown as `unspecified`)."""
    out = attempts_by(facts, "refusal_category", time_key, where=lambda c: c["outcome"] == "refusal",
                      missing="unspecified")
    return out.rename(columns={"refusal_category": "category", "n": "refused_attempts"})


def workload_refusals(view: View) -> pd.DataFrame:
    """Return per workload: chain refusal rate and session refusal rate (value and interval), the SLO
    target, whether it is met and the burn rate."""
    chains = view.rate("refused_chains", "chains", None, by_workload=True)
    slo = view.slo()
    out = chains.rename(columns={"value": "refusal_rate", "ci95_low": "refusal_low", "ci95_high": "refusal_high",
                                 "numerator": "refused_chains", "denominator": "chains"})
    return out.merge(slo, on="workload", how="left")


# ---------------------------------------------------------------------------- chains and tiers


def sankey_flows(facts: Facts) -> pd.DataFrame:
    """Return chains per workload, first model and resolver model (`unresolved` when no attempt
    succeeded): columns workload, first_model, resolver, chains."""
    f, m = facts.firsts, facts.multi
    first_model = f["model"].astype(object).where(f["model"].notna(), UNKNOWN)
    resolver = first_model.where(f["success"].astype(bool), tiers.UNRESOLVED)
    parts = [pd.DataFrame({"workload": f["workload"], "first_model": first_model, "resolver": resolver,
                           "chains": f["n"]})]
    late = m[~m["first_success"].astype(bool)]
    if not late.empty:
        lf = late["first_model"].astype(object).where(late["first_model"].notna(), UNKNOWN)
        lr = late["resolver_model"].astype(object).where(late["resolved"].astype(bool), tiers.UNRESOLVED)
        lr = lr.where(lr.notna(), UNKNOWN)
        # these chains were counted above as unresolved at their first model; move them to their resolver
        parts.append(pd.DataFrame({"workload": late["workload"], "first_model": lf,
                                   "resolver": tiers.UNRESOLVED, "chains": -late["n"]}))
        parts.append(pd.DataFrame({"workload": late["workload"], "first_model": lf, "resolver": lr,
                                   "chains": late["n"]}))
    flows = pd.concat(parts, ignore_index=True)
    out = flows.groupby(["workload", "first_model", "resolver"])["chains"].sum().reset_index()
    out = out[out["chains"] > 0]
    out["chains"] = out["chains"].astype("int64")
    return out.sort_values(["workload", "chains"], ascending=[True, False]).reset_index(drop=True)


def chain_rates(view: View) -> pd.DataFrame:
    """Return per workload: chains, and fallback, escalation, retry and unresolved rates (plain values)."""
    table = view.chains(None, True)
    out = table[["workload", "chains"]].copy()
    for name, num in (("fallback", "fallback_chains"), ("escalation", "escalated_chains"),
                      ("retry", "retried_chains"), ("unresolved", "unresolved_chains")):
        out[f"{name}_rate"] = [Rate.of(n, d).value for n, d in zip(table[num], table["chains"], strict=True)]
    return out


# ---------------------------------------------------------------------------- cost and credits


def cost_by(facts: Facts, dimension: str, time_key: str) -> pd.DataFrame:
    """Return cost_usd per bucket and workload or model (chain day; attempts of every tier)."""
    out = attempts_by(facts, dimension, time_key, value="cost")
    return out.rename(columns={"cost": "cost_usd"})


def cost_table(view: View) -> pd.DataFrame:
    """Return `analytics.costs.costs` per workload plus the counterfactual per request and the overhead's
    share of the cost."""
    out = costs.costs(view.facts(None), "workload")
    out["counterfactual_per_request"] = [
        None if cf is None or pd.isna(cf) or not n else cf / n
        for cf, n in zip(out["top_tier_counterfactual_usd"], out["chains"], strict=True)]
    out["overhead_share"] = [
        None if c is None or pd.isna(c) or not c or pd.isna(o) else o / c
        for o, c in zip(out["escalation_overhead_usd"], out["cost_usd"], strict=True)]
    return out


def credit_counts(summary: credits.CreditSummary) -> pd.DataFrame:
    """Return the credit outcomes as rows: outcome, credits (minted first, then each outcome)."""
    rows = [("minted", summary.credits_minted), ("unredeemable (batch)", summary.credits_unredeemable),
            ("redeemed", summary.redeemed), ("rejected", summary.rejected), ("unconfirmed", summary.unconfirmed),
            ("forfeited", summary.forfeited), ("expired", summary.expired)]
    return pd.DataFrame(rows, columns=["outcome", "credits"])


def credits_by_bucket(facts: Facts, time_key: str) -> pd.DataFrame:
    """Return minted credits per bucket and outcome (`unredeemable` for batch-minted ones)."""
    cube = facts.credits
    if cube.empty:
        return pd.DataFrame({"bucket": pd.Series(dtype=object), "outcome": pd.Series(dtype=object),
                             "credits": pd.Series(dtype="int64")})
    outcome = cube["outcome"].astype(object).where(cube["outcome"].notna(), "unredeemable")
    df = cube.assign(bucket=bucket_label(cube["day"], time_key), outcome=outcome)
    out = df.groupby(["bucket", "outcome"])["n"].sum().reset_index(name="credits")
    return out.sort_values(["bucket", "outcome"]).reset_index(drop=True)


def rejection_reasons(facts: Facts) -> pd.DataFrame:
    """Return rejected credits per `not_applied` reason."""
    cube = facts.credits[facts.credits["outcome"] == "rejected"]
    if cube.empty:
        return pd.DataFrame({"reason": pd.Series(dtype=object), "credits": pd.Series(dtype="int64")})
    reason = cube["reason"].astype(object).where(cube["reason"].notna(), UNKNOWN)
    out = cube.assign(reason=reason).groupby("reason")["n"].sum().reset_index(name="credits")
    return out.sort_values("credits", ascending=False).reset_index(drop=True)


# ---------------------------------------------------------------------------- reliability and policy


def errors_by_class(facts: Facts, time_key: str) -> pd.DataFrame:
    """Return attempts with an error class per bucket and class."""
    out = attempts_by(facts, "error_class", time_key, where=lambda c: c["error_class"].notna())
    return out.rename(columns={"n": "attempts"})


def violations(facts: Facts) -> pd.DataFrame:
    """Return policy violations per kind and workload (`analytics.violations.violations`)."""
    return reliability.violations(facts)


def violations_by_bucket(facts: Facts, time_key: str) -> pd.DataFrame:
    """Return policy violations per bucket and kind."""
    rows = reliability.violations(facts, by_day=True) if not facts.firsts.empty else pd.DataFrame()
    if rows.empty:
        return pd.DataFrame({"bucket": pd.Series(dtype=object), "kind": pd.Series(dtype=object),
                             "count": pd.Series(dtype="int64")})
    rows = rows.assign(bucket=bucket_label(rows["day"], time_key))
    return rows.groupby(["bucket", "kind"])["count"].sum().reset_index()


# ---------------------------------------------------------------------------- the load ledger

#: loads less than this apart belong to the same run of `ingest`
RUN_GAP = pd.Timedelta(minutes=30)


def load_runs(ledger: Ledger) -> pd.DataFrame:
    """Return the loads with a `run` number: consecutive loads less than RUN_GAP apart form one run."""
    loads = ledger.loads.copy()
    if loads.empty:
        loads["run"] = pd.Series(dtype="int64")
        return loads
    started = pd.to_datetime(loads["started_at"], utc=True)
    ended = pd.to_datetime(loads["finished_at"], utc=True).fillna(started)
    gap = started - ended.cummax().shift(1)
    loads["run"] = (gap.isna() | (gap > RUN_GAP)).cumsum().astype("int64")
    return loads


def latest_run(ledger: Ledger) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the files of the latest run (newest first) and its rejects per reason."""
    loads = load_runs(ledger)
    if loads.empty:
        return loads, pd.DataFrame({"reason": pd.Series(dtype=object), "rejects": pd.Series(dtype="int64")})
    run = loads[loads["run"] == loads["run"].max()]
    rejects = ledger.rejects[ledger.rejects["load_id"].isin(run["load_id"])]
    reasons = rejects.groupby("reason")["rejects"].sum().reset_index() if not rejects.empty else \
        pd.DataFrame({"reason": pd.Series(dtype=object), "rejects": pd.Series(dtype="int64")})
    return (run.sort_values(["started_at", "load_id"], ascending=False).reset_index(drop=True),
            reasons.sort_values("rejects", ascending=False).reset_index(drop=True))


def loads_by_day(ledger: Ledger) -> pd.DataFrame:
    """Return per UTC day of loading: records loaded (new), duplicates and rejected, and files."""
    loads = ledger.loads
    if loads.empty:
        return pd.DataFrame(columns=["day", "loaded", "duplicates", "rejected", "files"])
    day = pd.to_datetime(loads["started_at"], utc=True).dt.date
    df = loads.assign(day=day, loaded=loads["records"] - loads["duplicates"] - loads["rejected"])
    out = df.groupby("day").agg(loaded=("loaded", "sum"), duplicates=("duplicates", "sum"),
                                rejected=("rejected", "sum"), files=("load_id", "count")).reset_index()
    return out


def rejects_by_reason(ledger: Ledger) -> pd.DataFrame:
    """Return all rejects per reason, most frequent first."""
    r = ledger.rejects
    if r.empty:
        return pd.DataFrame({"reason": pd.Series(dtype=object), "rejects": pd.Series(dtype="int64")})
    out = r.groupby("reason")["rejects"].sum().reset_index()
    return out.sort_values("rejects", ascending=False).reset_index(drop=True)
