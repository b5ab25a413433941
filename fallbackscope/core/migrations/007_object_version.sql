-- docs/metrics.md §11: an object-store input's version — its ETag (S3, Azure) or generation (GCS) — as listed
-- when it was loaded. An object whose size and version match its last `ok` load is skipped unread. NULL for
-- local files, standard input and rows written before this migration.
ALTER TABLE loads ADD COLUMN object_version VARCHAR;
