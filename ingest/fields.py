"""Typed reads from a decoded record. A wrong type rejects the record with a reason naming the field.

Reasons name fields by their path in the record's format and never quote a value.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

_INT_LIMIT = 2**62
# far beyond any real request, and low enough that no sum of an attempt's counts (iterations added up,
# the five billable columns in the cost SQL) can overflow 64 bits
TOKEN_LIMIT = 2**40


class Reject(Exception):
    """The record cannot be used; the message is the reason stored in `rejects`."""


def wrong_type(path: str, expected: str) -> Reject:
    return Reject(f"field `{path}` has the wrong type (expected {expected})")


def _path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def get_obj(obj: dict, key: str, parent: str = "") -> dict | None:
    value = obj.get(key)
    if value is None or type(value) is dict:
        return value
    raise wrong_type(_path(parent, key), "an object")


def get_list(obj: dict, key: str, parent: str = "") -> list | None:
    value = obj.get(key)
    if value is None or type(value) is list:
        return value
    raise wrong_type(_path(parent, key), "an array")


def get_str(obj: dict, key: str, parent: str = "") -> str | None:
    value = obj.get(key)
    if value is None or type(value) is str:
        return value
    raise wrong_type(_path(parent, key), "a string")


def get_bool(obj: dict, key: str, parent: str = "") -> bool | None:
    value = obj.get(key)
    if value is None or type(value) is bool:
        return value
    raise wrong_type(_path(parent, key), "true or false")


def get_int(obj: dict, key: str, parent: str = "") -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is not int:
        if type(value) is float and value.is_integer():
            value = int(value)
        else:
            raise wrong_type(_path(parent, key), "an integer")
    if not -_INT_LIMIT < value < _INT_LIMIT:
        raise Reject(f"field `{_path(parent, key)}` is out of range")
    return value


def get_tokens(obj: dict | None, key: str, parent: str = "") -> int:
    """Return a token count (0 when absent); a negative count rejects the record."""
    if obj is None:
        return 0
    value = obj.get(key)
    if type(value) is int and 0 <= value < TOKEN_LIMIT:
        return value  # the common case, checked first
    value = get_int(obj, key, parent)
    if value is None:
        return 0
    if value < 0:
        raise Reject(f"negative token count in `{_path(parent, key)}`")
    if value >= TOKEN_LIMIT:
        raise Reject(f"field `{_path(parent, key)}` is out of range")
    return value


def get_number(obj: dict, key: str, parent: str = "") -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is bool or not isinstance(value, int | float):
        raise wrong_type(_path(parent, key), "a number")
    return float(value)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TS_LIMIT_US = 253_402_300_800_000_000  # 10000-01-01T00:00:00Z: no later time fits a timestamp column
_naive_timestamps = 0  # timestamps without an offset read by `parse_ts` in this process, since last taken


def parse_ts(value: Any, path: str) -> int:
    """Return RFC 3339 text (or epoch seconds) as UTC microseconds since the epoch.

    A time without an offset is read as UTC and counted (`take_naive_timestamps`: the load warns of them); a
    date without a time of day is rejected, as is a time beyond year 9999 once in UTC."""
    global _naive_timestamps
    if isinstance(value, bool):
        raise Reject(f"unparseable timestamp in `{path}`")
    if isinstance(value, int | float):
        if not 0 <= value < 4e9:
            raise Reject(f"unparseable timestamp in `{path}`")
        return int(round(value * 1_000_000))
    if not isinstance(value, str):
        raise Reject(f"unparseable timestamp in `{path}`")
    text = value.strip()
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Reject(f"unparseable timestamp in `{path}`") from None
    if parsed.tzinfo is None:
        if _date_only(text):
            raise Reject(f"timestamp without a time of day in `{path}`")
        parsed = parsed.replace(tzinfo=dt.UTC)  # no offset given: read as UTC, and counted
        _naive_timestamps += 1
    delta = parsed - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if micros >= _TS_LIMIT_US:
        raise Reject(f"field `{path}` is out of range")
    return micros


def _date_only(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def take_naive_timestamps() -> int:
    """Return how many timestamps without an offset `parse_ts` read in this process since the last call, and
    start counting again."""
    global _naive_timestamps
    count, _naive_timestamps = _naive_timestamps, 0
    return count
