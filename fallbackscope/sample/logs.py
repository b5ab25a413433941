"""`generate`: a sample's files, one `exchange` JSON-lines file per UTC day, the Message Batches results,
optionally a wire capture of the streams, and `ground_truth.json`."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from fallbackscope.sample.spec import BATCH_WORKLOAD, BY_NAME, MIDNIGHT_SCENARIOS, WORKLOADS, SampleSpec, iso_ms
from fallbackscope.sample.traffic import Traffic
from fallbackscope.sample.truth import ground_truth
from fallbackscope.sample.writer import sse, write_lines


def generate(out_dir: Path, spec: SampleSpec = SampleSpec(), extras: Path | None = None) -> dict:  # noqa: B008
    """Write the logs and `ground_truth.json` into out_dir; return the ground truth dict.

    Files: `exchange-YYYY-MM-DD.jsonl` per day (lines in time order), `batch-results.jsonl` when
    `with_batch`, `stream-capture.sse` when `with_sse` (the streamed calls again, as on the wire: every
    stream is a duplicate of an exchange line). The batch results carry no time, workload or batch id:
    the ground truth counts them as ingested with its `ingest_options` (`--batch-id`, `--workload`,
    `--default-ts`). `extras`: a folder for `ground_truth.json` and the batch results instead — what a plain
    `ingest` of out_dir must not read (`fallbackscope sample` puts them in `out_dir/.sample`, which `ingest`
    passes over); `files` then names the batch results by their path from out_dir.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    extras = Path(extras) if extras is not None else out_dir
    extras.mkdir(parents=True, exist_ok=True)
    g = Traffic(spec.seed, spec.prompt_words)
    epoch = dt.datetime.combine(spec.start, dt.time(), dt.UTC)
    for day in range(spec.days):
        day_ms = int((epoch + dt.timedelta(days=day)).timestamp() * 1000)
        boost = 2.0 if spec.days >= 14 and day >= spec.days - 7 else 1.0  # a refusal drift in the last week
        left = spec.chains_per_day
        while left > 0:
            wl = g.rng.choices(WORKLOADS, [w.weight for w in WORKLOADS])[0]
            n = min(left, g.rng.randint(*wl.session) if wl.session else 1)
            left -= n
            g.session(wl, day, day_ms + g.rng.randint(20 * 60_000, 20 * 3_600_000 + 30 * 60_000), n, boost)
    if spec.across_midnight:
        for day in range(1, spec.days):
            midnight = int((epoch + dt.timedelta(days=day)).timestamp() * 1000)
            for name, scenario in MIDNIGHT_SCENARIOS:
                # the first attempt a fraction of a second before midnight: every later one falls after it
                g.session(BY_NAME[name], day - 1, midnight - g.rng.randint(20, 240), 1, 1.0, scenario)
    g.lines.sort(key=lambda x: (x[0], x[1]))
    by_day: dict[str, list[bytes]] = defaultdict(list)
    for _, _, line in g.lines:
        by_day[line["ts"][:10]].append(orjson.dumps(line))
    files: dict[str, dict[str, int]] = {}
    for day_str, rows in sorted(by_day.items()):
        write_lines(out_dir / f"exchange-{day_str}.jsonl", rows)
        files[f"exchange-{day_str}.jsonl"] = {"lines": len(rows)}
    truth: dict[str, Any] = {"seed": spec.seed, "batch_id": None, "batch_ts": None, "batch_workload": None}
    if spec.with_batch:
        batch_ts = int((epoch + dt.timedelta(days=spec.days // 2, hours=2)).timestamp() * 1000)
        bid, rows = g.batch(batch_ts, max(12, spec.chains_per_day // 2))
        write_lines(extras / "batch-results.jsonl", [orjson.dumps(r) for r in rows])
        files[(extras / "batch-results.jsonl").relative_to(out_dir).as_posix()] = {"lines": len(rows)}
        truth.update(batch_id=bid, batch_ts=iso_ms(batch_ts), batch_workload=BATCH_WORKLOAD)
        truth["ingest_options"] = {"--batch-id": bid, "--workload": BATCH_WORKLOAD, "--default-ts": iso_ms(batch_ts)}
    if spec.with_sse:
        streams = [line["events"] for _, _, line in g.lines if "events" in line]
        (out_dir / "stream-capture.sse").write_bytes(b"".join(sse(e) for e in streams))
        files["stream-capture.sse"] = {
            "lines": sum(3 * len(e) for e in streams),
            "records": len(streams),
            "duplicates": len(streams),
        }
    truth["files"] = files
    truth["exchange_workloads"] = {
        w.name: {"chain_id": w.chain_id, "session_id": w.session is not None} for w in WORKLOADS
    }
    truth |= ground_truth(g.chains)
    (extras / "ground_truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2) + b"\n")
    return truth
