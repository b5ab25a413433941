"""Object storage through fsspec (docs/metrics.md §11): one place that turns a URL into a filesystem, says which
extra a missing backend comes with, names an object's version, and turns any backend error into one sentence.

Credentials come only the store's usual way (environment, profile, instance role), never in the URL: a URL
that carries a password or a query string is refused before anything is read, and every sentence names the
URL without them. No sentence quotes an exception's text (a server's message may echo request details).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fallbackscope.core.errors import FallbackscopeError, UsageError

# the extra that installs each scheme's fsspec backend (pyproject.toml)
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure",
          "adl": "azure"}
# schemes whose URLs name a container with `container@account…`: that user part is no credential
_CONTAINER_AT = frozenset({"az", "abfs", "abfss"})
_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9.]{0,63}$")


def is_url(name: str) -> bool:
    """Return whether an input or output name is a URL (`s3://…`, `gs://…`, `file://…`) rather than a path."""
    return "://" in name


def scheme_of(url: str) -> str:
    """Return a URL's scheme, lower case."""
    return url.split("://", 1)[0].lower()


def clean_url(url: str) -> str:
    """Return the URL as it may be stored and shown: without a password or token in its user part, a query
    string or a fragment. (An Azure URL's `container@account…` stays: it names the container.)"""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        if ":" in user or scheme_of(url) not in _CONTAINER_AT:
            netloc = host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def checked_url(url: str) -> str:
    """Return `url` when it carries no credentials or query string; else raise UsageError naming it without them
    (credentials go the store's usual way, so none reaches a ledger row, a log or a message)."""
    clean = clean_url(url)
    if clean != url:
        raise UsageError(f"{clean}: a URL with credentials, a query string or a fragment is not read (none of it is "
                         "stored or shown); give the store's credentials the usual way (environment, profile) and "
                         "name the object or prefix alone.")
    return url


def filesystem(url: str) -> tuple[Any, str]:
    """Return (fsspec filesystem, path inside it) of an object-store URL. Raises FallbackscopeError with one
    sentence when the URL carries credentials or its backend is not installed."""
    checked_url(url)
    scheme = scheme_of(url)
    with object_errors(url, "open the store"):
        try:
            from fsspec.core import url_to_fs

            return url_to_fs(url)
        except ImportError:
            extra = EXTRAS.get(scheme)
            how = f"pip install 'fallbackscope[{extra}]'" if extra else f"install the fsspec backend for {scheme}://"
            raise FallbackscopeError(f"{url}: reading {scheme}:// URLs needs fsspec's {scheme} backend: {how}.") \
                from None
        except ValueError:  # fsspec: "Protocol not known"
            raise FallbackscopeError(f"{url}: {scheme}:// is not a storage fsspec knows (s3://, gs://, az://).") \
                from None


def object_version(info: Mapping[str, Any]) -> str | None:
    """Return an object's version from an fsspec info dict: its generation (gcsfs `generation`), else its ETag
    (s3fs `ETag`, adlfs and gcsfs `etag`), without quotes; None when the backend gives neither (a local file)."""
    for key in ("generation", "ETag", "etag", "e_tag"):
        value = info.get(key)
        if value not in (None, ""):
            return str(value).strip('"')
    return None


def object_mtime_ns(info: Mapping[str, Any]) -> int | None:
    """Return an object's modification time in ns from an fsspec info dict (s3fs `LastModified`, gcsfs `updated`,
    adlfs `last_modified`, local `mtime`), or None."""
    for key in ("LastModified", "last_modified", "updated", "mtime"):
        value = info.get(key)
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
        if isinstance(value, dt.datetime):
            value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
            return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value * 1_000_000_000)
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def failure_reason(exc: BaseException) -> str:
    """Return why an object-store call failed, in our words: never the exception's text (a server's message may
    echo request details), at most a service's error code."""
    names = [type(e).__name__ for e in _chain(exc)]
    if any("Credential" in name for name in names):
        return "no usable credentials: set them the store's usual way, in the environment or a profile"
    if isinstance(exc, FileNotFoundError):
        return "no such object or bucket"
    if isinstance(exc, PermissionError):
        return "access denied: check the store's credentials and permissions"
    for e in _chain(exc):  # botocore's ClientError, under s3fs's translation
        response = getattr(e, "response", None)
        code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
        if isinstance(code, str) and _CODE.match(code):
            return f"the store answered {code}"
    if any(isinstance(e, ConnectionError | TimeoutError) or "Connect" in type(e).__name__
           or "Endpoint" in type(e).__name__ for e in _chain(exc)):
        return "cannot reach the store's endpoint"
    return type(exc).__name__


@contextlib.contextmanager
def object_errors(url: str, doing: str = "read the object") -> Iterator[None]:
    """Turn any error of the block into one FallbackscopeError: `<url>: cannot <doing> (<reason>).` (our own
    errors pass through)."""
    try:
        yield
    except FallbackscopeError:
        raise
    except Exception as exc:
        raise FallbackscopeError(f"{clean_url(url)}: cannot {doing} ({failure_reason(exc)}).") from None


class ObjectReader:
    """An open object's bytes (an fsspec file) whose read errors are one sentence naming the object."""

    def __init__(self, url: str, fh: Any) -> None:
        self._url = url
        self._fh = fh

    def read(self, size: int = -1) -> bytes:
        with object_errors(self._url):
            return self._fh.read(size)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._fh.close()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
