"""Where privacy tests look for canaries: the database file's bytes (its WAL too) and every other output."""

from __future__ import annotations

from pathlib import Path


def assert_no_canary(db: Path, canaries: list[str], outputs: dict[str, bytes]) -> None:
    """Fail naming the first canary found in `outputs` (name → bytes) or in any file of the database."""
    blobs = dict(outputs)
    for f in db.parent.iterdir():
        if f.is_file() and f.name.startswith(db.name):
            blobs[f.name] = f.read_bytes()
    for name, blob in blobs.items():
        for text in canaries:
            assert text.encode() not in blob, f"{text} leaked into {name}"
