"""In headless Chromium: workload, model and category names that are HTML (`<script>`, `<img onerror>`,
`<svg onload>`, `<a href>`) are shown as text on the dashboard's pages — no element, handler, link or
alert comes of them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from dashboard_support import ServerThread, graph_data, severe, wait_settled
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.support.ui import WebDriverWait

from dashboard.app import create_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "security"))

import hostile  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

#: what the page itself puts there, against which anything the names brought in would stand out
INJECTED_JS = """
var found = {elements: [], handlers: [], links: []};
document.querySelectorAll('img, iframe, object, embed, foreignObject').forEach(function (e) {
    found.elements.push(e.tagName);
});
document.querySelectorAll('script').forEach(function (e) {  // Dash's own: served from this origin
    var src = e.getAttribute('src');
    if ((src !== null && src.charAt(0) !== '/') || (e.textContent || '').indexOf('xss-') >= 0) {
        found.elements.push('SCRIPT ' + src);
    }
});
document.querySelectorAll('*').forEach(function (e) {
    for (var i = 0; i < e.attributes.length; i++) {
        if (e.attributes[i].name.indexOf('on') === 0) { found.handlers.push(e.tagName + ' ' + e.attributes[i].name); }
    }
});
document.querySelectorAll('a').forEach(function (a) {
    var href = a.getAttribute('href') || a.getAttribute('xlink:href') || '';
    if (href.indexOf('evil.example') >= 0 || href.indexOf('javascript:') === 0) { found.links.push(href); }
});
return found;
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = hostile.build(tmp_path_factory.mktemp("hostile-browser"))
    with ServerThread(create_app(db).server) as running:
        yield running


def test_hostile_names_are_shown_as_text_on_every_charting_page(chrome, server):
    query = "?from=2026-11-02&to=2026-11-15"
    for path, chart in [("/chains", "chains-sankey"), ("/refusals", "refusals-category"),
                        ("/costs", "costs-workload")]:
        chrome.get_log("browser")
        chrome.get(server.url + path + query)
        WebDriverWait(chrome, 90).until(lambda d, c=chart: c in graph_data(d))
        wait_settled(chrome, 60)
        with pytest.raises(NoAlertPresentException):
            chrome.switch_to.alert.text  # noqa: B018 - no alert() ran
        found = chrome.execute_script(INJECTED_JS)
        assert found == {"elements": [], "handlers": [], "links": []}, (path, found)
        assert severe(chrome.get_log("browser")) == [], path
    # the names are there, as text: the Sankey's node labels and the filters' choices
    chrome.get(server.url + "/chains" + query)
    WebDriverWait(chrome, 90).until(lambda d: "chains-sankey" in graph_data(d))
    wait_settled(chrome, 60)
    sankey = chrome.execute_script("return document.getElementById('chains-sankey').textContent")
    assert hostile.MODELS[0] + " (first)" in sankey
    page_text = chrome.execute_script("return document.body.textContent")
    assert hostile.SCRIPT in page_text or hostile.IMG in page_text
