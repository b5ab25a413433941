"""Configuration files (policy, price table): TOML validated by a pydantic model, errors in one line."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from fallbackscope.core.errors import UsageError

M = TypeVar("M", bound=BaseModel)


def one_line(text: object) -> str:
    """Return text with all whitespace runs folded to single spaces."""
    return " ".join(str(text).split())


def parse_toml_model(text: str, model: type[M], source: str, what: str) -> M:
    """Return `model` validated from TOML text; a bad file raises UsageError naming the source and the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source}: not valid TOML ({one_line(exc)}).") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # a misspelt key shows as an unknown key and a missing one: name the unknown one, the likely typo
        first = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        why = _PLAIN.get(first["type"]) or one_line(first["msg"]).removeprefix("Value error, ")
        raise UsageError(f"{source}: bad {what} at `{where}`: {why}.") from None


_PLAIN = {"extra_forbidden": "unknown key (a typo?)", "missing": "required key missing"}


def read_text_file(path: str | Path, what: str) -> str:
    """Return the text of a configuration file named on the command line, or raise UsageError."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the {what} ({type(exc).__name__}).") from None
