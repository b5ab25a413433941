"""Issues 17 and 18 in headless Chromium: the burn-rate panels (overview, refusals), the alert history
(reliability) and the bill's coverage and gap (costs) render from the sample with alerts and a reconciled bill,
their tables fit their boxes, and the console stays clean."""

from __future__ import annotations

import pytest
from dashboard_support import (
    PAGES,
    ServerThread,
    graph_data,
    open_page,
    sample_variant,
    severe,
    table_boxes,
    wait_settled,
)
from selenium.webdriver.common.by import By

from dashboard.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

POLICY = """
[workloads.support-chat]
refusal_slo = 0.3

[workloads.code-assist]
refusal_slo = 0.02
"""
FETCHED = "TIMESTAMPTZ '2026-11-16 06:00:00+00'"
EXTRA_SQL = (
    "INSERT INTO alerts VALUES ('support-chat', 'page', '1h/5m ×14.4', TIMESTAMPTZ '2026-11-12 09:00:00+00', "
    "TIMESTAMPTZ '2026-11-12 10:30:00+00', TIMESTAMPTZ '2026-11-12 10:30:00+00', 0.3, 15.0, 20.0)",
    "INSERT INTO alerts VALUES ('code-assist', 'ticket', '3d/6h ×1', TIMESTAMPTZ '2026-11-14 11:00:00+00', "
    "TIMESTAMPTZ '2026-11-14 11:00:05+00', NULL, 0.02, 2.5, 2.5)",
    f"INSERT INTO reconciliation VALUES (DATE '2026-11-10', 'claude-sonnet-4-5', 'output', 100, 80, 10.0, 8.0, "
    f"{FETCHED}, NULL)",
    f"INSERT INTO reconciliation VALUES (DATE '2026-11-11', 'claude-opus-4-8', 'output', 100, 100, 30.0, 29.0, "
    f"{FETCHED}, NULL)",
)
#: page → (the new panel, the charts to wait for)
CHANGED = {
    "/": ("overview-burn", PAGES["/"][1]),
    "/refusals": ("refusals-burn", PAGES["/refusals"][1]),
    "/reliability": ("reliability-alerts", PAGES["/reliability"][1]),
    "/costs": ("costs-billing", [*PAGES["/costs"][1], "costs-coverage"]),
}


@pytest.fixture(scope="module")
def server(dashboard_sample, tmp_path_factory):
    folder = tmp_path_factory.mktemp("slo-dashboard")
    db = sample_variant(dashboard_sample[0], folder / "slo.duckdb", *EXTRA_SQL)
    policy = folder / "policy.toml"
    policy.write_text(POLICY)
    with ServerThread(create_app(db, policy).server) as running:
        yield running


@pytest.mark.parametrize("path", list(CHANGED))
def test_the_new_panels_render_fit_their_boxes_without_console_errors(chrome, server, path):
    panel, charts = CHANGED[path]
    log = open_page(chrome, server.url + path, PAGES[path][0], charts)
    wait_settled(chrome)
    assert severe(log) == []
    rows = chrome.find_elements(By.CSS_SELECTOR, f"#{panel} tbody tr")
    assert len(rows) == 2, f"{panel} shows {len(rows)} rows"
    (box,) = [b for b in table_boxes(chrome) if b["panel"] == panel]
    assert box["table_right"] <= box["box_right"] + 0.5
    assert box["scroll_width"] <= box["client_width"]
    if path == "/costs":
        (bars,) = [t for t in graph_data(chrome)["costs-coverage"] if t["type"] == "bar"]
        assert bars["points"] == 2
