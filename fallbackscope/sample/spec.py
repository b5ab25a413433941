"""What the sample generator plants: the spec, the workloads and their scenario weights, the models, the
error catalogue (docs/metrics.md §5), and the records of planted chains and attempts."""

from __future__ import annotations

import datetime as dt
import string
import time
from dataclasses import dataclass, field
from typing import Any

FABLE, OPUS, SONNET, HAIKU = "claude-fable-5", "claude-opus-4-8", "claude-sonnet-4-5", "claude-haiku-4-5"
DATED = {SONNET: "claude-sonnet-4-5-20250929", HAIKU: "claude-haiku-4-5-20251001"}  # ids as served
ALT = {FABLE: OPUS, OPUS: SONNET, SONNET: OPUS, HAIKU: SONNET}  # where a reliability retry may go
CATEGORIES: tuple[str | None, ...] = ("cyber", "bio", "frontier_llm", "reasoning_extraction", "general_harms", None)
CREDIT_OUTCOMES = ("redeemed", "rejected", "unconfirmed", "forfeited", "expired")
CREDIT_KEYS = ("minted", "unredeemable", *CREDIT_OUTCOMES)  # the ground truth's `credits` counts
BATCH_WORKLOAD = "batch-extract"
ALNUM = string.ascii_letters + string.digits
VOCAB = """account action address adjust agent alert allow amount answer apply approve archive assign
attach audit balance batch billing branch budget buffer build cache calendar campaign cancel capture
carrier change channel charge check claim client cluster column commit config confirm contact contract
convert copy cost country credit customer cycle daily dashboard data deadline default delay delivery
deploy design detail device discount dispatch document domain draft driver due edit email engine entry
error estimate event export factor feature field filter finance flag folder forecast format freight
function gateway group handle header history import incident index invoice issue item job journal key
label latency layer ledger level limit line list load local lock log manager margin market match member
merge message method metric migrate mobile module monthly network node note notice number offer order
owner package page parcel partner patch payment pending period plan policy portal price primary priority
process product profile project query queue quota quote range rate record refund region release renewal
report request resolve resource response retry return review route rule sample schedule schema scope
search season segment server service session setting shipment signal source stage status step stock
storage store supplier support sync table target task team template tenant test ticket tier token total
track transfer trend update upgrade usage user value vendor version volume warehouse webhook weekly
window workflow""".split()
# (error_class, HTTP status or transport error, error.type, message), docs/metrics.md §5
ERRORS: dict[str, tuple[str, int | str, str, str]] = {
    "400": ("invalid_request", 400, "invalid_request_error", "messages: text content blocks must be non-empty"),
    "413": ("invalid_request", 413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
    "401": ("auth", 401, "authentication_error", "invalid x-api-key"),
    "402": ("billing", 402, "billing_error", "Your credit balance is too low to access the API."),
    "403": ("permission", 403, "permission_error", "Your API key does not have permission to use this model."),
    "404": ("not_found", 404, "not_found_error", "model: requested model was not found"),
    "409": ("conflict", 409, "invalid_request_error", "A request with this idempotency key is in progress."),
    "429": ("rate_limit", 429, "rate_limit_error", "Number of request tokens has exceeded your rate limit."),
    "500": ("server_error", 500, "api_error", "Internal server error"),
    "502": ("server_error", 502, "api_error", "Bad gateway"),
    "503": ("server_error", 503, "api_error", "Service temporarily unavailable"),
    "408": ("timeout", 408, "timeout_error", "Request timed out"),
    "504": ("timeout", 504, "timeout_error", "Upstream request timed out"),
    "529": ("overloaded", 529, "overloaded_error", "Overloaded"),
    "t/o": ("timeout", "timeout", "", ""),
    "conn": ("connection", "connection", "", ""),
}
RETRYABLE = {"conflict", "rate_limit", "server_error", "timeout", "overloaded", "connection"}
ERROR_BAG = list(ERRORS) + ["429"] * 4 + ["529"] * 4 + ["500", "conn"]
# what the app does after a refusal; `refusal_chain` plants each, the ground truth applies docs/metrics.md §6.5
CREDIT_FATES = ["redeemed"] * 4 + ["redeemed_after_error", "rejected", "rejected", "unconfirmed", "forfeited"]
CREDIT_FATES += ["forfeited_failed", "expired", "expired", "expired_late", "no_token", "loop"]
# server-side fallback (docs/metrics.md §3.7): the declined hops (model, trigger type) before the serving one, weighted
SERVER_PLANS: list[tuple[list[tuple[str, str]], float]] = [
    ([], 0.80),  # answered by the first model although the request carried `fallbacks`
    ([(FABLE, "refusal")], 0.10),
    ([(FABLE, "overloaded_error")], 0.06),
    ([(FABLE, "refusal"), (OPUS, "overloaded_error")], 0.04),
]
NOT_APPLIED = ("prompt_mismatch", "model_not_eligible", "token_expired")


@dataclass(frozen=True)
class SampleSpec:
    """What to generate: seed, span (UTC days from `start`), traffic and optional extra files."""

    seed: int = 7
    days: int = 28
    start: dt.date = dt.date(2026, 10, 19)  # a Monday; days are UTC
    chains_per_day: int = 60  # logical requests per day, across all workloads
    prompt_words: tuple[int, int] = (150, 450)  # realistic prompt size (words) of the user message
    with_batch: bool = True  # also write a Message Batches results file
    with_sse: bool = False  # also write a wire capture of the streamed calls (all duplicates)
    # also plant, just before every midnight but the last, chains whose later attempts fall in the next day's
    # file (`MIDNIGHT_SCENARIOS`): loading the day files in any order must link them alike (docs/metrics.md §4)
    across_midnight: bool = False


# (workload, scenario) of the chains `across_midnight` plants before each midnight: refusals and their credit
# retries (linked by credit and prompt, and by the app's chain id), a quality escalation, reliability retries
MIDNIGHT_SCENARIOS = (("support-chat", "refusal"), ("support-chat", "refusal"), ("code-assist", "refusal"),
                      ("batch-extract", "quality"), ("doc-summarise", "error"))


@dataclass(frozen=True)
class Workload:
    name: str
    weight: float
    start: str  # the model the app asks first
    chain_id: bool  # the app logs chain_id/attempt/trigger; else chains are linked by docs/metrics.md §4 rules
    session: tuple[int, int] | None  # chains per session; None: no session_id
    stream: float = 0.0  # share of streamed chains
    cache_ttl: str | None = None  # prompt caching of system prompt and history
    legacy_usage: bool = False  # usage without the cache_creation breakdown
    sdk: bool = False  # refusal fallback by the SDK middleware: token object, disclosure, pinning
    quality: bool = False  # the app grades answers (`accepted`)
    tools: str | None = None  # "code" or "web"
    fallbacks: tuple[str, ...] = ()  # server-side fallback models (§3.7)
    max_tokens: int = 2048


# scenario weights per workload (see `Traffic.run`)
SCENARIOS = {
    "support-chat": {"ok": 0.80, "refusal": 0.08, "error": 0.09, "stream_error": 0.03},
    "code-assist": {"ok": 0.78, "refusal": 0.10, "error": 0.09, "stream_error": 0.03},
    "research-agent": {"server": 0.88, "error": 0.12},
    BATCH_WORKLOAD: {"ok": 0.60, "quality": 0.32, "error": 0.08},
    "doc-summarise": {"ok": 0.62, "error": 0.28, "reask": 0.10},
}
WORKLOADS = (
    Workload("support-chat", 0.34, FABLE, False, (2, 5), stream=0.5, cache_ttl="5m", sdk=True),
    Workload("code-assist", 0.20, FABLE, True, (1, 4), stream=0.3, cache_ttl="1h", tools="code", max_tokens=8192),
    Workload("research-agent", 0.14, FABLE, False, (1, 3), tools="web", fallbacks=(OPUS, SONNET), max_tokens=4096),
    Workload(BATCH_WORKLOAD, 0.16, HAIKU, True, None, quality=True, max_tokens=1024),
    Workload("doc-summarise", 0.16, SONNET, False, None, cache_ttl="5m", legacy_usage=True, max_tokens=1024),
)
BY_NAME = {w.name: w for w in WORKLOADS}


@dataclass
class Hop:
    """One planted attempt: the facts the ground truth is computed from."""

    ts: int  # ms since the epoch, the send time
    model: str | None  # normalised
    outcome: str = "ok"
    error_class: str | None = None
    category: str | None = None
    accepted: bool | None = None
    intended: str | None = None
    minted: str | None = None
    presented: str | None = None
    credit_status: str | None = None
    http_2xx: bool = False
    batch: bool = False
    cache_total: int = 0  # generation bookkeeping below, not ground truth
    partial: str | None = None


@dataclass
class Chain:
    workload: str
    session: str  # session_id, or a key of its own when the chain has none
    hops: list[Hop] = field(default_factory=list)
    loop: bool = False


@dataclass
class Ctx:
    """One chain being generated: its prompt, clock and identity."""

    wl: Workload
    chain: Chain
    t: int
    session_id: str | None
    chain_id: str | None
    user: str
    system: Any
    messages: list[dict[str, Any]]
    prompt_tokens: int
    cacheable: int
    surface: str = "anthropic"
    geo: str | None = None
    intended: str | None = None
    stream: bool = False
    boost: float = 1.0


def iso_ms(ms: int) -> str:
    """Return epoch milliseconds as the logs' UTC timestamp, e.g. `2026-10-19T08:05:03.042Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
