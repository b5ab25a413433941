"""Weekly report renderers (docs/metrics.md §7.1): json key order, csv rows, md and html escaping, golden files."""

from __future__ import annotations

import copy
import csv
import dataclasses
import html
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from fallbackscope.render import weekly as reports
from fallbackscope.render.weekly import (
    CSV_CATEGORY_COLUMNS,
    CSV_COLUMNS,
    md_escape,
    render,
    render_csv,
    render_html,
    render_json,
    render_many,
    render_md,
    slo_missed,
)

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
SPEC_KEYS = ["week", "start", "end", "totals", "refusal_rate", "session_refusal_rate", "previous_week", "drift",
             "refusals_by_category", "refusals_by_model", "workloads", "errors", "cache_credit", "policy_violations"]
#: a computed report: the §7.1 keys, the coverage after the totals, the warnings last (docs/metrics.md §7.1)
REPORT_KEYS = [*SPEC_KEYS[:4], "coverage", *SPEC_KEYS[4:], "warnings"]
#: Keys a week has only when it has them (absent, not null, otherwise): billing reconciliation (§10).
OPTIONAL_KEYS = ["reconciliation"]


# ---------------------------------------------------------------- hand-made reports (exactly the §7.1 keys)

EVIL = "<script>alert(1)</script>"


def rate(num: int, den: int, low: float | None, high: float | None) -> dict[str, Any]:
    return {"value": num / den if den else None, "numerator": num, "denominator": den,
            "ci95_low": low, "ci95_high": high}


def make_report(**overrides: Any) -> dict[str, Any]:
    """A week with two workloads: `support-chat` meets its SLO, the script-named one misses it."""
    report: dict[str, Any] = {
        "week": "2026-W44",
        "start": "2026-10-26",
        "end": "2026-11-02",
        "totals": {"attempts": 1234, "chains": 500, "sessions": 321, "cost_usd": 12.345678,
                   "unpriced_attempts": 3},
        "refusal_rate": rate(16, 500, 0.0198, 0.0515),
        "session_refusal_rate": rate(14, 321, 0.0261, 0.0719),
        "previous_week": {"refusal_rate": rate(14, 498, 0.0168, 0.0466)},
        "drift": {"delta": 0.0038875502008032, "z": 0.3512, "p_value": 0.7254, "significant": False},
        "refusals_by_category": [
            {"category": "cyber", "refused_attempts": 10, "share": 0.5555555555555556},
            {"category": EVIL, "refused_attempts": 5, "share": 0.2777777777777778},
            {"category": "unspecified", "refused_attempts": 3, "share": 0.16666666666666666},
        ],
        "refusals_by_model": [
            {"model": "claude-haiku-4-5", "attempts": 700, "refused_attempts": 15,
             "attempt_refusal_rate": 0.02142857142857143},
            {"model": "claude-sonnet-4-5", "attempts": 120, "refused_attempts": 3, "attempt_refusal_rate": 0.025},
        ],
        "workloads": [
            {"workload": "support-chat", "chains": 400, "sessions": 300, "refusal_rate": 0.0225,
             "session_refusal_rate": 0.02, "slo": 0.05, "slo_met": True, "fallback_rate": 0.0475,
             "escalation_rate": 0.05, "unresolved_rate": 0.005,
             "resolution": [{"model": "claude-haiku-4-5", "share": 0.95},
                            {"model": "claude-sonnet-4-5", "share": 0.045}, {"model": "unresolved", "share": 0.005}],
             "cost_usd": 10.5, "blended_cost_per_request": 0.02625, "escalation_overhead_usd": 0.4,
             "top_tier_counterfactual_usd": 55.25,
             "start_tier_advice": [{"from_model": "claude-haiku-4-5", "to_model": "claude-sonnet-4-5",
                                    "escalation_rate": 0.05, "break_even": 0.6667, "advice": "keep"}]},
            {"workload": EVIL, "chains": 100, "sessions": 21, "refusal_rate": 0.07,
             "session_refusal_rate": 0.38095238095238093, "slo": 0.05, "slo_met": False, "fallback_rate": 0.06,
             "escalation_rate": 0.07, "unresolved_rate": 0.01,
             "resolution": [{"model": "claude-sonnet-4-5", "share": 0.99}, {"model": "unresolved", "share": 0.01}],
             "cost_usd": 1.845678, "blended_cost_per_request": 0.01845678, "escalation_overhead_usd": 0.1,
             "top_tier_counterfactual_usd": None, "start_tier_advice": []},
        ],
        "errors": [{"error_class": "overloaded", "attempts": 12}, {"error_class": "rate_limit", "attempts": 4}],
        "cache_credit": {"credits_minted": 18, "credits_unredeemable": 2, "redeemed": 9, "rejected": 1,
                         "unconfirmed": 2, "expired": 3, "forfeited": 1, "redemption_rate": 0.5625,
                         "credited_tokens": 45000, "savings_usd": 0.1485, "missed_savings_usd": 0.0123},
        "policy_violations": [{"kind": "model_outside_chain", "workload": EVIL, "count": 2}],
    }
    report.update(copy.deepcopy(overrides))
    return report


def make_daily() -> pd.DataFrame:
    """Seven days of the report's week plus one day of the next week (which the html must leave out)."""
    days = pd.date_range("2026-10-26", periods=8, freq="D").date
    chains = [70, 72, 75, 68, 71, 74, 70, 66]
    refused = [2, 3, 1, 4, 2, 3, 1, 9]
    return pd.DataFrame({"day": days, "chains": chains, "refused_chains": refused,
                         "refusal_rate": [r / c for r, c in zip(refused, chains, strict=True)]})


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def md_to_html(text: str) -> str:
    """Render markdown the way GitHub-like viewers do (raw HTML allowed, tables on)."""
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(text)


def without_plotlyjs(page: str) -> str:
    from plotly.offline import get_plotlyjs

    return page.replace(get_plotlyjs(), "")


# ---------------------------------------------------------------- json


def test_json_keys_follow_the_spec_order_whatever_order_the_dict_was_built_in():
    report = make_report()
    shuffled = dict(reversed(list(report.items())))
    shuffled["workloads"] = [dict(reversed(list(w.items()))) for w in report["workloads"]]
    shuffled["totals"] = dict(reversed(list(report["totals"].items())))
    text = render_json(shuffled)
    parsed = json.loads(text)
    assert list(parsed) == SPEC_KEYS
    assert list(parsed["totals"]) == ["attempts", "chains", "sessions", "cost_usd", "unpriced_attempts"]
    assert list(parsed["workloads"][0])[:7] == ["workload", "chains", "sessions", "refusal_rate",
                                                "session_refusal_rate", "slo", "slo_met"]
    assert list(parsed["refusal_rate"]) == ["value", "numerator", "denominator", "ci95_low", "ci95_high"]
    assert text == render_json(report)


def test_json_keeps_floats_as_computed_with_two_space_indent_and_extra_keys_last():
    report = make_report(extra_note={"b": 1, "a": 2})
    text = render_json(report)
    assert json.loads(text) == report
    assert list(json.loads(text))[-1] == "extra_note"
    assert '\n  "week": "2026-W44",\n' in text and text.endswith("}\n")
    assert "0.38095238095238093" in text and "0.0038875502008032" in text


def test_json_writes_nan_as_null_and_keeps_null_sections():
    report = make_report(previous_week=None, drift=None)
    report["workloads"][0]["fallback_rate"] = float("nan")
    parsed = json.loads(render_json(report))
    assert parsed["previous_week"] is None and parsed["drift"] is None
    assert parsed["workloads"][0]["fallback_rate"] is None


# ---------------------------------------------------------------- csv


def test_csv_has_one_row_per_workload_and_a_totals_row():
    rows = csv_rows(render_csv(make_report()))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [(r["level"], r["workload"]) for r in rows] == [("workload", "support-chat"), ("workload", EVIL),
                                                            ("total", "")]
    chat, evil, total = rows
    assert chat["slo_met"] == "true" and evil["slo_met"] == "false"
    assert evil["session_refusal_rate"] == "0.38095238095238093"
    assert evil["top_tier_counterfactual_usd"] == ""  # null stays empty, never 0
    assert (total["week"], total["attempts"], total["chains"], total["sessions"]) == ("2026-W44", "1234", "500",
                                                                                      "321")
    assert (total["refusal_rate"], total["cost_usd"], total["unpriced_attempts"]) == ("0.032", "12.345678", "3")
    assert total["slo_met"] == "false"  # one workload missed
    assert float(total["escalation_overhead_usd"]) == pytest.approx(0.5)
    assert total["blended_cost_per_request"] == "0.024691"  # cost / chains, to the micro-dollar
    assert total["fallback_rate"] == ""  # not in the report: not re-derived by the renderer


def test_csv_by_category_table():
    rows = csv_rows(render_csv(make_report(), by_category=True))
    assert list(rows[0]) == list(CSV_CATEGORY_COLUMNS)
    assert [(r["category"], r["refused_attempts"]) for r in rows] == [("cyber", "10"), (EVIL, "5"),
                                                                      ("unspecified", "3")]


def test_csv_names_from_logs_cannot_become_spreadsheet_formulas():
    report = make_report()
    report["workloads"][0]["workload"] = '=HYPERLINK("http://x","y")'
    assert csv_rows(render_csv(report))[0]["workload"] == "'=HYPERLINK(\"http://x\",\"y\")"


# ---------------------------------------------------------------- markdown


def test_md_escape_backslashes_every_metacharacter_and_flattens_line_breaks():
    assert md_escape("a|b*c_d`e[f]<g>&h~\\\nz") == "a\\|b\\*c\\_d\\`e\\[f\\]\\<g\\>\\&h\\~\\\\ z"


def test_md_shows_a_script_named_workload_as_text():
    text = render_md(make_report())
    assert EVIL not in text and not re.search(r"(?<!\\)<", text)  # every < is backslash-escaped
    rendered = md_to_html(text)
    assert "<script" not in rendered
    assert html.escape(EVIL, quote=False) in rendered  # the viewer prints it as text


def test_md_tables_survive_pipes_and_markup_in_names():
    report = make_report()
    report["workloads"][0]["workload"] = "a|b **bold** [link](http://x) _it_"
    rendered = md_to_html(render_md(report))
    workload_table = rendered.split("Workloads and SLO")[1].split("</table>")[0]
    assert workload_table.count("<tr>") == 3  # header + two workloads, no extra cells or rows
    assert "a|b **bold** [link](http://x) _it_" in workload_table
    assert "<strong>" not in workload_table and "<a " not in workload_table and "<em>" not in workload_table


def test_md_reads_as_a_summary_with_every_section():
    text = render_md(make_report())
    assert text.startswith("# Weekly refusal report — 2026-W44\n")
    assert "**Refusal rate (chains):** 3.2% — 16 of 500 chains, 95% CI 2.0%–5.1%" in text
    assert "**Drift:** +0.4 pp vs previous week, z = 0.35, p = 0.725 — not significant" in text
    assert "1 of 2 workloads MISSED their refusal SLO" in text
    for title in ("Workloads and SLO", "Cost", "Refusals by category", "Refusals by model", "Resolution",
                  "Start-tier advice", "Errors", "Cache credits", "Policy violations"):
        assert f"\n## {title}\n" in text
    assert "| support-chat | met | 2.0% | 5.0% | 0.40× | 300 | 400 |" in text


def test_md_says_when_there_is_no_previous_week():
    text = render_md(make_report(previous_week=None, drift=None, policy_violations=[]))
    assert "**Drift:** — (no chains in the previous week)" in text
    assert "## Policy violations\n\nNone this week.\n" in text


# ---------------------------------------------------------------- html


def test_html_is_self_contained_with_plotlyjs_inlined_and_no_fetch():
    from plotly.offline import get_plotlyjs

    page = render_html(make_report(), make_daily())
    assert get_plotlyjs() in page
    rest = without_plotlyjs(page)
    assert not re.search(r"<script[^>]*\bsrc=", rest, re.IGNORECASE)
    assert re.findall(r'(?:src|href)="([^"]*)"', rest) == ["data:,"]  # only the empty favicon
    assert "Content-Security-Policy" in rest and "connect-src &#x27;none&#x27;" in rest


def test_html_escapes_every_name_from_logs():
    page = render_html(make_report(), make_daily())
    assert EVIL not in page
    rest = without_plotlyjs(page)
    assert rest.count("<script>") == 2  # plotly.js and the chart script, nothing injected
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in rest
    figures = json.loads(re.search(r"var figs=(\{.*?\}),config=", rest).group(1))
    assert figures["w0-workload"]["data"][0]["x"][1] == html.escape(EVIL)  # plotly shows entities as text


def test_html_escapes_a_name_that_tries_to_close_the_chart_script():
    report = make_report()
    report["workloads"][0]["workload"] = "</script><img src=x onerror=alert(1)>"
    rest = without_plotlyjs(render_html(report))
    assert rest.count("</script>") == 2 and "<img" not in rest


def test_html_daily_chart_keeps_the_report_week_only_and_is_left_out_without_a_series():
    page = without_plotlyjs(render_html(make_report(), make_daily()))
    figures = json.loads(re.search(r"var figs=(\{.*?\}),config=", page).group(1))
    assert figures["w0-daily"]["data"][1]["x"] == [f"2026-{d}" for d in (
        "10-26", "10-27", "10-28", "10-29", "10-30", "10-31", "11-01")]
    bare = without_plotlyjs(render_html(make_report()))
    figures = json.loads(re.search(r"var figs=(\{.*?\}),config=", bare).group(1))
    assert set(figures) == {"w0-category", "w0-workload"} and "No data this week." in bare


def test_html_takes_the_analytics_day_rate_frame_too():
    daily = make_daily().rename(columns={"chains": "denominator", "refused_chains": "numerator",
                                         "refusal_rate": "value"})
    page = without_plotlyjs(render_html(make_report(), daily))
    figures = json.loads(re.search(r"var figs=(\{.*?\}),config=", page).group(1))
    assert figures["w0-daily"]["data"][0]["y"][:2] == [70, 72]


def test_html_takes_a_daily_list_carried_in_the_report_itself():
    daily = [{"day": "2026-10-27", "chains": 10, "refused_chains": 1, "refusal_rate": 0.1}]
    page = without_plotlyjs(render_html(make_report(daily=daily)))
    figures = json.loads(re.search(r"var figs=(\{.*?\}),config=", page).group(1))
    assert figures["w0-daily"]["data"][1]["y"] == [0.1]


def test_html_shows_slo_drift_cost_and_credit_tables():
    page = without_plotlyjs(render_html(make_report(), make_daily()))
    for title in ("Workloads and SLO", "Drift", "Cost", "Cache credits", "Refusals by category", "Errors",
                  "Policy violations", "Start-tier advice"):
        assert f"<h2>{title}</h2>" in page
    assert '<td class="bad">MISSED</td>' in page and "$55.25" in page and "9 of 18" in page


# ---------------------------------------------------------------- slo and several weeks


def test_slo_missed_lists_workloads_whose_slo_met_is_false():
    report = make_report()
    assert slo_missed(report) == [EVIL]
    report["workloads"][1]["slo_met"] = None  # no sessions: not a miss
    assert slo_missed(report) == []


def test_render_dispatches_by_format_and_rejects_others():
    report = make_report()
    assert render(report, "json") == render_json(report)
    assert render(report, "csv", by_category=True) == render_csv(report, by_category=True)
    assert render(report, "md") == render_md(report)
    with pytest.raises(ValueError, match="unknown report format"):
        render(report, "pdf")


def test_backfill_renders_every_week_in_one_document():
    weeks = [make_report(), make_report(week="2026-W45", start="2026-11-02", end="2026-11-09")]
    assert [r["week"] for r in json.loads(render_many(weeks, "json"))] == ["2026-W44", "2026-W45"]
    text = render_many(weeks, "csv")
    assert text.count("week,level,workload") == 1
    assert [r["week"] for r in csv_rows(text) if r["level"] == "total"] == ["2026-W44", "2026-W45"]
    md = render_many(weeks, "md")
    assert "# Weekly refusal report — 2026-W44" in md and "# Weekly refusal report — 2026-W45" in md
    page = without_plotlyjs(render_many(weeks, "html", daily=make_daily()))
    assert page.count('<section class="week"') == 2 and '<a href="#w1">2026-W45</a>' in page
    assert reports.report_filename(weeks[1], "html") == "weekly-2026-W45.html"


# ---------------------------------------------------------------- golden files of the committed sample


def load_committed_sample(db: Path) -> None:
    """Load sample_data/ into `db` as its ground truth says (batch file with its options), fixed key."""
    from ingest.loader import LoadOptions, ingest_paths

    folder = ROOT / "sample_data"
    options = json.loads((folder / "ground_truth.json").read_text())["ingest_options"]
    saved = os.environ.get("FALLBACKSCOPE_KEY")
    os.environ["FALLBACKSCOPE_KEY"] = "golden-sample-key"
    try:
        done = ingest_paths(db, sorted(str(p) for p in folder.glob("exchange-*.jsonl*")))
        done += ingest_paths(db, sorted(str(p) for p in folder.glob("batch-*.jsonl*")),
                             LoadOptions(format="batch", batch_id=options["--batch-id"],
                                         workload=options["--workload"], default_ts=options["--default-ts"]))
    finally:
        if saved is None:
            del os.environ["FALLBACKSCOPE_KEY"]
        else:
            os.environ["FALLBACKSCOPE_KEY"] = saved
    assert done and all(r.rejected == 0 for r in done)


def committed_sample_report(db: Path) -> dict[str, Any]:
    """Return the weekly report (default week) of a loaded sample; skip while analytics lacks it."""
    try:
        from fallbackscope.render.report import weekly_report
    except ImportError as exc:
        pytest.skip(f"fallbackscope.render.report.weekly_report is not available yet ({exc})")
    from fallbackscope.core import store

    # one thread: a parallel float sum can differ in its last bit between runs, and so its rounded money
    con = store.connect(db, threads=1)
    try:
        return weekly_report(con)
    finally:
        con.close()


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> Path:
    """A database holding the committed sample."""
    db = tmp_path_factory.mktemp("golden") / "sample.duckdb"
    load_committed_sample(db)
    return db


@pytest.fixture(scope="module")
def sample_report(sample_db) -> dict[str, Any]:
    """The weekly report of the committed sample."""
    return committed_sample_report(sample_db)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("FALLBACKSCOPE_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing; create it on purpose with FALLBACKSCOPE_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} differs from the golden file; if the change is intended, regenerate with "
        "FALLBACKSCOPE_UPDATE_GOLDEN=1 and review the diff")


@pytest.mark.parametrize(("name", "fmt", "by_category"), [
    ("weekly.json", "json", False), ("weekly.csv", "csv", False), ("weekly.md", "md", False),
    ("weekly-categories.csv", "csv", True)])
def test_committed_sample_report_matches_its_golden_file(sample_report, name, fmt, by_category):
    check_golden(name, render(sample_report, fmt, by_category=by_category))


def test_committed_sample_html_report_names_every_workload_escaped(sample_report):
    page = without_plotlyjs(render_html(sample_report))
    assert sample_report["workloads"]
    for workload in sample_report["workloads"]:
        assert f"<td>{html.escape(workload['workload'])}</td>" in page


# ---------------------------------------------------------------- the typed report owns the keys


def test_key_order_is_the_field_order_of_the_weekly_report_dataclasses():
    from fallbackscope.render.model import KEY_ORDER, WeeklyReport, WorkloadRow

    assert list(KEY_ORDER) == [*REPORT_KEYS, *OPTIONAL_KEYS]
    assert list(KEY_ORDER["workloads"][0]) == [f.name for f in dataclasses.fields(WorkloadRow)]
    assert list(KEY_ORDER["refusal_rate"]) == ["value", "numerator", "denominator", "ci95_low", "ci95_high"]
    assert list(KEY_ORDER["previous_week"]) == ["refusal_rate", "coverage"]
    assert "extra" not in KEY_ORDER
    assert [f.name for f in dataclasses.fields(WeeklyReport)][:-1] == [*REPORT_KEYS, *OPTIONAL_KEYS]


@pytest.fixture(scope="module")
def sample_weekly(sample_db):
    """The committed sample's default week as a WeeklyReport."""
    from fallbackscope.core import store
    from fallbackscope.render.report import compute_weekly

    con = store.connect(sample_db, threads=1)
    try:
        return compute_weekly(con)
    finally:
        con.close()


def test_a_weekly_report_renders_exactly_as_its_dict(sample_weekly, sample_report):
    assert sample_weekly.as_dict() == sample_report
    assert list(sample_weekly.as_dict()) == REPORT_KEYS
    for fmt in ("json", "csv", "md"):
        assert render(sample_weekly, fmt) == render(sample_report, fmt)
    assert render_many([sample_weekly], "json") == render_many([sample_report], "json")
    assert slo_missed(sample_weekly) == slo_missed(sample_report)
    assert reports.report_filename(sample_weekly, "md") == reports.report_filename(sample_report, "md")


def test_keys_a_weekly_report_does_not_know_yet_come_after_the_contract(sample_weekly):
    extended = dataclasses.replace(sample_weekly, extra={"daily": [], "week": "ignored: a field wins"})
    data = extended.as_dict()
    assert list(data) == [*REPORT_KEYS, "daily"] and data["week"] == sample_weekly.week
    assert list(json.loads(render_json(extended))) == [*REPORT_KEYS, "daily"]


# ---------------------------------------------------------------- write_weekly reads what the shell opened


class FakeDatabase:
    """Stands in for the shell's Database: render/ receives it, never imports it."""

    con = None

    def __init__(self) -> None:
        self.opened = self.closed = 0

    def __enter__(self) -> FakeDatabase:
        self.opened += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed += 1

    def weekly_report(self, monday):
        return make_report(week=f"{monday:%G-W%V}")

    def refusal_rate(self, by, since, until):
        return make_daily()


def test_write_weekly_reads_the_database_the_shell_opens(tmp_path):
    from rich.console import Console

    from fallbackscope.core.errors import UsageError
    from fallbackscope.render.files import write_weekly

    db = FakeDatabase()
    out = tmp_path / "w.md"
    written = write_weekly(lambda: db, week="2026-W44", fmt="md", out=out, all_weeks=False, by_category=False,
                           console=Console())
    assert (written.missed, written.no_data) == ([EVIL], False) and (db.opened, db.closed) == (1, 1)
    assert out.read_text(encoding="utf-8") == render_md(make_report())
    with pytest.raises(UsageError):  # options are checked before the database is opened
        write_weekly(lambda: 1 / 0, week="2026-W44", fmt="pdf", out=out, all_weeks=False, by_category=False,
                     console=Console())


def test_money_has_one_precision_per_kind_never_mixed_in_a_column():
    from fallbackscope.render.display import PER_REQUEST, usd

    assert [usd(v) for v in (2.1449, 0.1072, 0.0, 1234.5, 0.004, None)] == [
        "$2.14", "$0.11", "$0.00", "$1,234.50", "<$0.01", "—"]
    assert [usd(v, PER_REQUEST) for v in (0.1072, 2.14, 0.00001)] == ["$0.1072", "$2.1400", "<$0.0001"]
    assert usd(-0.035) == "-$0.04"
