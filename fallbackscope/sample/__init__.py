"""Seeded synthetic LLM API logs, and a ground truth of what was planted in them.

`generate` writes one `exchange` JSON-lines file per UTC day (docs/metrics.md §3.1), a Message Batches results file
(§3.4), optionally a wire capture of the streamed calls (§3.3), and `ground_truth.json`: the counts that
ingest and analytics must find, computed from the planted scenarios (§1, §4, §6), never by reading the
files back. `generate_lines` writes one large file fast, for benchmarks.

All text is random words: nothing here is personal data. The same seed gives the same bytes.

Modules: `spec` (what to plant: spec, workloads, models, error catalogue, planted records), `writer` (log lines,
Messages, SSE events), `traffic` (scenarios, sessions, batches), `truth` (the ground truth), `logs`
(`generate`), `bench` (`generate_lines`).
"""

from fallbackscope.core.outcomes import OUTCOMES
from fallbackscope.sample.bench import generate_lines
from fallbackscope.sample.logs import generate
from fallbackscope.sample.spec import (
    BATCH_WORKLOAD,
    CATEGORIES,
    CREDIT_OUTCOMES,
    WORKLOADS,
    SampleSpec,
)

__all__ = ["BATCH_WORKLOAD", "CATEGORIES", "CREDIT_OUTCOMES", "OUTCOMES", "WORKLOADS", "SampleSpec", "generate",
           "generate_lines"]
