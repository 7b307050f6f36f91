"""RSS of one process running the service's backend over every batch size, twice: where the memory goes.

    python benchmarks/rss_by_batch.py WEIGHTS [--backend eager] [--max-batch 8]

Prints one JSON object: RSS after loading, after each batch size's first
call (pass 1) and after the same sizes again (pass 2), each call made from
a worker thread as the service's batcher does.
A leak grows in pass 2; a plateau is reached in pass 1 and stays. Run it
with MALLOC_ARENA_MAX=2 in the environment to see glibc's per-thread
arenas' share. Used by bench_soak.py (test_rss_by_batch_size).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch


def rss_mb() -> float:
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("weights")
    p.add_argument("--backend", default="eager")
    p.add_argument("--max-batch", type=int, default=8)
    args = p.parse_args(argv)
    from hida_rt.backends import create_backend

    out = {"start_mb": round(rss_mb(), 1)}
    backend = create_backend(args.backend, args.weights, device="cpu", progress=False)
    out["loaded_mb"] = round(rss_mb(), 1)
    pool = ThreadPoolExecutor(1)
    for name in ("pass1", "pass2"):
        row = {}
        for n in range(1, args.max_batch + 1):
            photo, depth = torch.rand(n, 3, 256, 256) * 2 - 1, torch.rand(n, 1, 256, 256)
            style = torch.full((n, 3), 1 / 3)
            pool.submit(backend.run, photo, depth, style).result()
            row[n] = round(rss_mb(), 1)
        out[name] = row
    pool.shutdown()
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
