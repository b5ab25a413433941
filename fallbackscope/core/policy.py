"""The fallback policy (docs/metrics.md §5): per-workload tier chain, allowed fallback triggers, disclosure and SLO.

A policy file is TOML:

```toml
[workloads.support-chat]
chain = ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-8"]   # tier order
fallback_on = ["refusal", "quality", "server_error", "overloaded", "timeout"]
require_disclosure = true
refusal_slo = 0.05          # target for session_refusal_rate

[alerts]                    # optional: replaces the default burn-rate rules (docs/metrics.md §9)
min_sessions = 10
[[alerts.rules]]
severity = "page"
long = "1h"
short = "5m"
factor = 14.4
```

A workload without a section (or a key left out) gets the defaults: no declared chain, `fallback_on` =
the "yes" rows of docs/metrics.md §5, `require_disclosure = false`, `refusal_slo = 0.05`. Without
`[alerts]`, or without `[[alerts.rules]]` in it, the default rules of docs/metrics.md §9 apply.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

from fallbackscope.core.errors import UsageError
from fallbackscope.core.tomlconfig import parse_toml_model, read_text_file

#: Triggers that may fall back by default: the "yes" rows of docs/metrics.md §5.
DEFAULT_FALLBACK_ON: tuple[str, ...] = (
    "refusal", "quality", "rate_limit", "server_error", "timeout", "overloaded", "connection",
)
DEFAULT_REFUSAL_SLO = 0.05

#: Every trigger docs/metrics.md §1 and §5 name: refusal, quality, pinned and the error classes.
KNOWN_TRIGGERS = frozenset({
    "refusal", "quality", "pinned", "invalid_request", "auth", "billing", "permission", "not_found", "conflict",
    "rate_limit", "server_error", "timeout", "overloaded", "connection",
})

ModelName = Annotated[str, Field(min_length=1)]


class WorkloadPolicy(BaseModel):
    """The rules of one workload; every key optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chain: tuple[ModelName, ...] | None = None
    fallback_on: tuple[str, ...] = DEFAULT_FALLBACK_ON
    require_disclosure: StrictBool = False
    refusal_slo: float = Field(default=DEFAULT_REFUSAL_SLO, ge=0.0, le=1.0)

    @field_validator("chain")
    @classmethod
    def _chain_not_empty(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            if not value:
                raise ValueError("a declared chain needs at least one model")
            lowered = [m.strip().lower() for m in value]
            if len(set(lowered)) != len(lowered):
                raise ValueError("a model appears twice in the chain")
            return tuple(lowered)
        return value

    @field_validator("refusal_slo", mode="before")
    @classmethod
    def _a_fraction(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool) and not 0 <= value <= 1:
            raise ValueError(f"refusal_slo is a fraction between 0 and 1 (5% is 0.05), not {value}")
        return value

    @property
    def slo_source(self) -> Literal["policy", "default"]:
        """Return where `refusal_slo` came from: the policy file, or the default 0.05 (docs/metrics.md §6.1)."""
        return "policy" if "refusal_slo" in self.model_fields_set else "default"

    @field_validator("fallback_on")
    @classmethod
    def _known_shape(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for trigger in value:
            if trigger not in KNOWN_TRIGGERS:  # a typo would silently count every such fallback as a violation
                raise ValueError(f"`{trigger}` is not a trigger (one of {', '.join(sorted(KNOWN_TRIGGERS))})")
        return value


# ---------------------------------------------------------------- [alerts] (docs/metrics.md §9)

_DURATION = re.compile(r"^([1-9][0-9]*)([mhd])$")
_UNIT = {"m": dt.timedelta(minutes=1), "h": dt.timedelta(hours=1), "d": dt.timedelta(days=1)}


def parse_duration(text: str, what: str = "duration") -> dt.timedelta:
    """Return the timedelta of a duration written `Nm`, `Nh` or `Nd` (N a positive whole number).

    Raises UsageError in one line naming `what` otherwise (policy windows, `--max-staleness`)."""
    match = _DURATION.match(str(text).strip())
    if not match:
        raise UsageError(f"{what} `{text}` is not a duration: write it like 5m, 26h or 3d.")
    return int(match.group(1)) * _UNIT[match.group(2)]


Duration = Annotated[str, Field(min_length=2)]


class AlertRule(BaseModel):
    """One multi-window burn-rate rule: it fires when the burn over both windows reaches `factor`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Literal["page", "ticket"]
    long: Duration
    short: Duration
    factor: float = Field(gt=0)

    @field_validator("long", "short", mode="before")
    @classmethod
    def _a_duration(cls, value: object) -> object:
        if isinstance(value, str) and not _DURATION.match(value.strip()):
            raise ValueError(f"`{value}` is not a duration: write it like 5m, 6h or 3d")
        return value.strip() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _short_inside_long(self) -> AlertRule:
        if self.short_window >= self.long_window:
            raise ValueError(f"the short window ({self.short}) must be shorter than the long one ({self.long})")
        return self

    @property
    def long_window(self) -> dt.timedelta:
        """The long window's length."""
        return parse_duration(self.long)

    @property
    def short_window(self) -> dt.timedelta:
        """The short window's length."""
        return parse_duration(self.short)

    @property
    def name(self) -> str:
        """Return the rule as words, e.g. `1h/5m ×14.4` (with its severity, the key of its alert state)."""
        return f"{self.long}/{self.short} ×{self.factor:g}"


#: The default rules of docs/metrics.md §9 (the SRE workbook's multi-window, multi-burn-rate alerts).
DEFAULT_ALERT_RULES: tuple[AlertRule, ...] = (
    AlertRule(severity="page", long="1h", short="5m", factor=14.4),
    AlertRule(severity="page", long="6h", short="30m", factor=6),
    AlertRule(severity="ticket", long="3d", short="6h", factor=1),
)
DEFAULT_MIN_SESSIONS = 10


class AlertPolicy(BaseModel):
    """The `[alerts]` section: the burn-rate rules (replacing the defaults when given) and the smallest
    long window, in sessions, that may fire."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_sessions: StrictInt = Field(default=DEFAULT_MIN_SESSIONS, ge=1)
    rules: tuple[AlertRule, ...] = DEFAULT_ALERT_RULES

    @field_validator("rules")
    @classmethod
    def _rules_distinct(cls, value: tuple[AlertRule, ...]) -> tuple[AlertRule, ...]:
        if not value:
            raise ValueError("[[alerts.rules]] needs at least one rule (leave it out for the defaults)")
        keys = [(rule.severity, rule.name) for rule in value]
        if len(set(keys)) != len(keys):
            raise ValueError("a rule appears twice")
        return value


class Policy(BaseModel):
    """A whole policy: rules per workload, defaults for the rest, and the alert rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workloads: dict[str, WorkloadPolicy] = Field(default_factory=dict)
    alerts: AlertPolicy = Field(default_factory=AlertPolicy)

    def for_workload(self, workload: str) -> WorkloadPolicy:
        """Return the rules of `workload`, the defaults when the policy has no section for it."""
        return self.workloads.get(workload) or _DEFAULT_WORKLOAD


_DEFAULT_WORKLOAD = WorkloadPolicy()


def default_policy() -> Policy:
    """Return the policy in force when none is given: every workload gets the docs/metrics.md §5 defaults."""
    return Policy()


def parse_policy_toml(text: str, source: str = "policy") -> Policy:
    """Parse and validate policy TOML.

    Returns the Policy; a bad file raises UsageError in one line naming the source and the key.
    """
    return parse_toml_model(text, Policy, source, "policy")


def read_policy_file(path: str | Path) -> str:
    """Return the text of a policy file given on the command line, validated (like `read_price_file`).

    Raises UsageError in one line when the file cannot be read or is not a valid policy.
    """
    text = read_text_file(path, "policy file")
    parse_policy_toml(text, str(path))
    return text


def load_policy_file(path: str | Path) -> Policy:
    """Return the Policy of a policy file; raises UsageError in one line naming the file and key."""
    return parse_policy_toml(read_policy_file(path), str(path))


def policy_in_force(con: duckdb.DuckDBPyConnection) -> Policy:
    """Return the policy stored by the last `ingest --policy` (the last row of `policy`), else the default."""
    row = con.execute("SELECT toml, source FROM policy ORDER BY set_at DESC LIMIT 1").fetchone()
    if row is None:
        return default_policy()
    return parse_policy_toml(row[0], f"stored policy ({row[1] or 'no source'})")


def resolve_policy(
    con: duckdb.DuckDBPyConnection, policy: Policy | str | Path | None = None
) -> Policy:
    """Return the policy for one analysis: `policy` when given (a Policy or a file path), else the stored one.

    A policy given for a run replaces the stored one whole; it is not merged (docs/metrics.md §5).
    """
    if isinstance(policy, Policy):
        return policy
    if policy is not None:
        return load_policy_file(policy)
    return policy_in_force(con)
