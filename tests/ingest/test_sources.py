"""Listing and reading inputs (docs/metrics.md §3, §11, `ingest/sources.py`), the same for both engines: folders
and object-store prefixes in name order, gzip by its magic bytes, byte ranges that split only after a newline."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from fallbackscope.core.errors import FallbackscopeError
from ingest.sources import expand, line_ranges, read_range


def test_a_folder_lists_in_name_order_and_gzip_is_told_by_content_not_by_name(tmp_path):
    (tmp_path / "b.log").write_bytes(gzip.compress(b"x\n"))
    (tmp_path / "a.gz").write_bytes(b"plain\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.jsonl").write_bytes(b"y\n")
    (tmp_path / ".hidden").write_bytes(b"z\n")
    listed = expand([str(tmp_path)])
    assert [(s.path.name, s.compressed) for s in listed] == [("a.gz", False), ("b.log", True), ("c.jsonl", False)]
    assert [s.head() for s in listed] == [b"plain\n", b"x\n", b"y\n"]


def test_an_object_store_url_lists_like_a_folder_with_its_url_as_location(tmp_path):
    (tmp_path / "b.jsonl").write_bytes(gzip.compress(b"x\n"))
    (tmp_path / "a.jsonl").write_bytes(b"plain\n")
    listed = expand([f"file://{tmp_path}"])
    assert [s.location for s in listed] == [f"file://{tmp_path}/a.jsonl", f"file://{tmp_path}/b.jsonl"]
    assert [(s.compressed, s.is_stdin, s.head()) for s in listed] == [(False, False, b"plain\n"), (True, False, b"x\n")]
    assert read_range(listed[0].location, 1, 4) == b"lai"


def test_a_glob_lists_its_matches_and_a_missing_name_is_one_sentence(tmp_path):
    for name in ("x-2.jsonl", "x-1.jsonl", "y.jsonl"):
        (tmp_path / name).write_bytes(b"{}\n")
    assert [s.path.name for s in expand([str(tmp_path / "x-*.jsonl")])] == ["x-1.jsonl", "x-2.jsonl"]
    with pytest.raises(FallbackscopeError, match="no such file or directory"):
        expand([str(tmp_path / "z-*.jsonl")])


@pytest.mark.parametrize("block", [1, 5, 7, 64, 1000])
def test_byte_ranges_end_after_a_newline_and_read_every_line_once(tmp_path, block):
    data = b"".join(b"line %d %s\n" % (i, b"x" * (i % 9)) for i in range(40)) + b"last, unterminated"
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    start = data.index(b"line 3")
    ranges = line_ranges(path, start, len(data), block)
    assert ranges[0][0] == start and ranges[-1][1] == len(data)
    assert all(a < b and (b == len(data) or data[b - 1:b] == b"\n") for a, b in ranges)
    assert all(prev[1] == nxt[0] for prev, nxt in zip(ranges, ranges[1:], strict=False))
    assert b"".join(read_range(path, a, b) for a, b in ranges) == data[start:]


def test_a_folder_is_listed_without_its_hidden_files_and_hidden_folders(tmp_path):
    for name in ("b.jsonl", "a/c.jsonl", ".hidden.jsonl", ".sample/ground_truth.json", "a/.git/x.jsonl"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}\n")
    assert [Path(s.display).relative_to(tmp_path).as_posix() for s in expand([str(tmp_path)])] == ["a/c.jsonl",
                                                                                                   "b.jsonl"]
    # named on its own, a hidden file is read
    assert [s.display for s in expand([str(tmp_path / ".sample" / "ground_truth.json")])] == [
        str(tmp_path / ".sample" / "ground_truth.json")]
