"""Timing helpers shared by every benchmark in this folder: warm-up, interleaved rounds, medians, and a description of
the machine the figures were measured on.

Benchmarks compare our code with a peer (MONAI, sigpy, a dense-kernel convolution, a plain twin network) in one
process.  On a shared machine the load drifts during a run, so the functions being compared are timed round-robin
(one call of each per round) and the median of the rounds is reported; a ratio then compares calls that ran under the
same load.  Ratios also depend on the machine (CPU model and its vector extensions, the PyTorch build, the number of
threads), which :func:`describe_machine` records next to the figures.

Benchmarks import it as a sibling module (``python benchmarks/bench_x.py`` puts ``benchmarks/`` on ``sys.path``).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any, Optional, Union

import torch

__all__ = ["clock", "describe_machine", "interleaved", "machine_summary", "median_ratios", "medians", "sync", "timed"]

Device = Optional[Union[str, torch.device]]

# the CPU extensions that decide which convolution / FFT kernels oneDNN, MKL and PocketFFT use
_CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
              "asimd", "sve", "sve2")


def sync(device: Device = None) -> None:
    """Wait for the queued CUDA work of ``device`` (a no-op on the CPU), so that a clock reading covers it."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def clock(fn: Callable[..., Any], *args: Any, device: Device = None, **kwargs: Any) -> tuple[float, Any]:
    """Seconds taken by one call ``fn(*args, **kwargs)`` (synchronised on ``device``) and its return value."""
    sync(device)
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    sync(device)
    return time.perf_counter() - start, out


def interleaved(
    fns: Mapping[str, Callable[[], Any]],
    repeats: int,
    warmup: int = 1,
    device: Device = None,
    budget: Optional[float] = None,
) -> dict[str, list[float]]:
    """Seconds per call of every function, round after round.

    Every function is first called ``warmup`` times (allocator, oneDNN primitive caches, cached kernels, JIT), then
    once per round for ``repeats`` rounds, in the order of ``fns``, so that load changes of a shared machine hit all
    of them alike.

    Args:
        fns: name -> function without arguments.
        repeats: number of rounds.
        warmup: untimed calls of each function before the first round.
        device: synchronised around every call when it is a CUDA device.
        budget: seconds per function after which it is no longer timed (it keeps at least one round); ``None``: no
            limit.

    Returns:
        name -> list of the seconds of its timed calls (one per round it ran).
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
        sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if budget is not None and times[name] and sum(times[name]) > budget:
                continue
            times[name].append(clock(fn, device=device)[0])
    return times


def medians(times: Mapping[str, list[float]]) -> dict[str, float]:
    """The median of each list of :func:`interleaved` seconds."""
    return {name: statistics.median(t) for name, t in times.items()}


def median_ratios(times: Mapping[str, list[float]], baseline: str) -> dict[str, float]:
    """For every function but ``baseline``: the median over rounds of its time divided by the baseline's time in the
    same round (robust to a load change between rounds)."""
    return {
        name: statistics.median(a / b for a, b in zip(t, times[baseline]))
        for name, t in times.items()
        if name != baseline
    }


def timed(fn: Callable[[], Any], repeats: int, warmup: int = 1, device: Device = None) -> tuple[float, Any]:
    """Median seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones, and the value of the last call."""
    value = None
    for _ in range(warmup):
        value = fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t, value = clock(fn, device=device)
        times.append(t)
    return statistics.median(times), value


def _cpuinfo() -> tuple[str, list[str]]:
    """CPU model name and the relevant flags, read from ``/proc/cpuinfo`` where there is one."""
    model, flags = None, None
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in lines:  # one block per logical CPU: the first block is enough
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key in ("flags", "Features") and flags is None:
            present = set(value.split())
            flags = [f for f in _CPU_FLAGS if f in present]
    return model or platform.processor() or platform.machine(), flags or []


def describe_machine(device: Device = None) -> dict[str, Any]:
    """What the figures of a benchmark depend on besides the code: CPU model and vector extensions, logical CPUs,
    the PyTorch build (version, CPU capability it dispatches to, oneDNN, CUDA) and its thread counts, and the GPU
    when ``device`` is a CUDA device."""
    model, flags = _cpuinfo()
    info: dict[str, Any] = {
        "cpu": model,
        "cpu_flags": flags,
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cuda": torch.version.cuda,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
    }
    if device is not None and torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def machine_summary(device: Device = None) -> str:
    """One line: CPU model and logical CPUs, the torch version, and the GPU when timing one."""
    info = describe_machine(device)
    text = f"{info['cpu']}, {info['logical_cpus']} logical CPUs, torch {info['torch']}"
    if "gpu" in info:
        text += f", {info['gpu']}"
    return text
