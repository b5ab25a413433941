"""Helpers for the dashboard's browser and HTTP tests: the sample database, a server thread, callback POSTs."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"
SAMPLE_KEY = "sample-key"


def load_sample(db: Path, folder: Path = SAMPLE) -> dict[str, Any]:
    """Load the committed sample logs into a fresh database at `db` (as the ground-truth tests do);
    return the ground truth."""
    from ingest.loader import LoadOptions, ingest_paths

    truth = json.loads((folder / "ground_truth.json").read_text())
    old = os.environ.get("FALLBACKSCOPE_KEY")
    os.environ["FALLBACKSCOPE_KEY"] = SAMPLE_KEY
    try:
        ingest_paths(db, sorted(str(p) for p in folder.iterdir() if p.name.startswith("exchange-")))
        batch = sorted(str(p) for p in folder.iterdir() if p.name.startswith("batch-"))
        if batch:
            opts = truth["ingest_options"]
            ingest_paths(db, batch, LoadOptions(format="batch", batch_id=opts["--batch-id"],
                                                workload=opts["--workload"], default_ts=opts["--default-ts"]))
    finally:
        if old is None:
            os.environ.pop("FALLBACKSCOPE_KEY", None)
        else:
            os.environ["FALLBACKSCOPE_KEY"] = old
    return truth


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """A waitress server for a WSGI app on 127.0.0.1 in a daemon thread."""

    def __init__(self, wsgi_app: Any, threads: int = 8) -> None:
        import waitress

        self.server = waitress.create_server(wsgi_app, host="127.0.0.1", port=0, threads=threads)
        self.port = int(self.server.effective_port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.run, name="dashboard-test-server", daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        wait_for(lambda: http_get(self.url + "/_dash-layout")[0] in (200, 401), 30, "the dashboard to answer")
        return self

    def __exit__(self, *exc: object) -> None:
        from waitress import wasyncore

        # close the browser's keep-alive connections too: while any is open, the server's loop keeps running
        self.server.task_dispatcher.shutdown()
        wasyncore.close_all(self.server._map)
        self.thread.join(timeout=10)


def wait_for(check: Any, seconds: float, what: str, interval: float = 0.1) -> Any:
    """Return the first truthy value of `check()` within `seconds`; fail naming `what` otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = check()
        except (OSError, urllib.error.URLError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 60) -> tuple[int, bytes]:
    """Return (status, body) of a GET; HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback test server
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_post_json(url: str, payload: Any, timeout: float = 120) -> tuple[int, bytes]:
    """Return (status, body) of a JSON POST; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback test server
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def callback_payload(dependency: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Return the `/_dash-update-component` body the browser sends for one callback of
    `/_dash-dependencies`, with `values` ("id.prop" → value) for its inputs and state."""
    outputs = []
    for spec in dependency["output"].strip(".").split("..."):
        component, prop = spec.rsplit(".", 1)
        outputs.append({"id": component, "property": prop})

    def props(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": i["id"], "property": i["property"], "value": values.get(f"{i['id']}.{i['property']}")}
                for i in items]

    return {
        "output": dependency["output"],
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": props(dependency["inputs"]),
        "changedPropIds": [f"{i['id']}.{i['property']}" for i in dependency["inputs"]],
        "state": props(dependency.get("state", [])),
    }


def page_callbacks(dependencies: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return the callback of each page (the ones fed by the `filters` store), by output prefix."""
    out = {}
    for dep in dependencies:
        if any(i["id"] == "filters" and i["property"] == "data" for i in dep["inputs"]):
            prefix = dep["output"].strip(".").split("-", 1)[0]
            out[prefix] = dep
    return out


# ---------------------------------------------------------------------------- the browser

#: The browser tests' Chromium switches (as in conftest.CHROME_ARGS) except that 127.0.0.1 resolves:
#: the dashboard is served on loopback, everything else stays unreachable.
DASHBOARD_CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                         "--proxy-server=127.0.0.1:9",
                         "--window-size=1280,1600")


def start_browser(chromium: Path, chromedriver: Path, profile: Path) -> Any:
    """Return a headless Chromium (selenium) that can reach the loopback dashboard, console logged."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for arg in DASHBOARD_CHROME_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(chromedriver)), options=options)
    driver.set_page_load_timeout(60)
    return driver


GRAPH_DATA_JS = """
var out = {};
document.querySelectorAll('.dash-graph, .js-plotly-plot').forEach(function (node) {
    var holder = node.closest('[id]');
    var plot = node.classList.contains('js-plotly-plot') ? node : node.querySelector('.js-plotly-plot');
    if (!holder || !plot || !plot.data) { return; }
    out[holder.id] = plot.data.map(function (t) {
        if (t.type === 'sankey') { return {type: t.type, points: t.link.value.length, name: null}; }
        return {type: t.type || 'scatter', name: t.name || null, points: (t.y || t.x || []).length,
                x: t.x || null, y: t.y || null};
    });
});
return out;
"""


def graph_data(driver: Any) -> dict[str, list[dict[str, Any]]]:
    """Return, per dcc.Graph id on the page, its traces: type, name, number of points, x and y."""
    return driver.execute_script(GRAPH_DATA_JS)


def severe(log: list[dict[str, Any]]) -> list[str]:
    """Return the browser console messages of level SEVERE (errors)."""
    return [entry["message"] for entry in log if entry.get("level") == "SEVERE"]


def wait_settled(driver: Any, seconds: float = 30, quiet: float = 1.0) -> None:
    """Wait until no Dash component is loading and the page's height and drawn charts have not changed
    for `quiet` seconds (plotly finishes laying out after the data arrive)."""
    probe = ("return [document.querySelectorAll('[data-dash-is-loading]').length, document.body.scrollHeight,"
             " document.querySelectorAll('.js-plotly-plot .main-svg').length]")
    deadline = time.monotonic() + seconds
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        state = driver.execute_script(probe)
        if state != last or state[0]:
            last, since = state, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.1)
    raise AssertionError(f"the page did not settle within {seconds} s")


# ---------------------------------------------------------------------------- pages

#: page path → (prefix of its ids, its charts)
PAGES = {
    "/": ("overview", ["overview-trend", "overview-cost"]),
    "/refusals": ("refusals", ["refusals-daily", "refusals-weekly", "refusals-sessions", "refusals-category",
                               "refusals-model", "refusals-workload"]),
    "/chains": ("chains", ["chains-sankey", "chains-resolution", "chains-escalation"]),
    "/costs": ("costs", ["costs-workload", "costs-model", "costs-blended", "costs-overhead", "costs-credits",
                         "costs-credits-time"]),
    "/reliability": ("reliability", ["reliability-errors", "reliability-outcomes", "reliability-fallbacks",
                                     "reliability-violations", "reliability-violations-time"]),
    "/data": ("data", ["data-loads", "data-rejects"]),
}


def waiting(driver: Any, seconds: float) -> Any:
    """A WebDriverWait that retries when the page re-renders the element it is reading (stale elements)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, ignored_exceptions=(StaleElementReferenceException,))


def wait_drawn(driver: Any, prefix: str, charts: list[str], timeout: float = 60) -> None:
    """Wait until the page callback filled the status line `<prefix>-status` and every chart is drawn."""
    from selenium.webdriver.common.by import By

    def ready(d: Any) -> bool:
        status = d.find_elements(By.ID, f"{prefix}-status")
        if not status or not status[0].text.strip():
            return False
        data = graph_data(d)
        drawn = d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")
        return all(c in data for c in charts) and len(drawn) >= len(charts)

    waiting(driver, timeout).until(ready)


def open_page(driver: Any, url: str, prefix: str, charts: list[str]) -> list[dict[str, Any]]:
    """Open `url`, wait until the page callback filled its status line and every chart holds its figure;
    return the console log."""
    driver.get_log("browser")  # drop what an earlier page logged
    driver.get(url)
    wait_drawn(driver, prefix, charts)
    return driver.get_log("browser")


FIGURES_JS = """
var out = {};
document.querySelectorAll('.js-plotly-plot').forEach(function (plot) {
    var holder = plot.closest('[id]');
    if (!holder || !plot.data) { return; }
    var layout = plot.layout || {};
    var title = layout.title || {};
    out[holder.id] = {
        traces: plot.data.map(function (t) {
            var marker = t.marker || {}, line = t.line || {}, node = t.node || {}, err = t.error_y || {};
            return {type: t.type || 'scatter', name: t.name || null, x: t.x || null, y: t.y || null,
                    errors: err.array || null,
                    marker: marker.color || null, line: line.color || null, dash: line.dash || null,
                    labels: node.label || null, nodes: node.color || null};
        }),
        annotations: Array.prototype.map.call(plot.querySelectorAll('.annotation-text'),
                                               function (a) { return a.textContent; }),
        subtitle: (title.subtitle || {}).text || null,
        ticks: plot.querySelectorAll('.xtick text, .ytick text').length,
        ranges: ['xaxis', 'yaxis'].map(function (name) {  // numeric axes only: categories centre on 0
            var axis = (plot._fullLayout || {})[name] || {};
            return axis.type === 'linear' ? axis.range : null;
        })
    };
});
return out;
"""


def figures_json(driver: Any) -> dict[str, dict[str, Any]]:
    """Return, per dcc.Graph id on the page, what plotly drew: each trace's type, name, x, y, error bars,
    marker and line colour (and a Sankey's node labels and colours), the annotation texts shown, the
    subtitle, how many axis tick labels are drawn and the ranges plotly laid out for numeric x and y axes."""
    return driver.execute_script(FIGURES_JS)


def model_colours_drawn(figures: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """Return the colours each model is drawn in across `figures` (figures_json): Sankey nodes (`<model>
    (first)`, `<model> (resolved)`), per-model traces (resolution, cost per model) and per-model bars."""
    seen: dict[str, set[str]] = {}
    per_trace = {"chains-resolution", "costs-model"}
    per_bar = {"refusals-model"}
    for graph_id, fig in figures.items():
        for t in fig["traces"]:
            if t["type"] == "sankey":
                for label, colour in zip(t["labels"], t["nodes"], strict=True):
                    model = label.rsplit(" (", 1)[0]
                    seen.setdefault(model, set()).add(colour)
            elif graph_id in per_trace and t["name"]:
                seen.setdefault(t["name"], set()).add(t["marker"])
            elif graph_id in per_bar and t["type"] == "bar":
                colours = t["marker"] if isinstance(t["marker"], list) else [t["marker"]] * len(t["x"])
                for model, colour in zip(t["x"], colours, strict=True):
                    seen.setdefault(model, set()).add(colour)
    return seen


TABLE_FIT_JS = """
var out = [];
document.querySelectorAll('.panel-body').forEach(function (body) {
    var holder = body.id || (body.closest('[id]') || {}).id;
    body.querySelectorAll('table').forEach(function (table) {
        var box = body.getBoundingClientRect(), t = table.getBoundingClientRect();
        var heads = Array.prototype.map.call(table.querySelectorAll('th'), function (th) {
            var r = th.getBoundingClientRect();
            return {text: th.textContent, left: r.left, right: r.right};
        });
        out.push({panel: holder, box_left: box.left, box_right: box.right, table_right: t.right,
                  scroll_width: body.scrollWidth, client_width: body.clientWidth, heads: heads,
                  viewport: window.innerWidth, page_width: document.documentElement.clientWidth});
    });
});
return out;
"""


def table_boxes(driver: Any) -> list[dict[str, Any]]:
    """Return, per table in a panel: the panel's box (left, right), the table's right edge, the panel's
    scroll and client widths, each header cell's left and right, and the viewport's width (all in CSS px)."""
    return driver.execute_script(TABLE_FIT_JS)


def sample_variant(sample: Path, dest: Path, *statements: str) -> Path:
    """Return `dest`, a copy of the sample database `sample` changed by the SQL `statements` (for data the
    committed sample does not hold: redacted stop reasons, a partial week)."""
    import shutil

    from fallbackscope.core.store import connect

    shutil.copy(sample, dest)
    con = connect(dest)
    try:
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()
    return dest


#: the sample with response logging off on two days: those attempts keep outcome ok but lose their stop reason
REDACTED_SQL = ("UPDATE attempts SET stop_reason = NULL WHERE outcome = 'ok' "
                "AND ts < TIMESTAMPTZ '2026-10-21 00:00:00+00'")
#: the sample cut after the first day of its last week (2026-W46 then holds data on 1 of 7 days)
PARTIAL_WEEK_SQL = "DELETE FROM attempts WHERE ts >= TIMESTAMPTZ '2026-11-10 00:00:00+00'"


# ---------------------------------------------------------------------------- the Flask test client


def page_outputs(client: Any, page: str, filters: dict[str, Any]) -> dict[str, Any]:
    """Return the outputs (component id → {property: value}) of the callback of `page` (its id prefix) for the
    `filters` store, asked through a Flask test client of the app."""
    deps = page_callbacks(json.loads(client.get("/_dash-dependencies").data))
    response = client.post("/_dash-update-component", json=callback_payload(deps[page], {"filters.data": filters}))
    assert response.status_code == 200, response.status_code
    return json.loads(response.data)["response"]


def texts(component: Any) -> list[str]:
    """Return every string inside a serialised Dash component tree."""
    out: list[str] = []
    if isinstance(component, str):
        out.append(component)
    elif isinstance(component, list):
        for c in component:
            out += texts(c)
    elif isinstance(component, dict):
        out += texts(component.get("props", {}).get("children"))
    return out


def find_ids(component: Any, found: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return every component with an id inside a serialised Dash component tree, by id."""
    found = {} if found is None else found
    if isinstance(component, list):
        for c in component:
            find_ids(c, found)
    elif isinstance(component, dict):
        props = component.get("props", {})
        if isinstance(props.get("id"), str):
            found[props["id"]] = component
        find_ids(props.get("children"), found)
    return found
