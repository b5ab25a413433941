"""The dashboard's parts of issues 17 and 18, through Dash's test client on hand-made databases: burn rates per
alert window and the error budget left (overview, refusals), the alert history (reliability), billing coverage
by day and the gap by model (costs) — each with its arithmetic here, and each empty state."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from analytics_db import AttemptDB
from dashboard_support import find_ids, page_outputs, texts

from dashboard.app import create_app
from dashboard.filters import Filters
from fallbackscope.core.store import connect

SONNET = "claude-sonnet-4-5"
AT = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)  # the latest attempt: every window ends here
DAYS = Filters.from_query("?from=2026-02-01&to=2026-03-02").to_store()
WATCHED_POLICY = """
[workloads.support-chat]
refusal_slo = 0.1
"""
#: the windows of the default rules (1h/5m, 6h/30m, 3d/6h) and 24h, shortest first
WINDOWS = ["5m", "30m", "1h", "6h", "24h", "3d"]


def _session(db: AttemptDB, name: str, when: dt.datetime, outcome: str, workload: str = "support-chat") -> None:
    db.chain(f"chain-{name}", when, (SONNET, outcome), session_id=name, workload=workload)


def build(path: Path, policy: str | None = WATCHED_POLICY, sql: tuple[str, ...] = ()) -> Path:
    """support-chat (target 10%, policy): 4 sessions in the last 5 minutes, 2 refused; 4 ok two hours before;
    2 ok ten days before. code-assist (no target: not watched): 3 ok sessions. Then `sql`."""
    db = AttemptDB(path)
    minutes = dt.timedelta(minutes=1)
    for i, outcome in enumerate(["refusal", "refusal", "ok", "ok"]):
        _session(db, f"now-{i}", AT - 3 * minutes + i * minutes, outcome)  # the last one at AT exactly
    for i in range(4):
        _session(db, f"earlier-{i}", AT - dt.timedelta(hours=2, minutes=i), "ok")
    for i in range(2):
        _session(db, f"old-{i}", AT - dt.timedelta(days=10, minutes=i), "ok")
    for i in range(3):
        _session(db, f"code-{i}", AT - dt.timedelta(hours=1, minutes=i), "ok", workload="code-assist")
    if policy is not None:
        db.set_policy(policy)
    for statement in sql:
        db.writer.execute(statement)
    db.close()
    return path


def outputs(db: Path, page: str, filters: dict[str, Any] = DAYS) -> dict[str, Any]:
    return page_outputs(create_app(db).server.test_client(), page, filters)


def table_rows(component: Any) -> list[list[str]]:
    """Return the cell texts of every row (header included) of the html tables inside a serialised tree."""
    rows: list[list[str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            if node.get("type") == "Tr":
                cells = node["props"]["children"]
                rows.append([" ".join(texts(c)) for c in (cells if isinstance(cells, list) else [cells])])
                return
            walk(node.get("props", {}).get("children"))

    walk(component)
    return rows


# ---------------------------------------------------------------------------- burn rates


@pytest.mark.parametrize("page", ["overview", "refusals"])
def test_each_watched_workload_shows_its_burn_per_window_and_budget_left(tmp_path, page):
    out = outputs(build(tmp_path / "burn.duckdb"), page)
    header, *rows = table_rows(out[f"{page}-burn"]["children"])
    assert header == ["Workload", "Target", *WINDOWS, "Refused sessions (28d)", "Budget left (28d)"]
    # 5m, 30m, 1h: 2 refused of 4 sessions = 50% ÷ 10% = 5.0×; 6h, 24h, 3d: 2 of 8 = 25% → 2.5×;
    # 28d: 2 of 10 = 20% → burn 2.0, budget left 1 − 2.0 = −100%. code-assist has no target: not watched.
    assert rows == [["support-chat", "10.0% (policy)", "5.0×", "5.0×", "5.0×", "2.5×", "2.5×", "2.5×", "2 of 10",
                     "-100.0%"]]
    note = " ".join(texts(out[f"{page}-burn"]["children"]))
    assert "latest attempt (2026-03-02 12:00 UTC)" in note


def test_the_burn_rates_are_the_alert_windows_whatever_the_date_range(tmp_path):
    early = Filters.from_query("?from=2026-02-01&to=2026-02-10").to_store()
    rows = table_rows(outputs(build(tmp_path / "burn.duckdb"), "overview", early)["overview-burn"]["children"])
    assert rows[1][:3] == ["support-chat", "10.0% (policy)", "5.0×"]


def test_a_window_without_sessions_shows_no_burn(tmp_path):
    # the 4 sessions of the last minutes gone: 5m, 30m and 1h hold nothing; the latest attempt moves to 10:00
    db = build(tmp_path / "quiet.duckdb", sql=("DELETE FROM attempts WHERE session_id LIKE 'now-%'",))
    header, row = table_rows(outputs(db, "refusals")["refusals-burn"]["children"])
    burns = dict(zip(header, row, strict=True))
    assert [burns[w] for w in WINDOWS] == ["–", "–", "–", "0.0×", "0.0×", "0.0×"]
    assert burns["Budget left (28d)"] == "100.0%"


def test_without_a_policy_target_one_line_says_nothing_is_watched(tmp_path):
    db = build(tmp_path / "none.duckdb", policy=None)
    for page in ("overview", "refusals"):
        panel = outputs(db, page)[f"{page}-burn"]["children"]
        assert texts(panel) == ["no workload has a refusal_slo: nothing to watch"]
        assert table_rows(panel) == []


def test_the_workload_filter_chooses_the_rows(tmp_path):
    db = build(tmp_path / "burn.duckdb")
    other = Filters.from_query("?from=2026-02-01&to=2026-03-02&workload=code-assist").to_store()
    panel = outputs(db, "overview", other)["overview-burn"]["children"]
    assert table_rows(panel) == [] and "None of the chosen workloads is watched" in texts(panel)


# ---------------------------------------------------------------------------- alert history

ALERT_ROWS = (
    "INSERT INTO alerts VALUES ('support-chat', 'page', '1h/5m ×14.4', TIMESTAMPTZ '2026-03-01 09:00:00+00', "
    "TIMESTAMPTZ '2026-03-01 10:30:00+00', TIMESTAMPTZ '2026-03-01 10:30:00+00', 0.1, 15.0, 20.0)",
    "INSERT INTO alerts VALUES ('support-chat', 'ticket', '3d/6h ×1', TIMESTAMPTZ '2026-03-02 11:00:00+00', "
    "TIMESTAMPTZ '2026-03-02 11:00:05+00', NULL, 0.1, 2.5, 2.5)",
)


def test_the_reliability_page_lists_the_alerts_sent_latest_first(tmp_path):
    out = outputs(build(tmp_path / "alerts.duckdb", sql=ALERT_ROWS), "reliability")
    assert table_rows(out["reliability-alerts"]["children"]) == [
        ["Workload", "Severity", "Rule", "First fired", "Last notified", "Resolved"],
        ["support-chat", "ticket", "3d/6h ×1", "2026-03-02 11:00 UTC", "2026-03-02 11:00 UTC", "firing"],
        ["support-chat", "page", "1h/5m ×14.4", "2026-03-01 09:00 UTC", "2026-03-01 10:30 UTC",
         "2026-03-01 10:30 UTC"],
    ]


def test_no_alert_ever_sent_says_so(tmp_path):
    panel = outputs(build(tmp_path / "quiet.duckdb"), "reliability")["reliability-alerts"]["children"]
    assert "No alert was ever sent" in " ".join(texts(panel))
    assert table_rows(panel) == []


# ---------------------------------------------------------------------------- billing reconciliation

FETCHED = "TIMESTAMPTZ '2026-03-02 13:00:00+00'"
#: 2026-02-27, sonnet: output billed $10 of which the logs saw 80% (computed $8), input $2 fully seen — the day's
#: coverage is (10 × 0.8 + 2 × 1) ÷ 12 = 83.3% (not the mean of 80% and 100%); 2026-02-28, opus: $30 all seen.
#: 2026-01-15 lies outside the range.
BILL_ROWS = (
    f"INSERT INTO reconciliation VALUES (DATE '2026-02-27', '{SONNET}', 'output', 100, 80, 10.0, 8.0, {FETCHED}, NULL)",
    f"INSERT INTO reconciliation VALUES (DATE '2026-02-27', '{SONNET}', 'uncached_input', 1000, 1000, 2.0, 2.0, "
    f"{FETCHED}, NULL)",
    f"INSERT INTO reconciliation VALUES (DATE '2026-02-28', 'claude-opus-4-5', 'output', 100, 100, 30.0, 30.0, "
    f"{FETCHED}, NULL)",
    f"INSERT INTO reconciliation VALUES (DATE '2026-01-15', '{SONNET}', 'output', 100, 10, 99.0, 9.9, {FETCHED}, NULL)",
)


def test_the_costs_page_shows_billing_coverage_by_day(tmp_path):
    out = outputs(build(tmp_path / "bill.duckdb", sql=BILL_ROWS), "costs")
    figure = out["costs-coverage"]["figure"]
    (bars,) = [t for t in figure["data"] if t["type"] == "bar"]
    assert bars["x"] == ["2026-02-27", "2026-02-28"]
    assert bars["y"] == pytest.approx([10 / 12, 1.0])
    assert bars["customdata"] == pytest.approx([12.0, 30.0])


def test_the_range_coverage_weighs_rows_by_billed_usd(tmp_path):
    out = outputs(build(tmp_path / "bill.duckdb", sql=BILL_ROWS), "costs")
    summary = texts(find_ids(out["costs-billing"]["children"])["billing-summary"])[0]
    # (8 + 2 + 30) ÷ (10 + 2 + 30) = 95.2%; the mean of the days' coverages would be 91.7%
    assert "2 days reconciled · coverage 95.2%" in summary
    assert "billed $42.00 · computed $40.00 · explained by coverage $2.00" in summary


def test_the_costs_page_shows_the_gap_by_model(tmp_path):
    out = outputs(build(tmp_path / "bill.duckdb", sql=BILL_ROWS), "costs")
    header, *rows = table_rows(out["costs-billing"]["children"])
    assert header == ["Model", "Billed", "Computed", "Coverage", "Explained by coverage", "Price gap", "Carried by",
                      "Unbilled tokens"]
    # opus: all seen, priced as billed; sonnet: $10 × (1 − 0.8) = $2 explained, $10 × 0.8 − $8 = $0 price gap
    assert rows == [
        ["claude-opus-4-5", "$30.00", "$30.00", "100.0%", "$0.00", "$0.0000", "–", "0"],
        [SONNET, "$12.00", "$10.00", "83.3%", "$2.00", "$0.0000", "–", "0"],
    ]


def test_a_price_the_table_does_not_have_shows_as_a_price_gap_on_its_token_type(tmp_path):
    priced_low = (f"INSERT INTO reconciliation VALUES (DATE '2026-02-27', '{SONNET}', 'cache_write_1h', 50, 50, 6.0, "
                  f"4.5, {FETCHED}, NULL)",)
    out = outputs(build(tmp_path / "gap.duckdb", sql=priced_low), "costs")
    (_, row) = table_rows(out["costs-billing"]["children"])
    assert row == [SONNET, "$6.00", "$4.50", "100.0%", "$0.00", "$1.5000", "cache_write_1h", "0"]


def test_no_reconciled_day_says_to_run_reconcile(tmp_path):
    db = build(tmp_path / "nobill.duckdb", sql=BILL_ROWS[-1:])  # only a day outside the range
    out = outputs(db, "costs")
    panel = " ".join(texts(out["costs-billing"]["children"]))
    assert "run `fallbackscope reconcile`" in panel
    assert table_rows(out["costs-billing"]["children"]) == []
    figure = out["costs-coverage"]["figure"]
    assert figure["data"] == []
    assert "run `fallbackscope reconcile`" in figure["layout"]["annotations"][0]["text"].replace("<br>", " ")


def test_the_dashboard_writes_nothing_to_a_database_it_shows(tmp_path):
    db = build(tmp_path / "bill.duckdb", sql=BILL_ROWS + ALERT_ROWS)
    before = db.read_bytes()
    for page in ("overview", "refusals", "reliability", "costs"):
        outputs(db, page)
    assert db.read_bytes() == before
    con = connect(db, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM alerts").fetchone()[0] == 2
    finally:
        con.close()
