"""The fingerprint key file is private (created 0600, refused when open to others), and the dashboard binds
beyond loopback only behind a password."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import urllib.request

import duckdb
import pytest
from builders import exchange, message, request, write_jsonl
from dashboard_support import free_port, http_get, wait_for

from fallbackscope.core.config import key_path_for, load_key
from fallbackscope.core.errors import FallbackscopeError

PASSWORD_ENV = "FALLBACKSCOPE_DASHBOARD_PASSWORD"


def cli(*args, env: dict | None = None, drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "fallbackscope.cli", *map(str, args)], capture_output=True,
                          text=True, env={**environ, "COLUMNS": "200"}, timeout=300)


def one_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.fixture
def no_key_env(monkeypatch):
    monkeypatch.delenv("FALLBACKSCOPE_KEY", raising=False)


def test_the_key_file_is_created_0600_whatever_the_umask(tmp_path, no_key_env):
    db = tmp_path / "d.duckdb"
    old = os.umask(0)  # a umask that would leave a new file world-writable
    try:
        key = load_key(db)
    finally:
        os.umask(old)
    path = key_path_for(db)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 64 and load_key(db) == key  # created once, then read


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666, 0o700 | 0o070])
def test_a_key_file_open_to_other_users_is_refused(tmp_path, no_key_env, mode):
    db = tmp_path / "d.duckdb"
    path = key_path_for(db)
    path.write_text("ab" * 32 + "\n")
    path.chmod(mode)
    with pytest.raises(FallbackscopeError) as err:
        load_key(db)
    message = str(err.value)
    assert f"chmod 600 {path}" in message and f"{mode:04o}" in message and "\n" not in message
    assert "ab" * 32 not in message  # the key itself is never printed


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_private_key_file_is_read(tmp_path, no_key_env, mode):
    db = tmp_path / "d.duckdb"
    path = key_path_for(db)
    path.write_text("cd" * 32 + "\n")
    path.chmod(mode)
    assert load_key(db) == ("cd" * 32).encode()


def test_ingest_with_an_open_key_file_fails_in_one_line_and_loads_nothing(tmp_path):
    db = tmp_path / "d.duckdb"
    log = write_jsonl(tmp_path / "a.jsonl", [exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"),
                                                      message("m1", "claude-haiku-4-5"))])
    proc = cli("ingest", log, "--db", db, drop=("FALLBACKSCOPE_KEY",))
    assert proc.returncode == 0, proc.stderr
    key_path_for(db).chmod(0o644)
    log2 = write_jsonl(tmp_path / "b.jsonl", [exchange("2026-11-02T00:01:00Z", request("claude-haiku-4-5"),
                                                       message("m2", "claude-haiku-4-5"))])
    proc = cli("ingest", log2, "--db", db, drop=("FALLBACKSCOPE_KEY",))
    assert proc.returncode == 1
    assert "chmod 600" in one_line(proc)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM attempts").fetchone()[0] == 1
    con.close()
    # the same key from the environment needs no file at all
    proc = cli("ingest", log2, "--db", db, env={"FALLBACKSCOPE_KEY": key_path_for(db).read_text().strip()})
    assert proc.returncode == 0, proc.stderr


# -------------------------------------------------------------------------------- dashboard binding


@pytest.fixture(scope="module")
def small_db(tmp_path_factory):
    from ingest.loader import ingest_paths

    folder = tmp_path_factory.mktemp("bind")
    log = write_jsonl(folder / "a.jsonl", [exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"),
                                                    message("m1", "claude-haiku-4-5"))])
    db = folder / "d.duckdb"
    ingest_paths(db, [str(log)])
    return db


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com", "127.0.0.1.evil.example"])
def test_a_non_local_bind_without_a_password_is_refused_in_one_line(small_db, host):
    proc = cli("dashboard", "--db", small_db, "--host", host, "--port", free_port(), drop=(PASSWORD_ENV,))
    assert proc.returncode == 2
    line = one_line(proc)
    assert PASSWORD_ENV in line and "127.0.0.1" in line
    assert proc.stdout == ""  # nothing was served


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def get(url: str, headers: dict[str, str] | None = None) -> int:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310 - loopback
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_non_local_bind_with_a_password_asks_for_it_on_every_route(small_db):
    port = free_port()
    env = {**os.environ, PASSWORD_ENV: "s3cret pässword", "FALLBACKSCOPE_DASHBOARD_USER": "ops"}
    server = subprocess.Popen([sys.executable, "-m", "fallbackscope.cli", "dashboard", "--db", str(small_db),
                               "--host", "0.0.0.0", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: server.poll() is not None or http_get(url + "/_dash-layout")[0] in (200, 401), 90,
                 "the dashboard to answer")
        assert server.poll() is None, server.stderr.read()
        good = basic("ops", "s3cret pässword")
        for route in ("/", "/refusals", "/_dash-layout", "/_dash-dependencies", "/assets/style.css"):
            assert get(url + route) == 401
            assert get(url + route, basic("ops", "wrong")) == 401
            assert get(url + route, basic("fallbackscope", "s3cret pässword")) == 401
            assert get(url + route, good) == 200
        post = urllib.request.Request(url + "/_dash-update-component", data=b"{}", method="POST",
                                      headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(post, timeout=30)  # noqa: S310 - loopback
            status = 200
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status == 401
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)
