"""Phase timings of a load on stderr, with FALLBACKSCOPE_TRACE set (for profiling; the crash harness reads
them to tell where a kill landed)."""

from __future__ import annotations

import os
import sys
import time

_TRACE = bool(os.environ.get("FALLBACKSCOPE_TRACE"))
_T0 = time.perf_counter()


def trace(what: str) -> None:
    """Print the time since start-up, the resident memory and `what` to stderr, when tracing."""
    if _TRACE:
        with open("/proc/self/status") as status:
            rss = next((line.split()[1] for line in status if line.startswith("VmRSS")), "?")
        print(f"trace {time.perf_counter() - _T0:8.3f}s rss {int(rss) // 1024} MiB {what}", file=sys.stderr,
              flush=True)
