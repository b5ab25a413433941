"""Fingerprints are HMAC-SHA256 of canonical JSON exactly as docs/metrics.md §2 defines them."""

from __future__ import annotations

import hashlib
import hmac
import json

from hypothesis import given
from hypothesis import strategies as st

from fallbackscope.core.fingerprint import canonical_json, hmac_hex, prompt_fingerprint, token_fingerprint

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(st.binary(max_size=200), st.binary(max_size=3000))
def test_hmac_matches_the_standard_library(key, data):
    assert hmac_hex(key, data) == hmac.new(key, data, hashlib.sha256).hexdigest()


@given(json_values)
def test_canonical_json_is_sorted_compact_unescaped_and_round_trips(value):
    text = canonical_json(value).decode("utf-8")
    assert json.loads(text) == value
    if not _has_float(value):  # float spelling (1e16 vs 1e+16) is orjson's shortest form
        assert text == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _has_float(value) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    return False


def test_prompt_fingerprint_of_a_hand_computed_case():
    key = b"k"
    request = {"model": "m", "system": "s", "messages": [{"role": "user", "content": "hé"},
                                                         {"role": "assistant", "content": "partial"}]}
    expected_text = '{"messages":[{"content":[{"text":"hé","type":"text"}],"role":"user"}],"system":"s","tools":null}'
    expected = hmac.new(key, expected_text.encode("utf-8"), hashlib.sha256).hexdigest()
    assert prompt_fingerprint(key, request) == expected


def test_token_fingerprint_is_of_the_raw_token_bytes():
    assert token_fingerprint(b"k", "fct_ü") == hmac.new(b"k", "fct_ü".encode(), hashlib.sha256).hexdigest()
