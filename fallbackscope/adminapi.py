"""The Anthropic Admin API's usage and cost reports (docs/metrics.md §10): the shapes of their pages, a small
HTTP client, and the pages turned into the bill `analytics.reconcile` compares with the logs.

The installed `anthropic` SDK (2.12.0) does not cover these two endpoints — it has the beta
`/v1/organizations/analytics/cost_report`, not `/v1/organizations/cost_report` nor
`/v1/organizations/usage_report/messages` — so the client is `requests`, and it never follows a redirect.

The shapes, from the public API reference:
- Get Messages Usage Report, https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages
  (https://docs.anthropic.com/en/api/admin-api/usage-cost/get-messages-usage-report):
  `{data: [{starting_at, ending_at, results: [{uncached_input_tokens, cache_creation: {ephemeral_1h_input_tokens,
  ephemeral_5m_input_tokens}, cache_read_input_tokens, output_tokens, server_tool_use: {web_search_requests},
  model, service_tier, context_window, inference_geo, workspace_id, api_key_id}]}], has_more, next_page}`.
  Query: `starting_at` (required), `ending_at`, `bucket_width` (`1d`: at most 31 buckets a page), `group_by[]`
  (`model`, `service_tier`, `context_window`, `inference_geo`, `workspace_id`, …), `workspace_ids[]`, `limit`,
  `page` (the previous page's `next_page`).
- Get Cost Report, https://platform.claude.com/docs/en/api/admin/cost_report (…/cost_report/retrieve.md):
  `{data: [{starting_at, ending_at, results: [{amount, currency, cost_type, description, model, service_tier,
  token_type, context_window, inference_geo, workspace_id}]}], has_more, next_page}`. `amount` is "in lowest
  currency units (e.g. cents) as a decimal string", `currency` "currently always USD"; `cost_type` is
  `tokens`, `web_search`, `code_execution` (`session_usage` since); `token_type` `uncached_input_tokens`,
  `output_tokens`, `cache_read_input_tokens`, `cache_creation.ephemeral_1h_input_tokens`,
  `cache_creation.ephemeral_5m_input_tokens`; `model`, `service_tier` (`standard`, `batch`) and `token_type`
  are null for non-token costs. `group_by[]`: `workspace_id`, `description`; no workspace filter.
  Priority Tier costs are not in the cost report (https://platform.claude.com/docs/en/build-with-claude/usage-cost-api).
- Headers `x-api-key` (an Admin key) and `anthropic-version: 2023-06-01`; an error is
  `{type: "error", error: {type, message}, request_id}`.

The admin key lives only in the request headers: it is never printed, logged, stored, or quoted in an error.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import ipaddress
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from analytics.reconcile import TOKEN_COLUMNS, Bill, BilledCost, BilledUsage
from fallbackscope.core.errors import FallbackscopeError, UsageError

DEFAULT_API_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
KEY_ENV = "ANTHROPIC_ADMIN_KEY"
USAGE_PATH = "/v1/organizations/usage_report/messages"
COST_PATH = "/v1/organizations/cost_report"
USAGE_GROUPS = ("model", "service_tier", "context_window", "inference_geo")
COST_GROUPS = ("description",)
MAX_BUCKETS = 31  # 1-day buckets a page holds at most
MAX_PAGES = 1000  # a report that never stops paging is a fault, not a bill
Report = Literal["usage", "cost"]

#: The cost report's token types → ours (`analytics.reconcile.TOKEN_COLUMNS`).
COST_TOKEN_TYPES = {
    "uncached_input_tokens": "uncached_input", "output_tokens": "output",
    "cache_read_input_tokens": "cache_read", "cache_creation.ephemeral_5m_input_tokens": "cache_write_5m",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write_1h",
}
assert set(COST_TOKEN_TYPES.values()) == set(TOKEN_COLUMNS)


# ---------------------------------------------------------------- the shapes of the pages


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # fields the reference adds later are welcome


class CacheCreation(_Shape):
    ephemeral_1h_input_tokens: int = Field(default=0, ge=0)
    ephemeral_5m_input_tokens: int = Field(default=0, ge=0)


class ServerToolUse(_Shape):
    web_search_requests: int = Field(default=0, ge=0)


class UsageResult(_Shape):
    """One result of a usage bucket: the tokens of one model × tier × context window × geo (× workspace)."""

    uncached_input_tokens: int = Field(ge=0)
    cache_read_input_tokens: int = Field(ge=0)
    cache_creation: CacheCreation
    output_tokens: int = Field(ge=0)
    server_tool_use: ServerToolUse | None = None
    model: str | None = None
    service_tier: str | None = None
    context_window: str | None = None
    inference_geo: str | None = None
    workspace_id: str | None = None


class CostResult(_Shape):
    """One result of a cost bucket: an amount in cents (a decimal string) and what it was for."""

    amount: Decimal
    currency: str
    cost_type: str | None = None
    description: str | None = None
    model: str | None = None
    service_tier: str | None = None
    token_type: str | None = None
    context_window: str | None = None
    inference_geo: str | None = None
    workspace_id: str | None = None

    @field_validator("amount", mode="before")
    @classmethod
    def _decimal_text(cls, value: Any) -> Any:
        if isinstance(value, float):  # the reference says a decimal string; a float would already be rounded
            raise ValueError("the amount is a number, not a decimal string")
        return value


class UsageBucket(_Shape):
    starting_at: dt.datetime
    ending_at: dt.datetime
    results: list[UsageResult]


class CostBucket(_Shape):
    starting_at: dt.datetime
    ending_at: dt.datetime
    results: list[CostResult]


class UsagePage(_Shape):
    """A page of `GET /v1/organizations/usage_report/messages`."""

    data: list[UsageBucket]
    has_more: bool
    next_page: str | None = None


class CostPage(_Shape):
    """A page of `GET /v1/organizations/cost_report`."""

    data: list[CostBucket]
    has_more: bool
    next_page: str | None = None


class ApiErrorBody(_Shape):
    type: str | None = None
    message: str | None = None


class ApiError(_Shape):
    error: ApiErrorBody


PAGES: dict[Report, type[UsagePage] | type[CostPage]] = {"usage": UsagePage, "cost": CostPage}
NAMES: dict[Report, str] = {"usage": "usage report", "cost": "cost report"}


def parse_page(data: Any, report: Report, origin: str) -> UsagePage | CostPage:
    """Return a page of a report; one sentence naming the first field out of shape (never its value) when it
    is not the documented shape."""
    try:
        return PAGES[report].model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the page"
        raise FallbackscopeError(f"{origin}: not the documented shape of the Admin API's {NAMES[report]} "
                                 f"({where}: {first['msg']}).") from None


# ---------------------------------------------------------------- the client


class AdminApiError(FallbackscopeError):
    """The Admin API answered with an error, or could not be reached (exit 1)."""


def check_api_url(url: str) -> str:
    """Return the base URL without a trailing slash; UsageError unless it is https, or http on a loopback
    address (the key must not cross a network in clear)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--api-url `{url}` is not an http(s) URL.")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError("--api-url takes a base URL without credentials, query or fragment.")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise UsageError("--api-url must be https unless it is a loopback address (127.0.0.1, ::1, localhost).")
    return url.strip().rstrip("/")


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def admin_key(environ: dict[str, str]) -> str:
    """Return the admin key from `$ANTHROPIC_ADMIN_KEY`; UsageError when it is not set."""
    key = (environ.get(KEY_ENV) or "").strip()
    if not key:
        raise UsageError(f"set {KEY_ENV} to an Admin API key (sk-ant-admin…), or give --from-file saved pages.")
    return key


class AdminClient:
    """GET pages of the Admin API: the admin key in `x-api-key`, retries on 429 and 5xx (honouring
    `retry-after`, else exponential backoff), no redirects, every page of a report (`has_more` / `next_page`)."""

    def __init__(self, key: str, base_url: str = DEFAULT_API_URL, *, retries: int = 5, timeout: float = 60.0,
                 max_wait: float = 300.0, sleep: Callable[[float], None] = time.sleep) -> None:
        import requests

        self._key = key
        self.base_url = check_api_url(base_url)
        self.retries, self.timeout, self.max_wait, self.sleep = retries, timeout, max_wait, sleep
        self._session = requests.Session()
        self._session.headers.update({"x-api-key": key, "anthropic-version": API_VERSION,
                                      "user-agent": "fallbackscope-reconcile", "accept": "application/json"})

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def pages(self, report: Report, params: Sequence[tuple[str, str]]) -> list[UsagePage | CostPage]:
        """Return every page of a report for these query parameters, following `next_page`."""
        path = USAGE_PATH if report == "usage" else COST_PATH
        out: list[UsagePage | CostPage] = []
        page_token: str | None = None
        for _ in range(MAX_PAGES):
            query = list(params) + ([("page", page_token)] if page_token else [])
            page = parse_page(self._get(path, query, report), report, f"the Admin API's {NAMES[report]}")
            out.append(page)
            if not page.has_more:
                return out
            if not page.next_page:
                raise AdminApiError(f"the Admin API's {NAMES[report]} says it has more pages but gives no "
                                    "next_page.")
            page_token = page.next_page
        raise AdminApiError(f"the Admin API's {NAMES[report]} went on for more than {MAX_PAGES} pages.")

    def _get(self, path: str, query: list[tuple[str, str]], report: Report) -> Any:
        import requests

        what = f"the Admin API's {NAMES[report]}"
        for attempt in range(self.retries + 1):
            try:
                response = self._session.get(self.base_url + path, params=query, timeout=self.timeout,
                                             allow_redirects=False)
            except requests.RequestException as exc:  # never its text: it quotes the URL and more
                if attempt < self.retries:
                    self.sleep(self._backoff(attempt, None))
                    continue
                raise AdminApiError(f"{what}: cannot reach {self.base_url} ({type(exc).__name__}) after "
                                    f"{self.retries + 1} tries.") from None
            status = response.status_code
            if status == 429 or status >= 500:
                if attempt < self.retries:
                    self.sleep(self._backoff(attempt, response.headers.get("retry-after")))
                    continue
                raise self._error(what, response, f" after {self.retries + 1} tries")
            if 300 <= status < 400:
                raise AdminApiError(f"{what}: HTTP {status}, a redirect, which the client does not follow; "
                                    "check --api-url.")
            if status != 200:
                raise self._error(what, response, "")
            try:
                return response.json()
            except ValueError:
                raise AdminApiError(f"{what}: HTTP 200 but the body is not JSON.") from None
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        """Return the seconds to wait before the next try: `retry-after` (seconds or an HTTP date) when the
        API gives it, else 1, 2, 4, … s; never more than `max_wait`."""
        wait = None
        if retry_after:
            try:
                wait = float(retry_after)
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(retry_after)
                    wait = (when - dt.datetime.now(dt.UTC)).total_seconds() if when.tzinfo else None
                except (TypeError, ValueError):
                    wait = None
        if wait is None:
            wait = 2.0 ** attempt
        return min(max(wait, 0.0), self.max_wait)

    def _error(self, what: str, response: Any, tries: str) -> AdminApiError:
        """Return the one-sentence error of a failed answer: its HTTP status and the API's own message."""
        message = ""
        try:
            body = ApiError.model_validate(response.json()).error
            message = ": ".join(part for part in (body.type, body.message) if part)
        except (ValueError, ValidationError):
            pass
        message = " ".join(message.replace(self._key, "[the admin key]").split())[:300] if message else ""
        detail = f" ({message})" if message else ""
        return AdminApiError(f"{what}: HTTP {response.status_code}{detail}{tries}.")


# ---------------------------------------------------------------- the bill from pages


def _stamp(day: dt.date) -> str:
    return dt.datetime.combine(day, dt.time(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def report_params(report: Report, since: dt.date, until: dt.date,
                  workspace_id: str | None) -> list[tuple[str, str]]:
    """Return the query of a report over the UTC days [since, until): 1-day buckets, its group_by[] (and the
    workspace's), `limit` ≤ 31."""
    groups = USAGE_GROUPS if report == "usage" else COST_GROUPS
    params = [("starting_at", _stamp(since)), ("ending_at", _stamp(until)), ("bucket_width", "1d")]
    params += [("group_by[]", group) for group in groups]
    if workspace_id:
        params.append(("group_by[]", "workspace_id"))
        if report == "usage":  # the cost report has no workspace filter: its rows are filtered here
            params.append(("workspace_ids[]", workspace_id))
    params.append(("limit", str(min(MAX_BUCKETS, max(1, (until - since).days)))))
    return params


def fetch_bill(client: AdminClient, since: dt.date, until: dt.date, workspace_id: str | None = None) -> Bill:
    """Return the bill of the UTC days [since, until) read from the Admin API (both reports, every page)."""
    usage = client.pages("usage", report_params("usage", since, until, workspace_id))
    costs = client.pages("cost", report_params("cost", since, until, workspace_id))
    return bill_of(usage, costs, since, until, workspace_id)


def _results(pages: Iterable[UsagePage | CostPage], workspace_id: str | None) -> Iterator[tuple[dt.date, Any]]:
    """Yield (UTC day of its bucket, result) for every result of the pages; with a workspace id, its only."""
    for page in pages:
        for bucket in page.data:
            day = bucket.starting_at.astimezone(dt.UTC).date()
            yield from ((day, r) for r in bucket.results if not workspace_id or r.workspace_id == workspace_id)


def bill_of(usage: Iterable[UsagePage], costs: Iterable[CostPage], since: dt.date, until: dt.date,
            workspace_id: str | None = None) -> Bill:
    """Return the bill of the days [since, until) in report pages: usage results as `BilledUsage`, cost results
    as `BilledCost` (cents → USD); with a workspace id, only that workspace's results."""
    usage_rows = [BilledUsage(
        day, r.model, r.service_tier, uncached_input=r.uncached_input_tokens, output=r.output_tokens,
        cache_read=r.cache_read_input_tokens, cache_write_5m=r.cache_creation.ephemeral_5m_input_tokens,
        cache_write_1h=r.cache_creation.ephemeral_1h_input_tokens,
        web_search=r.server_tool_use.web_search_requests if r.server_tool_use else 0)
        for day, r in _results(usage, workspace_id)]
    cost_rows = []
    for day, c in _results(costs, workspace_id):
        if c.currency.upper() != "USD":
            raise FallbackscopeError(f"the cost report has an amount in {c.currency[:8]!r}, not USD.")
        cost_rows.append(BilledCost(
            day, c.cost_type, c.amount / 100, model=c.model,  # cents → USD, exactly
            token_type=COST_TOKEN_TYPES.get(c.token_type or ""), raw_token_type=c.token_type,
            service_tier=c.service_tier, description=c.description))
    return Bill(since, until, tuple(usage_rows), tuple(cost_rows), workspace_id)


def read_saved_pages(paths: Sequence[Path]) -> tuple[list[UsagePage], list[CostPage]]:
    """Return the report pages saved in files (the JSON the endpoints return: one page a file, or a list of
    pages); a page is a cost page when its results have `amount`, a usage page otherwise."""
    usage: list[UsagePage] = []
    costs: list[CostPage] = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
        except OSError as exc:
            raise FallbackscopeError(f"{path}: cannot read the saved page ({exc.strerror or type(exc).__name__}).") \
                from None
        except (ValueError, UnicodeDecodeError):
            raise FallbackscopeError(f"{path}: not JSON (save the body the endpoint returns).") from None
        for n, item in enumerate(data if isinstance(data, list) else [data], start=1):
            origin = f"{path}" + (f" (page {n})" if isinstance(data, list) else "")
            if _is_cost_page(item):
                costs.append(parse_page(item, "cost", origin))  # type: ignore[arg-type]
            else:
                usage.append(parse_page(item, "usage", origin))  # type: ignore[arg-type]
    return usage, costs


def _is_cost_page(item: Any) -> bool:
    buckets = item.get("data") if isinstance(item, dict) else None
    return any(isinstance(b, dict) and any(isinstance(r, dict) and "amount" in r for r in b.get("results") or [])
               for b in buckets or [])


def pages_span(usage: Sequence[UsagePage], costs: Sequence[CostPage]) -> tuple[dt.date, dt.date] | None:
    """Return the UTC days [first, last + 1) the buckets of saved pages cover; None when they hold none."""
    buckets = [b for page in [*usage, *costs] for b in page.data]
    if not buckets:
        return None
    first = min(b.starting_at for b in buckets).astimezone(dt.UTC).date()
    last = max(b.starting_at for b in buckets).astimezone(dt.UTC).date()
    return first, last + dt.timedelta(days=1)

