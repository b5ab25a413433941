-- What reloading, forgetting and late files need (SPEC §2, §4): a load's options, the attempts each load held
-- as duplicates, and what the app gave each attempt for linking, so stored chains can be linked again.
ALTER TABLE loads ADD COLUMN options VARCHAR;  -- the load's options as JSON (`ingest --reload` keeps those not given)

-- Which load held each duplicate: an attempt id already stored when the load read it (a removed attempt held by a
-- remaining load is restored from that load's file).
CREATE TABLE duplicates (
    load_id    BIGINT NOT NULL,
    attempt_id VARCHAR NOT NULL
);

-- The linking inputs of an attempt that the attempts table does not keep (docs/metrics.md §4): the app's chain id,
-- attempt number and trigger, and the record's ordinal in its line. One row per attempt with any of them.
CREATE TABLE link_inputs (
    attempt_id     VARCHAR NOT NULL,
    load_id        BIGINT NOT NULL,
    given_chain_id VARCHAR,
    given_attempt  BIGINT,
    given_trigger  VARCHAR,
    record_no      INTEGER NOT NULL
);

-- Attempts stored before this migration keep their chains: their chain id is taken as given (so linking them
-- again never splits them), as is the trigger of every attempt after a chain's first.
INSERT INTO link_inputs
SELECT attempt_id, load_id, chain_id, NULL, CASE WHEN attempt_index > 1 THEN "trigger" END, 0 FROM attempts;
