"""Headless Chromium for the browser tests: installed once per session if missing, network disabled."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               # belt and braces besides the offline emulation: no name resolves, no proxy answers
               "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--window-size=1280,1600")


@pytest.fixture(scope="session")
def chromium_paths() -> tuple[Path, Path]:
    """Return (chromium, chromedriver), installing the Debian packages when they are missing."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if shutil.which("apt-get") is None:
            pytest.skip("chromium/chromedriver missing and apt-get not available to install them")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "chromium", "chromium-driver"]
        result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:  # stale package lists: refresh them once and retry
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True, timeout=600)
            result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0 or not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            pytest.skip(f"could not install chromium and chromium-driver with apt-get: {tail[0]}")
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture(scope="module")
def browser(chromium_paths, tmp_path_factory):
    """A headless Chromium (selenium) with a fresh profile, the browser console logged, the network offline."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = chromium_paths
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(chromedriver)), options=options)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def dashboard_sample(tmp_path_factory) -> tuple[Path, dict]:
    """The committed sample in a database built once per session: (path, ground truth). Read-only use."""
    from dashboard_support import load_sample

    db = tmp_path_factory.mktemp("dashboard-browser") / "sample.duckdb"
    return db, load_sample(db)


@pytest.fixture(scope="module")
def chrome(chromium_paths, tmp_path_factory):
    """Chromium from the shared `chromium_paths` fixture that reaches the dashboard on 127.0.0.1 (not the
    shared `browser`, whose offline network and host rules would keep it from it)."""
    from dashboard_support import start_browser

    driver = start_browser(*chromium_paths, tmp_path_factory.mktemp("dashboard-profile"))
    try:
        yield driver
    finally:
        driver.quit()
