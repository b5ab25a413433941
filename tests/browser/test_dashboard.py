"""The dashboard in headless Chromium: every page draws its charts from the sample database, filters
change what is shown and travel in the address, and the console stays clean."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from dashboard_support import (
    PAGES,
    ROOT,
    ServerThread,
    graph_data,
    open_page,
    severe,
    wait_drawn,
    wait_settled,
    waiting,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from dashboard.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

#: the README's screenshot, rewritten only on request (FALLBACKSCOPE_UPDATE_SCREENSHOT=1) so a test run leaves
#: the working tree as it was
README_SCREENSHOT = ROOT / "docs" / "overview.png"
#: charts the committed sample leaves empty (it has no rejected records)
EMPTY_IN_SAMPLE = {"data-rejects"}


@pytest.fixture(scope="module")
def sample_db(dashboard_sample) -> tuple[Path, dict]:
    return dashboard_sample


@pytest.fixture(scope="module")
def server(sample_db):
    with ServerThread(create_app(sample_db[0]).server) as running:
        yield running


@pytest.mark.parametrize("path", list(PAGES))
def test_page_draws_its_charts_from_the_sample_without_console_errors(chrome, server, path):
    prefix, charts = PAGES[path]
    log = open_page(chrome, server.url + path, prefix, charts)
    assert severe(log) == []
    data = graph_data(chrome)
    for chart in charts:
        points = sum(t["points"] for t in data[chart])
        if chart in EMPTY_IN_SAMPLE:
            continue
        assert points > 0, f"{chart} drew no data"
    for chart in charts:
        svg = chrome.find_elements(By.CSS_SELECTOR, f"#{chart} .main-svg")
        assert svg, f"{chart} has no svg"
    if prefix != "data":  # the load ledger is not filtered
        assert "2026-10-19 – 2026-11-15" in chrome.find_element(By.ID, f"{prefix}-status").text


def test_overview_shows_the_sample_headline_and_the_screenshot_is_taken(chrome, server, sample_db, tmp_path):
    truth = sample_db[1]
    open_page(chrome, server.url + "/", *PAGES["/"])
    cards = chrome.find_element(By.ID, "overview-kpis").text
    assert f"{truth['refused_chains'] / truth['chains'] * 100:.1f}%" in cards
    assert f"{truth['refused_chains']:,} of {truth['chains']:,}" in cards
    daily = graph_data(chrome)["overview-trend"]
    rates = [t for t in daily if "SLO" not in t["name"]]
    assert {t["name"] for t in rates} == {"refusal rate", "session refusal rate", "fallback rate",
                                          "escalation rate"}
    assert all(t["points"] == 28 for t in rates)
    assert [t["name"] for t in daily if "SLO" in t["name"]] == ["session refusal rate SLO: target 5.0% (default)"]
    waiting(chrome, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#overview-wow table"))
    wait_settled(chrome)
    # the status line's "read at" time would make every run's image differ; the README does not need it
    chrome.execute_script("document.querySelectorAll('.status .muted').forEach(function (e) { e.remove(); });"
                          "window.scrollTo(0, 0);")
    update = os.environ.get("FALLBACKSCOPE_UPDATE_SCREENSHOT") == "1"
    screenshot = README_SCREENSHOT if update else tmp_path / "overview.png"
    assert chrome.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 20_000


def test_refusal_charts_cover_each_day_and_week_of_the_range(chrome, server):
    open_page(chrome, server.url + "/refusals", *PAGES["/refusals"])
    data = graph_data(chrome)
    rate = next(t for t in data["refusals-daily"] if t["name"] == "refusal rate")
    assert rate["points"] == 28 and rate["x"][0] == "2026-10-19" and rate["x"][-1] == "2026-11-15"
    weekly = next(t for t in data["refusals-weekly"] if t["name"] == "refusal rate")
    assert weekly["x"] == ["2026-W43", "2026-W44", "2026-W45", "2026-W46"]
    categories = {t["name"] for t in data["refusals-category"]}
    assert {"cyber", "bio", "unspecified"} <= categories


def test_choosing_a_workload_changes_the_charts_and_the_address(chrome, server):
    log = open_page(chrome, server.url + "/refusals", *PAGES["/refusals"])
    before = graph_data(chrome)["refusals-daily"]
    chrome.find_element(By.ID, "f-workload").click()
    option = waiting(chrome, 10).until(lambda d: next(
        (o for o in d.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text.strip() == "code-assist"), None))
    option.click()
    chrome.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    waiting(chrome, 30).until(lambda d: "workload=code-assist" in d.current_url)
    waiting(chrome, 30).until(
        lambda d: "workload: code-assist" in d.find_element(By.ID, "refusals-status").text)
    wait_drawn(chrome, *PAGES["/refusals"])
    after = graph_data(chrome)["refusals-daily"]
    assert after != before
    query = parse_qs(urlparse(chrome.current_url).query)
    assert query["workload"] == ["code-assist"] and query["from"] == ["2026-10-19"]
    workloads = [t["x"] for t in graph_data(chrome)["refusals-workload"] if t["type"] == "bar"][0]
    assert workloads == ["code-assist"]
    assert severe(log + chrome.get_log("browser")) == []


def test_a_shared_address_opens_the_same_view(chrome, server):
    url = server.url + "/costs?from=2026-11-02&to=2026-11-08&workload=support-chat&surface=anthropic"
    log = open_page(chrome, url, *PAGES["/costs"])
    status = chrome.find_element(By.ID, "costs-status").text
    assert "2026-11-02 – 2026-11-08" in status and "workload: support-chat" in status
    assert "surface: anthropic" in status
    assert "support-chat" in chrome.find_element(By.ID, "f-workload").text
    traces = graph_data(chrome)["costs-workload"]
    assert [t["name"] for t in traces] == ["support-chat"]
    assert traces[0]["x"][0] >= "2026-11-02" and traces[0]["x"][-1] <= "2026-11-08"
    assert severe(log) == []


def test_quick_range_and_navigation_keep_the_filters(chrome, server):
    log = open_page(chrome, server.url + "/refusals", *PAGES["/refusals"])
    chrome.find_element(By.ID, "f-last7").click()
    waiting(chrome, 30).until(lambda d: "from=2026-11-09" in d.current_url)
    waiting(chrome, 30).until(
        lambda d: "2026-11-09 – 2026-11-15" in d.find_element(By.ID, "refusals-status").text)
    wait_drawn(chrome, *PAGES["/refusals"])
    rate = next(t for t in graph_data(chrome)["refusals-daily"] if t["name"] == "refusal rate")
    assert rate["points"] == 7
    chrome.find_element(By.CSS_SELECTOR, "a[href^='/chains']").click()
    waiting(chrome, 30).until(lambda d: urlparse(d.current_url).path == "/chains")
    wait_drawn(chrome, *PAGES["/chains"])
    assert "from=2026-11-09" in chrome.current_url
    waiting(chrome, 30).until(
        lambda d: "2026-11-09 – 2026-11-15" in d.find_element(By.ID, "chains-status").text)
    assert severe(log + chrome.get_log("browser")) == []


def test_data_page_shows_what_the_last_load_did(chrome, server, sample_db):
    truth = sample_db[1]
    log = open_page(chrome, server.url + "/data", *PAGES["/data"])
    rows = chrome.find_elements(By.CSS_SELECTOR, "#data-files tbody tr")
    assert len(rows) == len(truth["files"])
    records = sum(f["lines"] for f in truth["files"].values())
    assert chrome.find_element(By.ID, "kpi-records").text.splitlines()[1] == f"{records:,}"
    assert chrome.find_element(By.ID, "kpi-rejected").text.splitlines()[1] == "0"
    assert f"{len(truth['files'])} ok" in chrome.find_element(By.ID, "kpi-latest-run").text
    assert severe(log) == []
