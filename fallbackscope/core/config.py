"""Where the database lives and the fingerprint key (docs/metrics.md §2)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from fallbackscope.core.errors import FallbackscopeError

DEFAULT_DB = "fallbackscope.duckdb"
KEY_ENV = "FALLBACKSCOPE_KEY"
DB_ENV = "FALLBACKSCOPE_DB"


def resolve_db_path(db: str | os.PathLike[str] | None) -> Path:
    """Return the database path: `--db`, else `$FALLBACKSCOPE_DB`, else `./fallbackscope.duckdb`."""
    if db:
        return Path(db)
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


def key_path_for(db_path: Path) -> Path:
    """Return the key file that sits beside a database: `<db>.key`."""
    return db_path.with_name(db_path.name + ".key")


KEY_CHECK_TEXT = b"fallbackscope key check"


def key_check_value(key: bytes) -> str:
    """Return the key's check value, `HMAC-SHA256(key, "fallbackscope key check")` in hex: stored in the
    database so a later run can tell the key it is given from the one the data was written with."""
    return hmac.new(key, KEY_CHECK_TEXT, hashlib.sha256).hexdigest()


def key_mismatch(db_path: Path | str) -> FallbackscopeError:
    """Return the error of a key whose check value is not the stored one."""
    return FallbackscopeError(f"{db_path}: this database was written with another fingerprint key: set the "
                              f"{KEY_ENV} it was written with, or restore {key_path_for(Path(db_path))}.")


def writing_key(db_path: Path, stored_check: str | None, holds_attempts: bool) -> bytes:
    """Return the key to write into a database whose stored check value is `stored_check` (None: none yet).

    A key whose check value differs from the stored one is refused (FallbackscopeError) while the database
    holds attempts — before anything is read or written, so no key file is created either: a lost key file,
    a job without `$FALLBACKSCOPE_KEY` or a restore without `<db>.key` would otherwise fingerprint the same
    records anew and store them twice. A database without attempts takes any key (and its check value).
    """
    guarded = stored_check is not None and holds_attempts
    if guarded and not _key_given(db_path):
        raise key_mismatch(db_path)  # a key file created now could never match
    key = load_key(db_path)
    if guarded and not hmac.compare_digest(key_check_value(key), stored_check):
        raise key_mismatch(db_path)
    return key


def _key_given(db_path: Path) -> bool:
    env = os.environ.get(KEY_ENV)
    return bool(env and env.strip()) or key_path_for(db_path).exists()


def load_key(db_path: Path, *, create: bool = True) -> bytes:
    """Return the HMAC key: `$FALLBACKSCOPE_KEY`, else the key file beside the database.

    The key file is created once (64 random hex characters, mode 0600) when missing and `create`
    is true; a key file other users can read or write is refused (FallbackscopeError). The key is the
    UTF-8 bytes of the stripped text; it is never written into the database.
    """
    env = os.environ.get(KEY_ENV)
    if env and env.strip():
        return env.strip().encode("utf-8")
    path = key_path_for(db_path)
    if not path.exists():
        if not create:
            raise FallbackscopeError(f"{path}: no fingerprint key file and ${KEY_ENV} is not set.")
        path.parent.mkdir(parents=True, exist_ok=True)
        # written whole under a private name, then linked into place: a crash never leaves an empty key file
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process created it first; read theirs
        finally:
            tmp.unlink(missing_ok=True)
    _refuse_open_key(path)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise FallbackscopeError(f"{path}: cannot read the fingerprint key ({type(exc).__name__}).") from None
    if not text:
        raise FallbackscopeError(f"{path}: the fingerprint key file is empty.")
    return text.encode("utf-8")


def _refuse_open_key(path: Path) -> None:
    """Refuse a key file other users can read or write (as ssh refuses such a private key): with the key,
    anyone holding the database could confirm a guessed prompt from its fingerprint."""
    if os.name != "posix":
        return
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return  # reading it reports the problem
    if mode & 0o077:
        raise FallbackscopeError(
            f"{path}: the fingerprint key file is open to other users (mode {mode:04o}); "
            f"run `chmod 600 {path}` or set ${KEY_ENV}."
        )
