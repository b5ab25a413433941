"""The Dash app: `create_app(db_path)` builds it, `serve(db_path, host, port)` runs it.

The app reads the database read-only (see `dashboard.data`); it never writes to it. Bound to a loopback
address it is open to local users; bound anywhere else it requires a password from
`$FALLBACKSCOPE_DASHBOARD_PASSWORD` (HTTP basic auth on every route, user `fallbackscope` or
`$FALLBACKSCOPE_DASHBOARD_USER`) and refuses to start without one.
"""

from __future__ import annotations

import datetime as dt
import errno
import hmac
import ipaddress
import os
from pathlib import Path
from typing import Any

import dash
import flask
from dash import ALL, Input, Output, State, ctx, html, no_update
from dash import _callback as dash_callbacks  # the process-wide registry behind @dash.callback

from dashboard import components
from dashboard.data import DataSource, DataUnavailable
from dashboard.filters import DEFAULT_DAYS, Filters
from fallbackscope.core.errors import FallbackscopeError, UsageError

PASSWORD_ENV = "FALLBACKSCOPE_DASHBOARD_PASSWORD"
USER_ENV = "FALLBACKSCOPE_DASHBOARD_USER"
DEFAULT_USER = "fallbackscope"
HERE = Path(__file__).resolve().parent


def create_app(db_path: str | Path, policy_path: str | Path | None = None, *,
               auth: tuple[str, str] | None = None, source: DataSource | None = None) -> dash.Dash:
    """Return the dashboard app over the database at `db_path` (nothing is read until a page asks).

    `policy_path` replaces the stored policy for this app (docs/metrics.md §5); `auth` = (user, password) guards
    every route with HTTP basic auth; `source` replaces the default DataSource (tests tune its timings).
    Raises UsageError when the policy file is invalid.
    """
    data = source or DataSource(db_path, policy_path)
    # Page modules register their callbacks with @dash.callback into a process-wide list that the next
    # app to serve a request takes. Start from an empty list and bind what the pages register to this
    # app right away, so that several apps (as in tests) can live in one process.
    dash_callbacks.GLOBAL_CALLBACK_LIST.clear()
    dash_callbacks.GLOBAL_CALLBACK_MAP.clear()
    app = dash.Dash(
        __name__, use_pages=True, pages_folder=str(HERE / "pages"), assets_folder=str(HERE / "assets"),
        title="fallbackscope", update_title=None, serve_locally=True, suppress_callback_exceptions=False,
    )
    for key in list(dash_callbacks.GLOBAL_CALLBACK_MAP):
        app.callback_map[key] = dash_callbacks.GLOBAL_CALLBACK_MAP.pop(key)
    app._callback_list.extend(dash_callbacks.GLOBAL_CALLBACK_LIST)  # noqa: SLF001 - see above
    dash_callbacks.GLOBAL_CALLBACK_LIST.clear()

    app.server.extensions[components.EXTENSION] = data
    app.layout = lambda: components.shell(dash.page_container)
    _register_shell_callbacks(app)
    if auth is not None:
        install_basic_auth(app.server, *auth)
    return app


# ---------------------------------------------------------------------------- the shared filters


def _register_shell_callbacks(app: dash.Dash) -> None:
    @app.callback(
        Output("f-range", "start_date"), Output("f-range", "end_date"),
        Output("f-range", "min_date_allowed"), Output("f-range", "max_date_allowed"),
        Output("f-workload", "options"), Output("f-workload", "value"),
        Output("f-model", "options"), Output("f-model", "value"),
        Output("f-surface", "options"), Output("f-surface", "value"),
        Output("url", "search"), Output("filters", "data"), Output("footer", "children"),
        Input("url", "search"), Input("f-range", "start_date"), Input("f-range", "end_date"),
        Input("f-workload", "value"), Input("f-model", "value"), Input("f-surface", "value"),
        Input("f-last7", "n_clicks"), Input("f-last28", "n_clicks"), Input("f-all", "n_clicks"),
        State("filters", "data"),
    )
    def sync_filters(search: str | None, start: str | None, end: str | None, workloads: list[str] | None,
                     models: list[str] | None, surfaces: list[str] | None, _n7: int, _n28: int, _nall: int,
                     current: dict[str, Any] | None) -> tuple[Any, ...]:
        """Keep the URL, the filter controls and the `filters` store in step (the URL wins on load)."""
        trigger = ctx.triggered_id
        try:
            dims = components.source().dimensions().value
            first, last, footer = dims.first_day, dims.last_day, _footer(dims)
            options = (dims.workloads, dims.models, dims.surfaces)
        except DataUnavailable as exc:
            first = last = None
            footer, options = str(exc), ((), (), ())
        controls = Filters(_date(start), _date(end), tuple(workloads or ()), tuple(models or ()),
                           tuple(surfaces or ()))
        url_out: Any = no_update
        if trigger is None or trigger == "url":
            filters = Filters.from_query(search).with_default_range(first, last)
        elif trigger in ("f-last7", "f-last28", "f-all"):
            days = {"f-last7": 7, "f-last28": DEFAULT_DAYS}.get(trigger)
            since = first if days is None else (last - dt.timedelta(days=days - 1) if last else None)
            if since is not None and first is not None and since < first:
                since = first
            filters = Filters(since, last, controls.workloads, controls.models, controls.surfaces)
            url_out = filters.to_query()
        else:
            filters = controls.with_default_range(first, last)
            url_out = filters.to_query()
        store = filters.to_store()
        return (
            store["since"], store["until"],
            first.isoformat() if first else None, last.isoformat() if last else None,
            _options(options[0], filters.workloads), list(filters.workloads),
            _options(options[1], filters.models), list(filters.models),
            _options(options[2], filters.surfaces), list(filters.surfaces),
            url_out if url_out != (search or "") else no_update,
            store if store != current else no_update,
            footer,
        )

    @app.callback(Output({"type": "nav", "page": ALL}, "href"), Input("url", "search"))
    def nav_links(search: str | None) -> list[str]:
        """Carry the filters' query string along in every navigation link."""
        return [path + (search or "") for path, _ in components.PAGES]


def _date(value: Any) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _options(names: tuple[str, ...], chosen: tuple[str, ...]) -> list[dict[str, str]]:
    # a name in the URL that the database does not (or no longer) hold stays choosable, so it can be removed
    every = sorted(set(names) | set(chosen))
    return [{"label": n, "value": n} for n in every]


def _footer(dims: Any) -> list[Any]:
    span = f"{dims.first_day} – {dims.last_day}" if dims.first_day else "no attempts yet"
    return [html.Span(f"{dims.attempts:,} attempts · {span} (UTC)"),
            html.Span(" · read-only · chains belong to the day of their first attempt", className="muted")]


# ---------------------------------------------------------------------------- auth and serving


def install_basic_auth(server: flask.Flask, user: str, password: str) -> None:
    """Require HTTP basic auth with `user` and `password` on every route of `server` (401 otherwise)."""
    want_user, want_password = user.encode(), password.encode()

    def require_password() -> flask.Response | None:
        given = flask.request.authorization
        if given is not None and given.type == "basic":
            ok_user = hmac.compare_digest((given.username or "").encode(), want_user)
            ok_password = hmac.compare_digest((given.password or "").encode(), want_password)
            if ok_user and ok_password:
                return None
        return flask.Response("Authentication required.\n", 401,
                              {"WWW-Authenticate": 'Basic realm="fallbackscope", charset="UTF-8"'})

    # first in line, before Dash's own hooks, so nothing runs for an unauthenticated request
    server.before_request_funcs.setdefault(None, []).insert(0, require_password)


def is_loopback(host: str) -> bool:
    """Return True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def credentials(host: str, environ: dict[str, str] | None = None) -> tuple[str, str] | None:
    """Return the (user, password) that must guard a dashboard bound to `host`, None when none is needed.

    A password in `$FALLBACKSCOPE_DASHBOARD_PASSWORD` is always used; without one a non-loopback `host`
    raises UsageError.
    """
    env = os.environ if environ is None else environ
    password = env.get(PASSWORD_ENV) or ""
    user = env.get(USER_ENV) or DEFAULT_USER
    if password:
        return user, password
    if not is_loopback(host):
        raise UsageError(f"--host {host} is reachable from other machines, so the dashboard needs a password: "
                         f"set {PASSWORD_ENV} (HTTP basic auth, user {user}) or bind 127.0.0.1.")
    return None


def serve(db_path: str | Path, host: str = "127.0.0.1", port: int = 8050,
          policy_path: str | Path | None = None) -> None:
    """Serve the dashboard over the database at `db_path` until interrupted (waitress, else Flask).

    Raises UsageError for a non-loopback `host` without `$FALLBACKSCOPE_DASHBOARD_PASSWORD` or a bad
    policy file, FallbackscopeError when the database does not exist.
    """
    auth = credentials(host)
    path = Path(db_path)
    if not path.exists():
        raise FallbackscopeError(f"{path}: no such database; load logs first with `fallbackscope ingest`.")
    from fallbackscope.core.store import refuse_non_database

    refuse_non_database(path)
    app = create_app(path, policy_path, auth=auth)
    import waitress

    shown = f"[{host}]" if ":" in host else host
    try:  # bind first, so a port in use is one sentence before anything starts
        server = waitress.create_server(app.server, host=host, port=port, threads=8, ident="fallbackscope")
    except OSError as exc:
        why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror or 'error'})"
        raise FallbackscopeError(f"{shown}:{port} {why}; pick another port with --port.") from None
    app.server.extensions[components.EXTENSION].start_watcher()
    print(f"fallbackscope dashboard: http://{shown}:{port}/  ({path}, read-only; Ctrl-C stops it)", flush=True)
    server.run()  # until Ctrl-C, which waitress takes as a clean stop

