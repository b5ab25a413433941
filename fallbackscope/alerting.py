"""`fallbackscope alert` and `fallbackscope export openmetrics` (docs/metrics.md §9): the shell around
`analytics.alerts` — the database opened and closed, webhook delivery, the `alerts` state table, files written.

Delivery is at-least-once: each new alert (and each resolution) is posted on its own, up to 3 tries with
backoff honouring `Retry-After`, and its row in `alerts` is written only once its post succeeded — a failed post
leaves the state as it was, so the next run sends it again. The webhook URL is a secret: it is read from the
environment, never printed, logged or stored, errors name only its host, and redirects are not followed.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from analytics.alerts import Alert, Evaluation, Resolved, burn_table, changes, evaluate, open_alerts
from fallbackscope.core import store
from fallbackscope.core.errors import ExitCode, FallbackscopeError, UsageError, output_failure
from fallbackscope.core.periods import UTC, to_utc
from fallbackscope.core.policy import parse_duration
from fallbackscope.render.alert_messages import FORMATS, body, render_alerts
from fallbackscope.render.openmetrics import render_openmetrics

WEBHOOK_ENV = "FALLBACKSCOPE_WEBHOOK_URL"
DASHBOARD_ENV = "FALLBACKSCOPE_DASHBOARD_URL"
TRIES = 3
BACKOFF_S = 1.0  # then 2 s: a receiver that is restarting gets a few seconds
MAX_RETRY_AFTER_S = 60.0  # a longer Retry-After fails this run; the next run sends the alert
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class AlertRun:
    """What one `alert` run did: the text for stdout, warnings and error sentences for stderr, the exit code,
    and how many alerts and resolutions it posted."""

    exit_code: ExitCode
    output: str = ""
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    sent: int = 0
    resolved: int = 0
    evaluation: Evaluation | None = field(default=None, repr=False)


class DeliveryFailed(FallbackscopeError):
    """A webhook post that did not succeed after its tries (exit 1); the message names only the host."""


def webhook_url(environ: Mapping[str, str]) -> str | None:
    """Return the webhook URL of `$FALLBACKSCOPE_WEBHOOK_URL`, None when unset; raises UsageError (without the
    URL) when it is not an http(s) URL."""
    url = (environ.get(WEBHOOK_ENV) or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"${WEBHOOK_ENV} is not an http(s) URL.")
    return url


def run_alert(db_path: str | Path, *, at: str | dt.datetime | None = None, max_staleness: str | None = None,
              policy: str | Path | None = None, dry_run: bool = False, fmt: str = "json",
              dashboard_url: str | None = None, lock_timeout: float = 60.0,
              environ: Mapping[str, str] | None = None, now: dt.datetime | None = None,
              poster: Callable[[str, bytes], None] | None = None) -> AlertRun:
    """Evaluate the alert rules at `at` and, unless `dry_run`, post what changed to the webhook.

    Returns the AlertRun (exit 0 none firing, 1 a post failed, 3 an alert firing, 4 no data); raises UsageError
    for bad options, a missing webhook URL without `dry_run`, or a policy that watches nothing."""
    environ = os.environ if environ is None else environ
    if fmt not in FORMATS:
        raise UsageError(f"--format `{fmt}` is not one of {', '.join(FORMATS)}.")
    url = webhook_url(environ)
    if url is None and not dry_run:
        raise UsageError(f"no webhook to post to: set ${WEBHOOK_ENV}, or use --dry-run to only print the alerts.")
    at_time = to_utc(at, "at")
    staleness = parse_duration(max_staleness, "--max-staleness") if max_staleness else None
    link = dashboard_url or environ.get(DASHBOARD_ENV) or None
    path = Path(db_path)
    if not dry_run and path.exists():
        store.connect(path, wait_seconds=lock_timeout).close()  # bring the schema (the alerts table) up to date
    con = store.connect(path, read_only=True, wait_seconds=lock_timeout)
    try:
        evaluation = evaluate(con, str(policy) if policy else None, at_time, dashboard_url=link)
        notified = {} if dry_run else open_alerts(con)
    finally:
        con.close()
    warnings = evaluation.warnings
    stale = _stale(evaluation, staleness, now or dt.datetime.now(UTC))
    if stale:
        return AlertRun(ExitCode.NO_DATA, warnings=warnings, errors=(stale,), evaluation=evaluation)
    if not evaluation.has_data:
        return AlertRun(ExitCode.NO_DATA, warnings=warnings, errors=(_no_chains(evaluation),), evaluation=evaluation)
    output = render_alerts(evaluation.alerts, fmt)
    firing = ExitCode.SLO_NOT_MET if evaluation.alerts else ExitCode.OK
    if dry_run:
        return AlertRun(firing, output, warnings, evaluation=evaluation)
    assert url is not None
    new, stopped = changes(evaluation, notified)
    send = poster or post
    errors, sent, resolved = [], 0, 0
    for item in (*new, *stopped):
        try:
            send(url, body(item, fmt))
        except DeliveryFailed as exc:
            errors.append(f"{_what(item)}: {exc}")
            continue
        _save(path, item, lock_timeout)  # each post saves its own state as soon as it succeeded
        if isinstance(item, Resolved):
            resolved += 1
        else:
            sent += 1
    code = ExitCode.FAILURE if errors else firing
    return AlertRun(code, output, warnings, tuple(errors), sent, resolved, evaluation)


def _stale(evaluation: Evaluation, staleness: dt.timedelta | None, now: dt.datetime) -> str | None:
    if staleness is None:
        return None
    if evaluation.latest is None:
        return "no data: the database holds no attempts."
    if now - evaluation.latest > staleness:
        return (f"no data since {_when(evaluation.latest)} (more than --max-staleness ago): check that the "
                "log pipeline and last night's load ran.")
    return None


def _no_chains(evaluation: Evaluation) -> str:
    if evaluation.at is None:
        return "no data: the database holds no attempts."
    names = ", ".join(evaluation.watched)
    longest = max((c.rule.long_window for c in evaluation.checks), default=None)
    span = f"in the {_span(longest)} " if longest else ""
    return f"no data: no chain of a watched workload ({names}) started {span}up to {_when(evaluation.at)}."


def _span(length: dt.timedelta) -> str:
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if length.total_seconds() % seconds == 0:
            return f"{int(length.total_seconds() // seconds)}{unit}"
    return str(length)


def _when(value: dt.datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _what(item: Alert | Resolved) -> str:
    workload, severity, rule = item.key
    kind = "resolution of " if isinstance(item, Resolved) else ""
    return f"{kind}{severity} alert {rule} for `{workload}`"


def _save(path: Path, item: Alert | Resolved, lock_timeout: float) -> None:
    """Record one delivered alert (a new row) or resolution (its open row closed), in its own transaction."""
    con = store.connect(path, wait_seconds=lock_timeout)
    try:
        con.execute("BEGIN TRANSACTION")
        if isinstance(item, Resolved):
            con.execute("UPDATE alerts SET resolved = ?, last_notified = now() WHERE workload = ? AND severity = ? "
                        "AND rule = ? AND resolved IS NULL", [item.at, *item.key])
        else:
            check = item.check
            con.execute("INSERT INTO alerts (workload, severity, rule, first_fired, last_notified, resolved, target, "
                        "long_burn, short_burn) VALUES (?, ?, ?, ?, now(), NULL, ?, ?, ?)",
                        [*item.key, item.at, check.long.target, check.long.burn, check.short.burn])
        con.execute("COMMIT")
    finally:
        con.close()


# ---------------------------------------------------------------- the webhook


@contextmanager
def _quiet_http_logs() -> Iterator[None]:
    """urllib3 logs request paths at debug level: a webhook's path holds its token. Keep it out of any log."""
    logger = logging.getLogger("urllib3")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Return the wait a `Retry-After` header asks for, in seconds (delay-seconds or an HTTP date); None when
    absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or dt.datetime.now(UTC))).total_seconds())


def _retryable(status: int) -> bool:
    return status in (408, 425, 429) or status >= 500


def post(url: str, data: bytes, *, tries: int = TRIES, backoff: float = BACKOFF_S,
         max_retry_after: float = MAX_RETRY_AFTER_S, timeout: float = TIMEOUT_S,
         sleep: Callable[[float], None] = time.sleep) -> None:
    """POST `data` (JSON) to `url`, up to `tries` times: a transport error, 408, 425, 429 or 5xx is tried again
    after `backoff` seconds, doubling, or after the `Retry-After` the receiver asked for. Redirects are not
    followed. Returns on a 2xx; raises DeliveryFailed naming only the URL's host otherwise."""
    import requests

    host = urlsplit(url).hostname or "the webhook"
    why = "not sent"
    tried = 0
    with _quiet_http_logs(), requests.Session() as session:
        for tried in range(1, tries + 1):
            wait = backoff * 2 ** (tried - 1)
            try:
                response = session.post(url, data=data, timeout=timeout, allow_redirects=False,
                                        headers={"Content-Type": "application/json; charset=utf-8"})
            except Exception as exc:  # noqa: BLE001 — a transport error's text may quote the URL: name its kind
                why = _transport_why(exc)
            else:
                status, retry_after = response.status_code, response.headers.get("Retry-After")
                response.close()
                if 200 <= status < 300:
                    return
                why = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
                if not _retryable(status):
                    break
                asked = retry_after_seconds(retry_after)
                if asked is not None:
                    if asked > max_retry_after:
                        why += f", Retry-After {asked:g} s is longer than {max_retry_after:g} s"
                        break
                    wait = asked
            if tried < tries:
                sleep(wait)
    plural = "try" if tried == 1 else "tries"
    raise DeliveryFailed(f"webhook post to {host} failed ({why}) after {tried} {plural}; its state is unchanged, "
                         "so the next run sends it again.")


def _transport_why(exc: Exception) -> str:
    import requests

    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    return type(exc).__name__


# ---------------------------------------------------------------- OpenMetrics


@dataclass(frozen=True)
class Exported:
    """What `export openmetrics` produced: the text (for stdout), and whether the database held no attempt."""

    text: str
    no_data: bool


def export_openmetrics(db_path: str | Path, out: str | Path = "-", *, at: str | dt.datetime | None = None,
                       lock_timeout: float = 60.0) -> Exported:
    """Compute the SLIs at `at` (default: the latest attempt) and write them as OpenMetrics text to `out`
    (`-`: returned for stdout; a file: written as `.<name>.tmp` beside it, mode 0644, then renamed)."""
    con = store.connect(Path(db_path), read_only=True, wait_seconds=lock_timeout)
    try:
        snapshot = burn_table(con, None, to_utc(at, "at"), last_day=True)
    finally:
        con.close()
    text = render_openmetrics(snapshot)
    if str(out) != "-":
        write_atomically(Path(out), text)
    return Exported(text, snapshot.at is None)


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through `.<name>.tmp` in the same folder (mode 0644, flushed to disk) and a rename,
    so a reader (node_exporter's textfile collector) sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # whatever the umask
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise output_failure(path, exc) from None
