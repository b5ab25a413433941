"""What an attempt's outcome means (docs/metrics.md §1, §2, §6.5): success and "got a 2xx", in SQL and Python.

Each rule is written once here, in the two languages the engines need, side by side; a test checks that
both agree on every combination of the columns they read.
"""

from __future__ import annotations

from typing import Literal

Outcome = Literal["ok", "refusal", "error", "timeout", "connection", "canceled", "expired"]
OUTCOMES: tuple[str, ...] = ("ok", "refusal", "error", "timeout", "connection", "canceled", "expired")


def success_sql(alias: str = "") -> str:
    """Return SQL that is true when an attempt succeeded: outcome `ok` and not rejected by the app
    (`accepted` false). `alias` qualifies the columns (`m` → `m.outcome`)."""
    a = f"{alias}." if alias else ""
    return f"({a}outcome = 'ok' AND {a}accepted IS DISTINCT FROM false)"


#: SQL over unqualified columns: the attempt succeeded (see `success_sql`).
SUCCESS = success_sql()


def succeeded(outcome: str | None, accepted: bool | None) -> bool:
    """Return True when an attempt succeeded (the Python twin of `success_sql`)."""
    return outcome == "ok" and accepted is not False


def unknown_stop_sql(alias: str = "") -> str:
    """Return SQL that is true for an attempt whose record said nothing of its stop reason (response
    logging off or redacted): outcome `ok` with no `stop_reason` — a refusal could hide in it (§6.3)."""
    a = f"{alias}." if alias else ""
    return f"({a}outcome = 'ok' AND {a}stop_reason IS NULL)"


#: SQL: an attempt "got a 2xx"; an attempt that returned a message without a recorded status counts too.
GOT_2XX = "(http_status BETWEEN 200 AND 299 OR (http_status IS NULL AND outcome IN ('ok', 'refusal')))"
