"""Hand-made traffic for the burn-rate alerts (docs/metrics.md §9), one session of one chain per entry, and the
arithmetic each scenario is built to give. Shared by tests/analytics/test_alerts.py and tests/test_alert_cli.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from analytics_db import AttemptDB, at

WORKLOAD = "chat"
POLICY = f"""
[workloads.{WORKLOAD}]
refusal_slo = 0.05
"""
#: the spike's evaluation time, and the latest attempt of the spike database
SPIKE_AT = at("2026-03-02 12:00")
#: the slow burn's evaluation time
SLOW_AT = at("2026-03-09 12:00")

M = dt.timedelta(minutes=1)


def add_sessions(adb: AttemptDB, times: Iterable[dt.datetime], refusals: Iterable[str | None], *, tag: str,
                 workload: str = WORKLOAD) -> int:
    """Add one single-chain session per time: refused with the refusal category given for it, or answered where
    it is None. Returns how many."""
    n = 0
    adb.writer.execute("BEGIN TRANSACTION")  # one commit, not one per row
    for n, (when, category) in enumerate(zip(times, refusals, strict=True), start=1):
        if category is None:
            adb.add(f"{tag}-{n}", 1, when, outcome="ok", workload=workload, session_id=f"{tag}-s{n}")
        else:
            adb.add(f"{tag}-{n}", 1, when, outcome="refusal", workload=workload, session_id=f"{tag}-s{n}",
                    refusal_category=category)
    adb.writer.execute("COMMIT")
    return n


def build_spike(adb: AttemptDB) -> None:
    """A spike in the last hour before SPIKE_AT over a healthy past.

    - 1,200 answered sessions: 400 at 40 s steps from SPIKE_AT − 61 min back (all inside (−6h, −1h]) and 800
      at 3-minute steps from −7 h back (inside (−3d, −6h]);
    - 30 sessions a minute apart from −55 min to −26 min: the first two answered, then 20 refused `cyber`,
      then 8 refused `bio`;
    - 10 sessions 30 s apart from −4 min 30 s to SPIKE_AT itself, all refused `cyber`.

    Windows (start excluded, end included): 5m 10 of 10 refused; 30m 14 of 14 (−29 … −26 min and the 10);
    1h 38 of 40; 6h 38 of 440; 3d and 28d 38 of 1,240. Refused attempts of the 1h window: 30 cyber, 8 bio.
    """
    healthy = [SPIKE_AT - 61 * M - i * dt.timedelta(seconds=40) for i in range(400)]
    healthy += [SPIKE_AT - 7 * 60 * M - i * 3 * M for i in range(800)]
    add_sessions(adb, healthy, [None] * len(healthy), tag="ok")
    add_sessions(adb, [SPIKE_AT - 55 * M + j * M for j in range(30)], [None] * 2 + ["cyber"] * 20 + ["bio"] * 8,
                 tag="spike")
    add_sessions(adb, [SPIKE_AT - dt.timedelta(seconds=270) + k * dt.timedelta(seconds=30) for k in range(10)],
                 ["cyber"] * 10, tag="burst")


def build_slow_burn(adb: AttemptDB) -> None:
    """A steady 10% of refused sessions for three days: session i (i = 0 … 287) at SLOW_AT − i × 15 min,
    refused when i is a multiple of 10 (i = 0, 10, …, 280: 29 of them).

    Windows: 3d 29 of 288 (i × 15 min < 72 h ⇔ i < 288); 6h 3 of 24 (i < 24: i = 0, 10, 20); 1h 1 of 4
    (i < 4); 30m 1 of 2; 5m 1 of 1 (i = 0, at SLOW_AT itself); 28d 29 of 288.
    """
    times = [SLOW_AT - i * 15 * M for i in range(288)]
    add_sessions(adb, times, ["cyber" if i % 10 == 0 else None for i in range(288)], tag="slow")


def build_tiny(adb: AttemptDB) -> None:
    """Four sessions in the last four minutes up to SPIKE_AT, three of them refused."""
    times = [SPIKE_AT - 3 * M + i * M for i in range(4)]
    add_sessions(adb, times, ["cyber", "cyber", "cyber", None], tag="tiny")
