"""Our exception type and the documented exit codes (docs/metrics.md §7)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the `fallbackscope` command."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    SLO_NOT_MET = 3  # or an alert firing
    NO_DATA = 4  # report, metrics, alert over a period without chains


class FallbackscopeError(Exception):
    """An error the CLI turns into one sentence and an exit code, never a traceback.

    The message must never hold log content: only paths, line numbers, field names and reasons.
    """

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(FallbackscopeError):
    """Bad arguments or configuration given by the user (exit 2)."""

    exit_code = ExitCode.USAGE


def output_failure(path, exc: OSError) -> FallbackscopeError:
    """Return the one-sentence error for an output path that cannot be written (never the OS's text)."""
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        why = "it is a directory; name a file"
    elif path.exists() and not path.is_dir() and isinstance(exc, (FileExistsError, NotADirectoryError)):
        why = "it is a file, not a directory"
    elif not path.parent.is_dir():
        why = f"the directory {path.parent} does not exist"
    else:
        why = exc.strerror or type(exc).__name__
    return FallbackscopeError(f"{path}: cannot write there ({why}).")
