-- docs/metrics.md §3.8: web searches a format does not report are unknown (NULL), and the attempt's cost is then
-- a lower bound (`cost_complete` false). Every attempt stored before this migration was read from a format that
-- reports its searches: its cost is complete.
ALTER TABLE attempts ALTER COLUMN web_search_requests DROP NOT NULL;
ALTER TABLE attempts ADD COLUMN cost_complete BOOLEAN DEFAULT true;
UPDATE attempts SET cost_complete = true WHERE cost_complete IS NULL;
ALTER TABLE attempts ALTER COLUMN cost_complete SET NOT NULL;
-- Non-hop iterations (an advisor) on another model than the serving one: their tokens are inside the attempt's
-- token columns and repeated here, priced at `side_model` (NULL: no such part).
ALTER TABLE attempts ADD COLUMN side_model VARCHAR;
ALTER TABLE attempts ADD COLUMN side_input_tokens BIGINT;
ALTER TABLE attempts ADD COLUMN side_output_tokens BIGINT;
ALTER TABLE attempts ADD COLUMN side_cache_read_tokens BIGINT;
ALTER TABLE attempts ADD COLUMN side_cache_write_5m_tokens BIGINT;
ALTER TABLE attempts ADD COLUMN side_cache_write_1h_tokens BIGINT;
