"""The html weekly report opens offline in headless Chromium: charts render, console clean, names shown as text."""

from __future__ import annotations

import pandas as pd
import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from test_reports import EVIL, committed_sample_report, load_committed_sample, make_daily, make_report

from fallbackscope.render.weekly import render_html, render_many

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def open_report(browser, path, charts: int) -> list[dict]:
    """Open a report file, wait until `charts` plotly charts drew their svg; return the console log."""
    browser.get_log("browser")  # drop whatever an earlier page logged
    browser.get(path.as_uri())
    WebDriverWait(browser, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= charts)
    return browser.get_log("browser")


def severe(log: list[dict]) -> list[str]:
    return [entry["message"] for entry in log if entry.get("level") == "SEVERE"]


def test_weekly_html_renders_three_charts_offline_without_console_errors(browser, tmp_path):
    path = tmp_path / "weekly.html"
    path.write_text(render_html(make_report(), make_daily()), encoding="utf-8")
    log = open_report(browser, path, 3)

    assert severe(log) == []
    plots = browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")
    assert {p.get_attribute("id") for p in plots} == {"w0-daily", "w0-category", "w0-workload"}
    for plot in plots:
        assert plot.find_elements(By.CSS_SELECTOR, ".main-svg")
        assert plot.find_elements(By.CSS_SELECTOR, "g.trace")  # data were drawn, not just axes
    # the daily chart keeps only the report's week (the fixture has one day of the next week)
    assert browser.execute_script("return document.getElementById('w0-daily').data[1].x.length") == 7
    # nothing was fetched: no resource loaded besides the page itself
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0


def test_script_named_workload_shows_as_text_and_never_runs(browser, tmp_path):
    path = tmp_path / "evil.html"
    path.write_text(render_html(make_report(), make_daily()), encoding="utf-8")
    log = open_report(browser, path, 3)

    assert severe(log) == []
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - reading it is the check
    assert len(browser.find_elements(By.TAG_NAME, "script")) == 2  # plotly.js and the chart script only
    cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "td")]
    assert EVIL in cells
    ticks = [t.get_attribute("textContent") for t in
             browser.find_elements(By.CSS_SELECTOR, "#w0-workload .xtick text")]
    assert EVIL in ticks  # plotly shows the escaped name as the literal text


def test_backfill_html_has_a_section_and_charts_per_week(browser, tmp_path):
    second = make_report(week="2026-W45", start="2026-11-02", end="2026-11-09")
    path = tmp_path / "weeks.html"
    path.write_text(render_many([make_report(), second], "html", daily=make_daily()), encoding="utf-8")
    log = open_report(browser, path, 6)

    assert severe(log) == []
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.week")) == 2
    assert browser.execute_script("return document.getElementById('w1-daily').data[1].x.length") == 1


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("sample") / "sample.duckdb"
    load_committed_sample(db)
    return db


def daily_series(db, report) -> pd.DataFrame:
    """The chains and refused chains of each day of the report's week (a chain is on its first day)."""
    import duckdb

    from fallbackscope.core.periods import day_sql

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            f"""WITH c AS (SELECT chain_id, min(ts) AS first_ts, bool_or(outcome = 'refusal') AS refused
                           FROM attempts GROUP BY chain_id)
                SELECT {day_sql('first_ts')} AS day, count(*) AS chains, count(*) FILTER (refused) AS refused_chains,
                       count(*) FILTER (refused) / count(*) AS refusal_rate
                FROM c WHERE first_ts >= CAST(? AS TIMESTAMPTZ) AND first_ts < CAST(? AS TIMESTAMPTZ)
                GROUP BY 1 ORDER BY 1""", [report["start"], report["end"]]).df()
    finally:
        con.close()


def test_committed_sample_html_report_renders_offline(browser, tmp_path, sample_db):
    sample_report = committed_sample_report(sample_db)
    daily = daily_series(sample_db, sample_report)
    assert len(daily) == 7
    path = tmp_path / "sample.html"
    path.write_text(render_html(sample_report, daily), encoding="utf-8")
    log = open_report(browser, path, 3)

    assert severe(log) == []
    assert browser.execute_script("return document.getElementById('w0-daily').data[1].x.length") == 7
    workloads = browser.execute_script("return document.getElementById('w0-workload').data[0].x")
    assert workloads == [w["workload"] for w in sample_report["workloads"]]


def test_console_check_catches_errors_and_blocked_fetches(browser, tmp_path):
    """Control: the console log the tests read does report a script error and a blocked fetch."""
    path = tmp_path / "weekly.html"
    path.write_text(render_html(make_report()), encoding="utf-8")
    open_report(browser, path, 2)
    browser.execute_script("console.error('boom'); fetch('https://example.com/x').catch(function () {});")
    WebDriverWait(browser, 10).until(lambda d: (log := d.get_log("browser")) and severe(log))


def test_rate_ticks_are_round_and_workload_labels_stay_inside_the_chart(browser, tmp_path):
    report = make_report()
    for i, w in enumerate(report["workloads"]):  # long names, rotated: they must not run under the legend
        w["workload"] = f"a-rather-long-workload-name-{i}"
        w["session_refusal_rate"], w["refusal_rate"] = 0.079, 0.053
    path = tmp_path / "ticks.html"
    path.write_text(render_html(report, make_daily()), encoding="utf-8")
    assert severe(open_report(browser, path, 3)) == []
    ticks = [t.get_attribute("textContent") for t in
             browser.find_elements(By.CSS_SELECTOR, "#w0-workload .ytick text")]
    assert ticks and all(t.endswith("%") and float(t[:-1]) % 2 == 0 for t in ticks), ticks  # 0%, 2%, … 8%
    daily = [t.get_attribute("textContent") for t in browser.find_elements(By.CSS_SELECTOR, "#w0-daily .y2tick text")]
    steps = {round(float(b[:-1]) - float(a[:-1]), 6) for a, b in zip(daily, daily[1:], strict=False)}
    assert len(steps) == 1 and steps.pop() in (0.1, 0.2, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50), daily
    box = browser.execute_script("""
        const svg = document.querySelector('#w0-workload .main-svg').getBoundingClientRect();
        const legend = document.querySelector('#w0-workload .legend').getBoundingClientRect();
        const labels = [...document.querySelectorAll('#w0-workload .xtick text')].map(t => t.getBoundingClientRect());
        return {svg: [svg.top, svg.bottom, svg.left, svg.right], legend: [legend.top, legend.bottom],
                labels: labels.map(r => [r.top, r.bottom, r.left, r.right])};""")
    top, bottom, left, right = box["svg"]
    for t, b, lft, rgt in box["labels"]:
        assert top <= t and b <= bottom + 0.5 and left - 0.5 <= lft and rgt <= right + 0.5  # not clipped
        assert b <= box["legend"][0] or t >= box["legend"][1]  # and not under the legend
