"""Binding and auth: loopback by default; anywhere else only with a password, and then every route asks."""

from __future__ import annotations

import base64
import urllib.request

import pytest
from dashboard_support import ServerThread, http_get

from dashboard.app import PASSWORD_ENV, USER_ENV, create_app, credentials, is_loopback, serve
from fallbackscope.core.errors import ExitCode, FallbackscopeError, UsageError

ROUTES = ["/", "/refusals", "/_dash-layout", "/_dash-dependencies", "/assets/style.css"]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def no_password(monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.delenv(USER_ENV, raising=False)


@pytest.fixture
def captured(monkeypatch):
    """Replace waitress.create_server: record what would be served; its server's run() returns at once."""
    import types

    import waitress

    served: dict = {}

    def create_server(wsgi, **kw):
        served.update(app=wsgi, **kw)
        return types.SimpleNamespace(run=lambda: None)

    monkeypatch.setattr(waitress, "create_server", create_server)
    return served


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2", "[::1]"])
def test_loopback_hosts_need_no_password(host):
    assert is_loopback(host)
    assert credentials(host, {}) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "dashboard.example.com"])
def test_other_hosts_need_a_password(host):
    assert not is_loopback(host)
    with pytest.raises(UsageError) as err:
        credentials(host, {})
    message = str(err.value)
    assert PASSWORD_ENV in message and "\n" not in message and message.endswith(".")
    assert err.value.exit_code == ExitCode.USAGE


def test_a_password_from_the_environment_is_used_with_the_default_or_given_user():
    assert credentials("0.0.0.0", {PASSWORD_ENV: "s3cret"}) == ("fallbackscope", "s3cret")
    assert credentials("0.0.0.0", {PASSWORD_ENV: "s3cret", USER_ENV: "ops"}) == ("ops", "s3cret")
    assert credentials("127.0.0.1", {PASSWORD_ENV: "s3cret"}) == ("fallbackscope", "s3cret")
    with pytest.raises(UsageError):
        credentials("0.0.0.0", {PASSWORD_ENV: ""})  # an empty password is no password


def test_serve_refuses_all_interfaces_without_a_password(sample, no_password, captured):
    with pytest.raises(UsageError, match=PASSWORD_ENV):
        serve(sample[0], host="0.0.0.0", port=8050)
    assert captured == {}  # nothing was bound


def test_serve_refuses_a_missing_database(tmp_path, no_password, captured):
    with pytest.raises(FallbackscopeError, match="no such database"):
        serve(tmp_path / "none.duckdb")
    assert captured == {}


def test_serve_binds_loopback_by_default_without_auth(sample, no_password, captured):
    serve(sample[0])
    assert (captured["host"], captured["port"]) == ("127.0.0.1", 8050)
    assert captured["app"].test_client().get("/").status_code == 200


def test_serve_on_all_interfaces_with_a_password_guards_every_route(sample, monkeypatch, captured):
    monkeypatch.setenv(PASSWORD_ENV, "s3cret")
    monkeypatch.delenv(USER_ENV, raising=False)
    serve(sample[0], host="0.0.0.0", port=9999)
    assert captured["host"] == "0.0.0.0"
    client = captured["app"].test_client()
    assert client.get("/").status_code == 401
    assert client.get("/", headers=basic("fallbackscope", "s3cret")).status_code == 200


@pytest.fixture(scope="module")
def guarded(sample):
    return create_app(sample[0], auth=("fallbackscope", "s3cret")).server.test_client()


@pytest.mark.parametrize("route", ROUTES)
def test_without_credentials_every_route_answers_401(guarded, route):
    response = guarded.get(route)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_callbacks_are_guarded_too(guarded):
    assert guarded.post("/_dash-update-component", json={}).status_code == 401


@pytest.mark.parametrize("user, password", [("fallbackscope", "wrong"), ("admin", "s3cret"), ("", "")])
def test_wrong_credentials_answer_401(guarded, user, password):
    assert guarded.get("/", headers=basic(user, password)).status_code == 401


@pytest.mark.parametrize("route", ROUTES)
def test_with_credentials_every_route_answers_200(guarded, route):
    assert guarded.get(route, headers=basic("fallbackscope", "s3cret")).status_code == 200


def test_basic_auth_over_real_http(sample):
    app = create_app(sample[0], auth=("ops", "pä55 wörd"))
    with ServerThread(app.server) as server:
        assert http_get(server.url + "/_dash-layout")[0] == 401
        request = urllib.request.Request(server.url + "/_dash-layout", headers=basic("ops", "pä55 wörd"))
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            assert response.status == 200

