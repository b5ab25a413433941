-- The stored schema of SPEC §2. Metadata only: no column may ever hold prompt, completion or error text.
CREATE TABLE attempts (
    attempt_id            VARCHAR NOT NULL,
    load_id               BIGINT NOT NULL,
    ts                    TIMESTAMPTZ NOT NULL,
    surface               VARCHAR NOT NULL,
    workload              VARCHAR NOT NULL,
    session_id            VARCHAR,
    chain_id              VARCHAR NOT NULL,
    attempt_index         INTEGER NOT NULL,
    request_id            VARCHAR,
    requested_model       VARCHAR,
    model                 VARCHAR,
    http_status           INTEGER,
    error_class           VARCHAR,
    outcome               VARCHAR NOT NULL,
    stop_reason           VARCHAR,
    refusal_category      VARCHAR,
    recommended_model     VARCHAR,
    "trigger"             VARCHAR,
    accepted              BOOLEAN,
    disclosed             BOOLEAN,
    intended_model        VARCHAR,
    fallback_mode         VARCHAR NOT NULL,
    is_batch              BOOLEAN NOT NULL,
    is_stream             BOOLEAN NOT NULL,
    service_tier          VARCHAR,
    inference_geo         VARCHAR,
    speed                 VARCHAR,
    latency_ms            DOUBLE,
    input_tokens          BIGINT NOT NULL,
    output_tokens         BIGINT NOT NULL,
    cache_write_5m_tokens BIGINT NOT NULL,
    cache_write_1h_tokens BIGINT NOT NULL,
    cache_read_tokens     BIGINT NOT NULL,
    web_search_requests   BIGINT NOT NULL,
    had_output            BOOLEAN NOT NULL,
    credit_minted_fp      VARCHAR,
    credit_presented_fp   VARCHAR,
    prefill_claim         BOOLEAN,
    credit_status         VARCHAR,
    credit_reason         VARCHAR,
    prompt_fp             VARCHAR,
    cost_usd              DOUBLE,
    -- beyond the contract: where the attempt came from
    line_no               BIGINT,
    hop                   INTEGER NOT NULL,
    batch_id              VARCHAR
);

CREATE TABLE loads (
    load_id          BIGINT NOT NULL,
    path             VARCHAR NOT NULL,
    sha256           VARCHAR,
    format           VARCHAR,
    started_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    records          BIGINT NOT NULL,
    attempts_loaded  BIGINT NOT NULL,
    duplicates       BIGINT NOT NULL,
    rejected         BIGINT NOT NULL,
    status           VARCHAR NOT NULL,
    -- beyond the contract: how far a file was read, so a grown file loads only its new records
    file_size        BIGINT,
    mtime_ns         BIGINT,
    start_byte       BIGINT,
    bytes_read       BIGINT,
    lines_read       BIGINT,
    error            VARCHAR
);

CREATE TABLE rejects (
    load_id     BIGINT NOT NULL,
    path        VARCHAR NOT NULL,
    line_no     BIGINT NOT NULL,
    byte_offset BIGINT NOT NULL,
    reason      VARCHAR NOT NULL
);

CREATE TABLE policy (
    set_at   TIMESTAMPTZ NOT NULL,
    source   VARCHAR,
    toml     VARCHAR NOT NULL
);

CREATE TABLE price_table (
    set_at   TIMESTAMPTZ NOT NULL,
    source   VARCHAR,
    toml     VARCHAR NOT NULL
);

CREATE SEQUENCE load_id_seq START 1;
