"""The Python API for notebooks: open a fallbackscope database read-only and ask it for metrics.

```python
import fallbackscope.api as fs            # or `fallbackscope.open(...)`

db = fs.open("fallbackscope.duckdb")
db.refusal_rate(by="week")                # DataFrame: week, value, numerator, denominator, ci95_low, ci95_high
db.refusal_rate(by="week,workload", since="2026-10-01")
db.costs(by="workload")                   # cost, blended cost per request, overhead, top-tier counterfactual
db.start_tier_advice()                    # start_higher / keep / insufficient_data per adjacent tier pair
db.credits()                              # CreditSummary (redeemed, rejected, …, savings_usd)
db.weekly_report("2026-W45")              # the JSON report of docs/metrics.md §7.1, as a dict
db.metrics(by="model")                    # what `fallbackscope metrics --by model` prints
```

`since` / `until` take dates, datetimes (naive = UTC), ISO strings or ISO weeks (`2026-W45`); a chain
belongs to the day and week of its first attempt. Every method returns a DataFrame or a frozen
dataclass; rates carry their numerator, denominator and Wilson 95% interval. Results of one period are
computed once and reused by the other methods.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from analytics import costs, credits, refusals, reliability, rollup, tiers
from analytics.collect import collect
from analytics.facts import Facts
from analytics.refusals import Drift
from analytics.summary import parse_by
from fallbackscope.core.config import resolve_db_path
from fallbackscope.core.periods import Period
from fallbackscope.core.policy import Policy, resolve_policy
from fallbackscope.core.store import connect
from fallbackscope.render import report

When = str | dt.date | dt.datetime | None
By = str | Sequence[str] | None


class Database:
    """A fallbackscope database opened read-only, with one method per metric of docs/metrics.md §6."""

    def __init__(self, path: str | Path | None = None, *, policy: Policy | str | Path | None = None) -> None:
        self.path = resolve_db_path(path)
        self.con: duckdb.DuckDBPyConnection = connect(self.path, read_only=True)
        self._policy_arg = policy
        self._policy: Policy | None = None
        self._facts: dict[tuple[Period, str | None, bool], Facts] = {}

    # ------------------------------------------------------------ plumbing

    def __repr__(self) -> str:
        return f"<fallbackscope.Database {str(self.path)!r}>"

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    @property
    def policy(self) -> Policy:
        """The policy in force: the one given to `open`, else the one stored by `ingest --policy`."""
        if self._policy is None:
            self._policy = resolve_policy(self.con, self._policy_arg)
        return self._policy

    def facts(self, since: When = None, until: When = None, sessions_by: str | None = None,
              detail: bool = False) -> Facts:
        """Return (and cache) the Facts of a period, sessions counted per `sessions_by` (day, week or None);
        `detail` keeps one row per credit."""
        period = Period.of(since, until)
        key = (period, sessions_by, detail)
        if key not in self._facts:
            self._facts[key] = collect(self.con, period, self.policy, session_key=sessions_by,  # type: ignore[arg-type]
                                       detail=detail)
        return self._facts[key]

    def _for(self, by: By, since: When, until: When) -> Facts:
        time_key, _ = parse_by(by)
        return self.facts(since, until, time_key)

    def sql(self, query: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Run a read-only SQL query on the database (tables `attempts`, `loads`, …) and return a DataFrame."""
        return self.con.execute(query, list(params)).df()

    # ------------------------------------------------------------ refusals (§6.1)

    def refusal_rate(self, by: By = "week", since: When = None, until: When = None) -> pd.DataFrame:
        """Return chains with a refused attempt / chains per `by` group (day, week, workload, "week,workload"
        or None): keys + value, numerator, denominator, ci95_low, ci95_high."""
        return refusals.refusal_rate(self._for(by, since, until), by)

    def session_refusal_rate(self, by: By = "week", since: When = None, until: When = None) -> pd.DataFrame:
        """Return sessions with a refused chain / sessions per `by` group, with the Wilson interval."""
        return refusals.session_refusal_rate(self._for(by, since, until), by)

    def attempt_refusal_rate(self, since: When = None, until: When = None) -> pd.DataFrame:
        """Return per model: refused attempts / attempts with outcome ok or refusal, with the interval."""
        return refusals.attempt_refusal_rate(self.facts(since, until))

    def refusals_by_category(self, since: When = None, until: When = None) -> pd.DataFrame:
        """Return refused attempts per refusal category and their share of all refused attempts."""
        return refusals.refusals_by_category(self.facts(since, until))

    def drift(self, week: str | dt.date | None = None) -> Drift | None:
        """Return the refusal-rate drift of an ISO week against the week before (default: the report's
        week); None when either week has no chains."""
        monday = self._monday(week)
        current = refusals.period_refusal_rate(self.con, Period.week(monday))
        previous = refusals.period_refusal_rate(self.con, Period.week(monday - dt.timedelta(days=7)))
        return refusals.drift(current, previous)

    def slo(self, since: When = None, until: When = None) -> pd.DataFrame:
        """Return per workload: session refusal rate, its SLO target, whether it is met and the burn rate."""
        return refusals.slo(self.facts(since, until))

    # ------------------------------------------------------------ fallback, tiers, escalation (§6.2)

    def fallback_rate(self, by: By = "week", since: When = None, until: When = None) -> pd.DataFrame:
        """Return chains counted as fallback / chains per `by` group, with the interval."""
        return tiers.fallback_rate(self._for(by, since, until), by)

    def unresolved_rate(self, by: By = "week", since: When = None, until: When = None) -> pd.DataFrame:
        """Return chains without a successful attempt / chains per `by` group, with the interval."""
        return tiers.unresolved_rate(self._for(by, since, until), by)

    def escalation_rate(self, by: By = "week", since: When = None, until: When = None) -> pd.DataFrame:
        """Return chains that moved to another model / chains per `by` group, with the interval."""
        return tiers.escalation_rate(self._for(by, since, until), by)

    def retry_rate(self, by: By = "week", since: When = None, until: When = None) -> pd.DataFrame:
        """Return chains with a same-model retry / chains per `by` group, with the interval."""
        return tiers.retry_rate(self._for(by, since, until), by)

    def escalation_by_trigger(self, by_workload: bool = False, since: When = None,
                              until: When = None) -> pd.DataFrame:
        """Return escalated chains by the trigger of their first change of model (rates over all chains)."""
        return tiers.escalation_by_trigger(self.facts(since, until), by_workload)

    def resolution(self, by_workload: bool = True, since: When = None, until: When = None) -> pd.DataFrame:
        """Return the share of chains resolved by each model, in tier order, plus `unresolved`."""
        return tiers.resolution(self.facts(since, until), by_workload)

    def fallbacks_by_trigger(self, by_workload: bool = False, since: When = None,
                             until: When = None) -> pd.DataFrame:
        """Return attempts that moved to another model than the attempt before, counted by trigger."""
        return tiers.fallbacks_by_trigger(self.facts(since, until), by_workload)

    # ------------------------------------------------------------ cost (§6.3)

    def costs(self, by: By = "workload", since: When = None, until: When = None) -> pd.DataFrame:
        """Return spend per `by` group: cost, unpriced attempts, blended cost per request, escalation
        overhead and the top-tier counterfactual."""
        return costs.costs(self._for(by, since, until), by)

    def start_tier_advice(self, since: When = None, until: When = None) -> pd.DataFrame:
        """Return start-tier advice for each adjacent pair of each declared chain."""
        return costs.start_tier_advice(self.facts(since, until))

    # ------------------------------------------------------------ cache credits (§6.5)

    def credits(self, since: When = None, until: When = None) -> credits.CreditSummary:
        """Return the cache-credit outcome counts, redemption rate, credited tokens and savings."""
        return credits.credit_summary(self.facts(since, until))

    def credit_outcomes(self, since: When = None, until: When = None) -> pd.DataFrame:
        """Return one row per minted credit with its outcome, presentations and (missed) savings."""
        return credits.credit_outcomes(self.facts(since, until, detail=True))

    def credit_ladder(self, since: When = None, until: When = None) -> pd.DataFrame:
        """Return how many attempts presented each redeemed or rejected credit, as counts."""
        return credits.credit_ladder(self.facts(since, until))

    # ------------------------------------------------------------ reliability and policy (§6.4, §5)

    def errors(self, by_workload: bool = False, since: When = None, until: When = None) -> pd.DataFrame:
        """Return attempts per error class and their share of all attempts."""
        return reliability.errors(self.facts(since, until), by_workload)

    def outcomes(self, since: When = None, until: When = None) -> pd.DataFrame:
        """Return attempts per outcome and their share of all attempts."""
        return reliability.outcomes(self.facts(since, until))

    def violations(self, since: When = None, until: When = None) -> pd.DataFrame:
        """Return policy violations per kind and workload."""
        return reliability.violations(self.facts(since, until))

    # ------------------------------------------------------------ everything at once

    def metrics(self, by: str = "week", since: When = None, until: When = None) -> pd.DataFrame:
        """Return what `fallbackscope metrics --by BY` shows, as a DataFrame (rates flat with `_ci95_*`)."""
        return rollup.compute_metrics(self.con, since=since, until=until, by=by, policy=self.policy)

    def weekly_report(self, week: str | dt.date | None = None) -> dict[str, Any]:
        """Return the weekly report of docs/metrics.md §7.1 (default: the last complete week) as a dict."""
        return report.weekly_report(self.con, self._monday(week), self.policy)

    def _monday(self, week: str | dt.date | None) -> dt.date:
        return report.report_monday(self.con, week)


def open(db_path: str | Path | None = None, *, policy: Policy | str | Path | None = None) -> Database:  # noqa: A001
    """Open a fallbackscope database read-only (default `$FALLBACKSCOPE_DB`, else
    `./fallbackscope.duckdb`) and return a Database; `policy` (a Policy or a TOML path) replaces the
    stored policy for this session."""
    return Database(db_path, policy=policy)
