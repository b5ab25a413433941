"""Measured in headless Chromium at 1280 px (issue 15's polish): every table fits its box (the start-tier
advice's Advice column inside the viewport), a model has one colour in every figure of a page, error classes
have distinct colours, charts without data say so instead of drawing bare axes, and the overview shows the
SLO'd rate's target and its warnings."""

from __future__ import annotations

import pytest
from dashboard_support import (
    PAGES,
    PARTIAL_WEEK_SQL,
    REDACTED_SQL,
    ServerThread,
    figures_json,
    model_colours_drawn,
    open_page,
    sample_variant,
    severe,
    table_boxes,
    wait_settled,
)
from selenium.webdriver.common.by import By

from dashboard.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

#: declared chains, so that the Chains page shows its start-tier advice; one target from the policy
POLICY = """
[workloads.support-chat]
chain = ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-8"]
refusal_slo = 0.3

[workloads.code-assist]
chain = ["claude-fable-5", "claude-opus-4-8"]
"""
#: pages whose figures draw models
MODEL_PAGES = ("/chains", "/costs", "/refusals")


@pytest.fixture(scope="module")
def server(dashboard_sample, tmp_path_factory):
    policy = tmp_path_factory.mktemp("layout-policy") / "policy.toml"
    policy.write_text(POLICY)
    with ServerThread(create_app(dashboard_sample[0], policy).server) as running:
        yield running


def show(chrome, server, path: str, query: str = "") -> list[dict]:
    """Open a page, wait until it is drawn and laid out; return the console log."""
    log = open_page(chrome, server.url + path + query, *PAGES[path])
    wait_settled(chrome)
    return log


def test_the_advice_column_is_inside_the_viewport_at_1280_px(chrome, server):
    log = show(chrome, server, "/chains")
    assert chrome.execute_script("return window.innerWidth") == 1280
    (advice,) = [t for t in table_boxes(chrome) if t["panel"] == "chains-advice"]
    column = next(h for h in advice["heads"] if h["text"] == "Advice")
    print(f"Advice column {column['left']:.0f}–{column['right']:.0f} px; panel {advice['box_left']:.0f}–"
          f"{advice['box_right']:.0f} px; page {advice['page_width']} px wide")
    assert column["right"] <= advice["box_right"] <= advice["page_width"] <= 1280
    assert advice["scroll_width"] <= advice["client_width"]  # nothing to scroll to
    cells = chrome.find_elements(By.CSS_SELECTOR, "#chains-advice tbody tr td:last-child")
    assert cells and all(c.is_displayed() and c.text in ("start higher", "keep", "insufficient data")
                         for c in cells)
    assert severe(log) == []


@pytest.mark.parametrize("path", list(PAGES))
def test_every_table_fits_its_box(chrome, server, path):
    show(chrome, server, path)
    boxes = table_boxes(chrome)
    assert boxes or path in ("/costs",)
    for box in boxes:
        assert box["table_right"] <= box["box_right"] + 0.5, box["panel"]
        assert box["scroll_width"] <= box["client_width"], box["panel"]


def test_a_model_has_one_colour_in_every_figure_of_a_page_and_across_pages(chrome, server):
    everywhere: dict[str, set[str]] = {}
    for path in MODEL_PAGES:
        show(chrome, server, path)
        drawn = model_colours_drawn(figures_json(chrome))
        print(path, {m: sorted(c) for m, c in sorted(drawn.items())})
        assert {"claude-fable-5", "claude-haiku-4-5", "claude-opus-4-8", "claude-sonnet-4-5"} <= set(drawn)
        assert all(len(colours) == 1 for colours in drawn.values()), drawn
        firsts = [next(iter(c)) for c in drawn.values()]
        assert len(set(firsts)) == len(firsts), "two models share a colour"
        for model, colours in drawn.items():
            everywhere.setdefault(model, set()).update(colours)
    assert all(len(colours) == 1 for colours in everywhere.values()), everywhere


def test_error_classes_have_distinct_colours_and_keep_them_as_fallback_triggers(chrome, server):
    show(chrome, server, "/reliability")
    figures = figures_json(chrome)
    errors = {t["name"]: t["marker"] for t in figures["reliability-errors"]["traces"]}
    print("error classes", errors)
    assert len(errors) >= 10
    assert len(set(errors.values())) == len(errors), "two error classes share a colour"
    for trace in figures["reliability-fallbacks"]["traces"]:
        if trace["name"] in errors:
            assert trace["marker"] == errors[trace["name"]], trace["name"]


@pytest.mark.parametrize("query", [
    "?from=2030-01-05&to=2030-01-11",  # days without data
    "?from=2026-11-15&to=2026-11-15&model=claude-haiku-4-5",  # chains, but no overhead and no credits
])
@pytest.mark.parametrize("path", [p for p in PAGES if p != "/data"])
def test_a_chart_without_data_says_so_instead_of_drawing_bare_axes(chrome, server, path, query):
    log = show(chrome, server, path, query)
    for graph_id, fig in figures_json(chrome).items():
        if fig["annotations"]:  # a message, and no axes under it
            assert fig["ticks"] == 0, f"{graph_id} says {fig['annotations']} over axes"
            continue
        drawn = [v for t in fig["traces"] for v in (t["y"] or []) + (t["x"] or []) + (t["errors"] or [])
                 if isinstance(v, int | float) and v != 0]
        assert drawn or any(t["type"] == "sankey" for t in fig["traces"]), f"{graph_id}: nothing drawn, no message"
        assert [-1, 1] not in fig["ranges"], f"{graph_id}: bare -1..1 axis"
    assert severe(log) == []


def test_the_overview_shows_the_slo_target_its_source_and_the_warnings(chrome, dashboard_sample, tmp_path):
    db = sample_variant(dashboard_sample[0], tmp_path / "both.duckdb", REDACTED_SQL, PARTIAL_WEEK_SQL)
    with ServerThread(create_app(db).server) as running:
        log = show(chrome, running, "/", "?from=2026-10-19&to=2026-11-15")
        session = chrome.find_element(By.ID, "kpi-session-refusal-rate")
        assert "SLO target 5.0% (default)" in session.text and session.value_of_css_property("border-left-width") \
            == "4px"
        chain = chrome.find_element(By.ID, "kpi-refusal-rate")
        assert "no SLO" in chain.text and chain.value_of_css_property("border-left-width") == "1px"
        warnings = chrome.find_elements(By.CSS_SELECTOR, "#overview-warnings .warning")
        shown = [w.text for w in warnings if w.is_displayed()]
        assert any("lower bound" in w for w in shown) and any("1 of 7 days" in w for w in shown), shown
        trend = figures_json(chrome)["overview-trend"]
        (line,) = [t for t in trend["traces"] if "SLO" in (t["name"] or "")]
        session_line = next(t for t in trend["traces"] if t["name"] == "session refusal rate")
        assert line["y"] == [0.05, 0.05] and line["line"] == session_line["line"] and line["dash"] == "dash"
        legend = [e.text for e in chrome.find_elements(By.CSS_SELECTOR, "#overview-trend .legendtext")]
        assert "session refusal rate SLO: target 5.0% (default)" in legend
        assert severe(log) == []
