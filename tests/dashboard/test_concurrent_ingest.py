"""The dashboard keeps answering while `fallbackscope ingest` writes the same database in another process,
and shows the new data once the load is done."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time

import pytest
from dashboard_support import SAMPLE_KEY, ServerThread, callback_payload, http_get, http_post_json, page_callbacks

from dashboard.app import create_app
from dashboard.data import DataSource
from fallbackscope.sample import SampleSpec, generate

pytestmark = pytest.mark.slow

NEW_DAYS = 7


def footer_attempts(url: str, sync: dict) -> int:
    """The attempt count the footer shows (from the filter-sync callback)."""
    status, body = http_post_json(url + "/_dash-update-component", callback_payload(sync, {"url.search": ""}))
    assert status == 200
    footer = json.loads(body)["response"]["footer"]["children"]
    return int(footer[0]["props"]["children"].split()[0].replace(",", ""))


def loads_shown(url: str, data_page: dict) -> int:
    """The number of loads the data page shows."""
    status, body = http_post_json(url + "/_dash-update-component",
                                  callback_payload(data_page, {"filters.data": {"since": None}}))
    assert status == 200
    status_line = json.loads(body)["response"]["data-status"]["children"]
    return int(status_line[0]["props"]["children"].split()[0].replace(",", ""))


def test_requests_are_answered_during_an_ingest_and_the_new_data_shows_after(sample_copy, tmp_path, sample):
    logs = tmp_path / "new-logs"
    new = generate(logs, SampleSpec(seed=99, days=NEW_DAYS, start=dt.date(2026, 11, 16), chains_per_day=200,
                                    with_batch=False))
    files = sorted(str(p) for p in logs.glob("exchange-*.jsonl"))
    assert len(files) == NEW_DAYS

    app = create_app(sample_copy, source=DataSource(sample_copy, settle_seconds=0.5, fresh_wait=0.5))
    with ServerThread(app.server) as server:
        deps = json.loads(http_get(server.url + "/_dash-dependencies")[1])
        sync = next(d for d in deps if "url.search" in d["output"] and "filters.data" in d["output"])
        pages = page_callbacks(deps)
        before_attempts = footer_attempts(server.url, sync)
        before_loads = loads_shown(server.url, pages["data"])
        assert before_attempts == sample[1]["attempts"]

        env = {**os.environ, "FALLBACKSCOPE_KEY": SAMPLE_KEY}
        command = [sys.executable, "-m", "fallbackscope.cli", "ingest", *files, "--db", str(sample_copy)]
        ingest = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        statuses: list[tuple[str, int]] = []
        store = None
        started = time.monotonic()
        try:
            while ingest.poll() is None and time.monotonic() - started < 300:
                for path in ("/", "/refusals", "/data"):
                    statuses.append((path, http_get(server.url + path)[0]))
                status, body = http_post_json(server.url + "/_dash-update-component",
                                              callback_payload(sync, {"url.search": ""}))
                statuses.append(("sync", status))
                if status == 200:
                    store = json.loads(body)["response"].get("filters", {}).get("data", store)
                for name, dep in pages.items():
                    statuses.append((name, http_post_json(server.url + "/_dash-update-component",
                                                          callback_payload(dep, {"filters.data": store}))[0]))
        finally:
            out, err = ingest.communicate(timeout=300)
        print(f"{len(statuses)} requests during a {time.monotonic() - started:.1f} s ingest")
        assert ingest.returncode == 0, err[-2000:]
        assert len(statuses) >= 10, "requests were made while the ingest ran"
        assert [s for s in statuses if s[1] >= 500] == []
        assert {s[1] for s in statuses} <= {200, 204}

        # a view read between two files of the load may still be shown for a moment: wait for the final one
        want = (before_attempts + new["attempts"], before_loads + NEW_DAYS)
        deadline = time.monotonic() + 60
        while (shown := (footer_attempts(server.url, sync), loads_shown(server.url, pages["data"]))) != want:
            assert time.monotonic() < deadline, f"the load's data did not show within 60 s: {shown} != {want}"
            time.sleep(0.25)
