"""The app answers every page and callback from the sample database, and filters change what it shows."""

from __future__ import annotations

import json
import re

import pytest
from dashboard_support import callback_payload, page_callbacks, texts

from dashboard.app import create_app
from dashboard.components import PAGES
from dashboard.filters import Filters

DEFAULT = Filters.from_query("?from=2026-10-19&to=2026-11-15").to_store()


@pytest.fixture(scope="module")
def client(sample):
    return create_app(sample[0]).server.test_client()


def dependencies(client) -> list[dict]:
    response = client.get("/_dash-dependencies")
    assert response.status_code == 200
    return json.loads(response.data)


def post(client, dependency: dict, values: dict) -> tuple[int, dict]:
    response = client.post("/_dash-update-component", json=callback_payload(dependency, values))
    body = json.loads(response.data) if response.status_code == 200 else {}
    return response.status_code, body.get("response", {})


@pytest.mark.parametrize("path", [p for p, _ in PAGES])
def test_every_page_is_served(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert b"_dash-renderer" in response.data


def test_every_page_has_one_callback_fed_by_the_filters(client):
    assert set(page_callbacks(dependencies(client))) == {"overview", "refusals", "chains", "costs",
                                                          "reliability", "data"}


@pytest.mark.parametrize("page", ["overview", "refusals", "chains", "costs", "reliability", "data"])
def test_every_page_callback_answers_with_charts_of_data(client, page):
    status, response = post(client, page_callbacks(dependencies(client))[page], {"filters.data": DEFAULT})
    assert status == 200
    figures = [v["figure"] for v in response.values() if "figure" in v]
    assert figures, "the page has charts"
    drawn = [f for f in figures if f["data"]]
    assert len(drawn) >= max(1, len(figures) - 1)  # at most one chart of a page may legitimately be empty


def test_overview_shows_the_ground_truth_refusal_rate(client, sample):
    truth = sample[1]
    _, response = post(client, page_callbacks(dependencies(client))["overview"], {"filters.data": DEFAULT})
    cards = texts(response["overview-kpis"]["children"])
    rate = f"{truth['refused_chains'] / truth['chains'] * 100:.1f}%"
    assert rate in cards
    assert f"{truth['refused_chains']:,} of {truth['chains']:,}" in " ".join(cards)


def test_a_workload_filter_changes_what_a_page_shows(client):
    dep = page_callbacks(dependencies(client))["refusals"]
    _, everything = post(client, dep, {"filters.data": DEFAULT})
    one = Filters.from_store(DEFAULT)
    one = Filters(one.since, one.until, ("code-assist",)).to_store()
    _, narrowed = post(client, dep, {"filters.data": one})
    daily = "refusals-daily"
    assert narrowed[daily]["figure"]["data"][1]["y"] != everything[daily]["figure"]["data"][1]["y"]
    assert "workload: code-assist" in " ".join(texts(narrowed["refusals-status"]["children"]))


def test_a_failure_while_computing_is_a_message_not_a_server_error(sample, monkeypatch, caplog):
    import sys

    client = create_app(sample[0]).server.test_client()
    monkeypatch.setattr(sys.modules["pages.overview"], "daily_rates", lambda view: 1 / 0)
    status, out = post(client, page_callbacks(dependencies(client))["overview"], {"filters.data": DEFAULT})
    assert status == 200
    assert "could not be computed" in json.dumps(out)
    assert "ZeroDivisionError" in caplog.text


def test_no_filters_yet_means_no_update(client):
    response = client.post("/_dash-update-component", json=callback_payload(
        page_callbacks(dependencies(client))["overview"], {"filters.data": None}))
    assert response.status_code == 204


def sync(client) -> dict:
    return next(d for d in dependencies(client) if "filters.data" in d["output"] and "url.search" in d["output"])


def test_an_address_without_filters_shows_the_last_28_days(client):
    status, out = post(client, sync(client), {"url.search": ""})
    assert status == 200
    assert out["filters"]["data"] == DEFAULT
    assert out["f-range"]["start_date"] == "2026-10-19" and out["f-range"]["end_date"] == "2026-11-15"
    assert [o["value"] for o in out["f-workload"]["options"]][:2] == ["batch-extract", "code-assist"]
    assert "url" not in out  # the address is left as it is


def test_an_address_with_filters_sets_the_controls(client):
    _, out = post(client, sync(client), {"url.search": "?from=2026-11-02&to=2026-11-08&workload=code-assist"
                                                       "&surface=bedrock"})
    assert out["f-workload"]["value"] == ["code-assist"]
    assert out["f-surface"]["value"] == ["bedrock"]
    assert out["filters"]["data"]["since"] == "2026-11-02"


def test_changing_a_control_writes_the_filters_into_the_address(client):
    dep = sync(client)
    payload = callback_payload(dep, {"url.search": "", "f-range.start_date": "2026-11-02",
                                     "f-range.end_date": "2026-11-08", "f-model.value": ["claude-opus-4-8"],
                                     "filters.data": DEFAULT})
    payload["changedPropIds"] = ["f-model.value"]
    response = client.post("/_dash-update-component", json=payload)
    out = json.loads(response.data)["response"]
    assert out["url"]["search"] == "?from=2026-11-02&to=2026-11-08&model=claude-opus-4-8"
    assert out["filters"]["data"]["models"] == ["claude-opus-4-8"]


def test_quick_range_buttons_pick_the_last_days_with_data(client):
    payload = callback_payload(sync(client), {"url.search": "", "f-last7.n_clicks": 1, "filters.data": DEFAULT})
    payload["changedPropIds"] = ["f-last7.n_clicks"]
    out = json.loads(client.post("/_dash-update-component", json=payload).data)["response"]
    assert out["url"]["search"] == "?from=2026-11-09&to=2026-11-15"


def test_navigation_links_keep_the_filters(client):
    dep = next(d for d in dependencies(client) if "nav" in d["output"])
    outputs = [{"id": {"type": "nav", "page": path}, "property": "href"} for path, _ in PAGES]
    payload = {"output": dep["output"], "outputs": outputs, "changedPropIds": ["url.search"], "state": [],
               "inputs": [{"id": "url", "property": "search", "value": "?workload=code-assist"}]}
    response = client.post("/_dash-update-component", json=payload)
    assert response.status_code == 200
    hrefs = json.dumps(json.loads(response.data)["response"])
    assert "/refusals?workload=code-assist" in hrefs and "/data?workload=code-assist" in hrefs


def test_a_page_says_so_when_the_database_cannot_be_read(tmp_path):
    client = create_app(tmp_path / "missing.duckdb").server.test_client()
    dep = page_callbacks(dependencies(client))["overview"]
    status, out = post(client, dep, {"filters.data": DEFAULT})
    assert status == 200
    assert re.search("no such database", json.dumps(out))


def test_two_apps_in_one_process_each_read_their_own_database(sample, tmp_path):
    other = create_app(tmp_path / "missing.duckdb").server.test_client()
    mine = create_app(sample[0]).server.test_client()
    for client, expect in ((mine, "9.4%"), (other, "no such database")):
        _, out = post(client, page_callbacks(dependencies(client))["overview"], {"filters.data": DEFAULT})
        assert expect in json.dumps(out)
        assert len(page_callbacks(dependencies(client))) == 6


POLICY = """
[workloads.support-chat]
chain = ["claude-fable-5", "claude-opus-4-8"]
refusal_slo = 0.5

[workloads.code-assist]
chain = ["claude-fable-5", "claude-opus-4-8"]
"""


def test_a_policy_file_replaces_the_stored_policy(sample, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    client = create_app(sample[0], policy).server.test_client()
    deps = page_callbacks(dependencies(client))
    _, overview = post(client, deps["overview"], {"filters.data": DEFAULT})
    slo_rows = json.dumps(overview["overview-slo"]["children"])
    assert "50.0%" in slo_rows  # support-chat's target
    _, chains = post(client, deps["chains"], {"filters.data": DEFAULT})
    advice = " ".join(texts(chains["chains-advice"]["children"]))
    assert "claude-fable-5" in advice and "claude-opus-4-8" in advice
    assert any(word in advice for word in ("start higher", "keep", "insufficient data"))


def test_a_bad_policy_file_is_refused_when_the_app_is_made(sample, tmp_path):
    from fallbackscope.core.errors import UsageError

    bad = tmp_path / "bad.toml"
    bad.write_text("[workloads.x]\nrefusal_slo = 7\n")
    with pytest.raises(UsageError, match="bad.toml"):
        create_app(sample[0], bad)


def test_an_empty_database_gives_empty_pages_not_errors(tmp_path):
    from fallbackscope.core.store import connect

    db = tmp_path / "empty.duckdb"
    connect(db).close()
    client = create_app(db).server.test_client()
    status, out = post(client, sync(client), {"url.search": ""})
    assert status == 200
    store = out["filters"]["data"]
    for name, dep in page_callbacks(dependencies(client)).items():
        status, response = post(client, dep, {"filters.data": store})
        assert status == 200, name
        assert response and "could not be computed" not in json.dumps(response), name
