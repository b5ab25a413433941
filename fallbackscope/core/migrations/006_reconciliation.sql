-- docs/metrics.md §10: the bill of the Anthropic Admin API against the logged attempts of surface `anthropic`.
-- One row per UTC day × normalised model × token type (`uncached_input`, `output`, `cache_read`,
-- `cache_write_5m`, `cache_write_1h`; `web_search` per day, model NULL: its cost rows name no model). Standard and
-- batch tiers only: priority-tier usage has no cost in the cost report and is listed apart. `reconcile` replaces
-- the days it fetched; the admin key is never stored.
CREATE TABLE reconciliation (
    day           DATE NOT NULL,
    model         VARCHAR,            -- NULL only for web_search
    token_type    VARCHAR NOT NULL,
    billed        BIGINT,             -- tokens (searches) in the usage report; NULL: no usage row for the model that day
    logged        BIGINT NOT NULL,    -- tokens (searches) of the charged attempts
    billed_usd    DOUBLE,             -- the cost report's amount (cents) / 100; NULL: no cost row
    computed_usd  DOUBLE,             -- the logged tokens at the price table in force; NULL: unpriced
    fetched_at    TIMESTAMPTZ NOT NULL,
    workspace_id  VARCHAR             -- the --workspace-id the bill was read for; NULL: the whole organisation
);

-- What the bill holds but reconciliation does not compare: priority-tier usage (its tokens, billed and logged),
-- code execution and other non-token costs, token costs of a type or model the comparison cannot place.
CREATE TABLE reconciliation_apart (
    day           DATE NOT NULL,
    kind          VARCHAR NOT NULL,   -- priority_tier, or the cost report's cost_type (code_execution, …)
    model         VARCHAR,
    token_type    VARCHAR,
    description   VARCHAR,            -- the cost report's description of the item
    billed        BIGINT,
    logged        BIGINT,
    billed_usd    DOUBLE,
    fetched_at    TIMESTAMPTZ NOT NULL,
    workspace_id  VARCHAR
);
