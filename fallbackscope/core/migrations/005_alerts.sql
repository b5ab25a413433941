-- docs/metrics.md §9: the state of each alert `fallbackscope alert` has notified, one row per episode (from its
-- first notification to its resolution), never deleted, so the table is also the alert history. A row is written
-- only after its webhook post succeeded. The webhook URL is a secret and is never stored.
CREATE TABLE alerts (
    workload       VARCHAR NOT NULL,
    severity       VARCHAR NOT NULL,      -- page | ticket
    rule           VARCHAR NOT NULL,      -- e.g. '1h/5m ×14.4': long/short window and burn factor
    first_fired    TIMESTAMPTZ NOT NULL,  -- the evaluation time (--at) of the run that notified it
    last_notified  TIMESTAMPTZ NOT NULL,  -- wall-clock time of the last successful post (firing, then resolved)
    resolved       TIMESTAMPTZ,           -- the evaluation time of the run that found it stopped; NULL while firing
    -- beyond the contract: what the first notification said
    target         DOUBLE,
    long_burn      DOUBLE,
    short_burn     DOUBLE
);
