"""Run every benchmark of this folder once and write ONE JSON with all their figures and the machine description.

Each benchmark runs in its own process (fresh allocator and thread pools) at a size chosen so that the whole run
finishes in under 8 minutes on 2 CPU cores (``--device cpu``) or on one GPU (``--device cuda``: the benchmarks that
take a device run on it, AMP where the bundles use it is the benchmarks' own choice; the others stay on the CPU).
The last JSON object a benchmark prints is its report; a benchmark that fails or times out is recorded with its exit
status and the tail of its output, and the run goes on.

Usage: ``python benchmarks/run_all.py [--device cpu|cuda] [--out FILE] [--only njet continuous ...]
[--timeout 480]``; default ``--out``: ``benchmarks/results/<host>-<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any, Optional

from _timing import describe_machine

HERE = os.path.dirname(os.path.abspath(__file__))

#: per benchmark: arguments on the CPU and on a GPU (``None``: the benchmark has no device option, CPU arguments)
PLANS: dict[str, dict[str, Optional[list[str]]]] = {
    "njet": {"cpu": ["--size", "64", "--depth", "16", "--repeats", "3", "--budget", "20"],
             "cuda": ["--size", "64", "--repeats", "5", "--device", "cuda"]},
    "continuous": {"cpu": ["--quick"], "cuda": None},
    "hyperconv": {"cpu": ["--quick"], "cuda": None},
    "lits_inference": {"cpu": ["--quick", "--device", "cpu"], "cuda": ["--device", "cuda"]},
    "metrics": {"cpu": ["--quick"], "cuda": None},
    "nerd": {"cpu": ["--quick"], "cuda": None},
    "transforms": {"cpu": ["--quick"], "cuda": None},
}


def last_json(text: str) -> Optional[Any]:
    """The last complete top-level JSON object in ``text`` (benchmarks print progress lines before their report)."""
    decoder = json.JSONDecoder()
    found, i = None, 0
    while True:
        start = text.find("{", i)
        if start < 0:
            return found
        try:
            found, end = decoder.raw_decode(text, start)
            i = end
        except json.JSONDecodeError:
            i = start + 1


def run(name: str, args: list[str], timeout: float) -> dict[str, Any]:
    """Run ``bench_<name>.py args`` and return its report (or its failure) with the wall time."""
    cmd = [sys.executable, os.path.join(HERE, f"bench_{name}.py"), *args]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=os.path.dirname(HERE))
    except subprocess.TimeoutExpired:
        wall = round(time.perf_counter() - start, 1)
        return {"args": args, "error": f"timed out after {timeout:g} s", "wall_s": wall}
    entry: dict[str, Any] = {"args": args, "wall_s": round(time.perf_counter() - start, 1)}
    report = last_json(proc.stdout)
    if proc.returncode != 0 or report is None:
        entry.update(error=f"exit status {proc.returncode}", output_tail=(proc.stdout + proc.stderr)[-2000:])
    else:
        entry["report"] = report
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--out", default=None, help="JSON file (default benchmarks/results/<host>-<device>.json)")
    parser.add_argument("--only", nargs="+", choices=sorted(PLANS), default=None, help="run only these benchmarks")
    parser.add_argument("--timeout", type=float, default=480.0, help="seconds per benchmark")
    args = parser.parse_args()
    out = args.out or os.path.join(HERE, "results", f"{platform.node() or 'host'}-{args.device}.json")
    results: dict[str, Any] = {}
    for name in args.only or PLANS:
        plan = PLANS[name]
        bench_args = plan[args.device] if plan[args.device] is not None else plan["cpu"]
        print(f"[run_all] bench_{name} {' '.join(bench_args)}", file=sys.stderr, flush=True)
        results[name] = run(name, bench_args, args.timeout)
        print(f"[run_all] bench_{name}: {results[name]['wall_s']} s"
              f"{' ' + results[name]['error'] if 'error' in results[name] else ''}", file=sys.stderr, flush=True)
    summary = {
        "device": args.device,
        "machine": describe_machine(args.device if args.device == "cuda" else None),
        "note": "CPU figures depend on the machine's load: run on a quiet machine",
        "total_wall_s": round(sum(r["wall_s"] for r in results.values()), 1),
        "benchmarks": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(summary, f, indent=1)
    print(out)


if __name__ == "__main__":
    main()
