"""The fallback policy (docs/metrics.md §5): per-workload tier chain, allowed fallback triggers, disclosure and SLO.

A policy file is TOML:

```toml
[workloads.support-chat]
chain = ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-8"]   # tier order
fallback_on = ["refusal", "quality", "server_error", "overloaded", "timeout"]
require_disclosure = true
refusal_slo = 0.05          # target for session_refusal_rate
```

A workload without a section (or a key left out) gets the defaults: no declared chain, `fallback_on` =
the "yes" rows of docs/metrics.md §5, `require_disclosure = false`, `refusal_slo = 0.05`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

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


class Policy(BaseModel):
    """A whole policy: rules per workload, defaults for the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workloads: dict[str, WorkloadPolicy] = Field(default_factory=dict)

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
