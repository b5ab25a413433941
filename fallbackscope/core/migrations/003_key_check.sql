-- The check value of the fingerprint key the stored attempts were written with (SPEC §2):
-- HMAC-SHA256(key, "fallbackscope key check") in hex. Never the key itself.
CREATE TABLE key_check (
    check_value VARCHAR NOT NULL,
    set_at      TIMESTAMPTZ NOT NULL
);
