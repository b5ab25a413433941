"""HTML injection through names from the logs (workloads, models, sessions, refusal categories, surfaces):
reports and the dashboard show them as text, never as markup."""

from __future__ import annotations

import csv
import html
import io
import json
from html.parser import HTMLParser

import pytest
from dashboard_support import callback_payload, page_callbacks
from hostile import CATEGORY, FORMULA, MARKUP, MODELS, NAMES, TEMPLATE, WEEK, WORKLOADS

from dashboard.app import create_app
from dashboard.filters import Filters
from fallbackscope.api import Database
from fallbackscope.render.weekly import render

SAFE_TAGS = {"html", "head", "meta", "title", "style", "script", "body", "header", "main", "section", "nav", "div",
             "span", "h1", "h2", "h3", "p", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "small", "a",
             "footer", "strong", "em", "code", "br", "details", "summary", "caption", "figure", "figcaption", "b",
             "link"}


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text outside <script> and <style>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        if tag in ("script", "style"):
            self._in = tag

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        (self.scripts if self._in == "script" else self.text if self._in is None else []).append(data)


@pytest.fixture(scope="module")
def reports(hostile_db) -> dict[str, str]:
    with Database(hostile_db) as db:
        report = db.weekly_report(WEEK)
        daily = db.refusal_rate(by="day", since="2026-11-02", until="2026-11-09")
    return {fmt: render(report, fmt, daily=daily) for fmt in ("html", "md", "csv", "json")}


def test_the_html_report_holds_hostile_names_only_as_escaped_text(reports):
    page = reports["html"]
    for markup in MARKUP:
        assert markup not in page
    parsed = Tags()
    parsed.feed(page)
    tags = {tag for tag, _ in parsed.tags}
    assert tags <= SAFE_TAGS, tags - SAFE_TAGS
    for tag, attrs in parsed.tags:
        assert not [name for name, _ in attrs if name.startswith("on")], (tag, attrs)
        if tag == "a":
            assert all(not (v or "").startswith(("javascript:", "https://evil")) for _, v in attrs)
        if tag == "script":
            assert not any(name == "src" for name, _ in attrs)  # self-contained: nothing fetched
    text = " ".join(parsed.text)
    for name in (*WORKLOADS, MODELS[0]):
        assert name in text  # shown, as text
    # in the chart data (the last script's JSON, `<` written as \u003c) names are entity-escaped for
    # plotly, which shows entities as text
    data = parsed.scripts[-1]
    for markup in MARKUP:
        tag = markup[1:markup.index(" ") if " " in markup else markup.index(">")]
        assert "\\u003c" + tag not in data
    assert "\\u0026lt;script\\u0026gt;alert(" in data
    assert 'http-equiv="Content-Security-Policy"' in page


def test_the_markdown_report_escapes_markup_and_markdown(reports):
    text = reports["md"]
    for markup in MARKUP:
        assert markup not in text
    assert "\\<script\\>" in text  # shown literally by a Markdown renderer
    assert "**bold**" not in text and "[link](https://evil.example)" not in text


def test_the_csv_report_keeps_names_as_data_and_defuses_formulas(reports):
    rows = list(csv.DictReader(io.StringIO(reports["csv"])))
    workloads = {row["workload"] for row in rows if row["level"] == "workload"}
    expected = {("'" + w if w == FORMULA else w) for w in WORKLOADS}
    assert workloads == expected  # markup is only text in a CSV cell; a formula gets a leading quote
    assert not [cell for row in rows for cell in row.values() if cell and cell[0] in "=+-@" and cell != "-"]


def test_the_json_report_holds_names_exactly(reports):
    report = json.loads(reports["json"])
    assert sorted(w["workload"] for w in report["workloads"]) == sorted(WORKLOADS)
    assert {c["category"] for c in report["refusals_by_category"]} == {CATEGORY}


# -------------------------------------------------------------------------------- the dashboard

FILTERS = Filters.from_query("?from=2026-11-02&to=2026-11-15").to_store()
UNSAFE_COMPONENTS = {"Markdown", "Iframe", "Script", "Object", "Embed"}


@pytest.fixture(scope="module")
def client(hostile_db):
    return create_app(hostile_db).server.test_client()


def walk(node, components: list, strings: list, figures: list) -> None:
    """Collect component types, every string and every figure of a callback response."""
    if isinstance(node, dict):
        if "type" in node and "namespace" in node:
            components.append((node["namespace"], node["type"], node.get("props", {})))
        if "data" in node and "layout" in node:
            figures.append(node)
            return
        for value in node.values():
            walk(value, components, strings, figures)
    elif isinstance(node, list):
        for value in node:
            walk(value, components, strings, figures)
    elif isinstance(node, str):
        strings.append(node)


def figure_strings(figure: dict) -> tuple[list[str], list[str]]:
    """(every string plotly renders as pseudo-HTML in a figure's data, its hover templates)."""
    shown, templates = [], []

    def visit(node, key=""):
        if isinstance(node, dict):
            for k, v in node.items():
                visit(v, k)
        elif isinstance(node, list):
            for v in node:
                visit(v, key)
        elif isinstance(node, str):
            (templates if key == "hovertemplate" else shown).append(node)

    visit(figure["data"])
    visit(figure["layout"].get("annotations", []))
    return shown, templates


def test_every_page_serves_hostile_names_as_text(client):
    deps = json.loads(client.get("/_dash-dependencies").data)
    seen_escaped: set[str] = set()
    seen_text: set[str] = set()
    for page, dep in page_callbacks(deps).items():
        response = client.post("/_dash-update-component", json=callback_payload(dep, {"filters.data": FILTERS}))
        assert response.status_code == 200, page
        components, strings, figures = [], [], []
        walk(json.loads(response.data)["response"], components, strings, figures)
        assert not [c for c in components if c[1] in UNSAFE_COMPONENTS], page
        assert not [c for c in components if "dangerously_allow_html" in c[2]], page
        # component text is rendered by React as text: the names may appear raw there
        seen_text |= {name for name in NAMES if any(name in s for s in strings)}
        for figure in figures:
            shown, templates = figure_strings(figure)
            for markup in MARKUP:
                assert not [s for s in shown if markup in s], (page, markup)
            for template in templates:  # names reach hover text through %{…} fields, never spliced in
                assert not [n for n in NAMES if n in template or html.escape(n, quote=False) in template]
            seen_escaped |= {name for name in NAMES if any(html.escape(name, quote=False) in s for s in shown)}
    assert set(WORKLOADS) | {MODELS[0], CATEGORY} <= seen_escaped | seen_text
    assert {MODELS[0], CATEGORY} <= seen_escaped  # charted names, escaped for plotly


def test_filter_options_are_plain_strings(client):
    deps = json.loads(client.get("/_dash-dependencies").data)
    sync = next(d for d in deps if "filters.data" in d["output"] and "url.search" in d["output"])
    response = client.post("/_dash-update-component", json=callback_payload(sync, {"url.search": ""}))
    out = json.loads(response.data)["response"]
    options = out["f-workload"]["options"] + out["f-model"]["options"] + out["f-surface"]["options"]
    assert all(isinstance(o["label"], str) and o["label"] == o["value"] for o in options)
    assert {o["value"] for o in out["f-workload"]["options"]} == set(WORKLOADS)
    assert TEMPLATE not in {o["value"] for o in options}  # a session id is never offered as a filter
