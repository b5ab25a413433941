"""Our exception type and the documented exit codes (SPEC §7)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the `fallbackscope` command."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    SLO_NOT_MET = 3


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
