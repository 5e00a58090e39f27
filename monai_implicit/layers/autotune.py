"""Measured choice between execution paths that compute the same result, as ``torch.backends.cudnn.benchmark`` does.

Which of two exact paths is faster (N-Jet's dense or separable convolution, "Resolution learning in deep
convolutional networks using scale-space theory", Pintea, Tomen et al.; a direct or an FFT convolution for the
large continuous kernels of "FlexConv: Continuous Kernel Convolutions with Differentiable Kernel Sizes", Romero,
Bruintjes et al., Appx. D) depends on the machine: a flop model calibrated on one CPU mispredicts on another CPU
and on a GPU.  On the first use of a configuration (its ``key``: input shape, dtype, device, layer configuration
including the current kernel size, whether gradients are needed) :func:`choose` times every candidate once
(a warm-up call, then the median of :data:`REPEATS` calls, forward and backward when a gradient is needed) and
caches the fastest; later calls with the same key only look it up.

The cost model of each caller decides instead when timing is off or unsafe:

* :func:`set_enabled` ``(False)`` or the environment variable ``MONAI_IMPLICIT_AUTOTUNE=0``;
* ``torch.use_deterministic_algorithms(True)`` (the choice must not depend on timing noise);
* TorchScript scripting/tracing and ``torch.compile`` (no timing inside a graph capture);
* problems under :data:`MIN_WORK` multiply-adds, where timing costs more than any choice can save;
* an explicit ``path=``/``method=`` of the caller (it never asks).

Both candidates give the same result to float rounding, so a measured choice never changes what is computed.
Choices live in memory (:func:`clear_cache`); with ``MONAI_IMPLICIT_AUTOTUNE_CACHE=<file.json>`` or
:func:`set_cache_file` they are also read from and written to a JSON file, so a machine measures once.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from contextlib import contextmanager
from typing import Any, Callable, Hashable, Iterator, Mapping, Optional, Sequence

import torch
from monai.config import PathLike

from monai_implicit.utils import check_option

__all__ = [
    "MIN_WORK",
    "REPEATS",
    "set_enabled",
    "is_enabled",
    "autotuning",
    "can_measure",
    "measure",
    "with_backward",
    "choose",
    "clear_cache",
    "cached_choices",
    "set_cache_file",
]

#: multiply-adds (cost-model estimate of the cheaper path) below which the cost model decides without timing
MIN_WORK = 1e8
#: timed calls per candidate (after one warm-up call); the median is compared
REPEATS = 3

_ENV = "MONAI_IMPLICIT_AUTOTUNE"
_CACHE_ENV = "MONAI_IMPLICIT_AUTOTUNE_CACHE"
_enabled: Optional[bool] = None
_choices: dict[str, str] = {}
_cache_file: Optional[str] = None
_loaded_file: Optional[str] = None


def set_enabled(flag: bool) -> None:
    """Turn measured path selection on or off for the process (overrides ``MONAI_IMPLICIT_AUTOTUNE``)."""
    global _enabled
    _enabled = bool(flag)


def is_enabled() -> bool:
    """Whether measured selection is switched on: :func:`set_enabled`, else ``MONAI_IMPLICIT_AUTOTUNE`` (default on;
    ``0``, ``false``, ``no`` or ``off`` turn it off)."""
    if _enabled is not None:
        return _enabled
    return os.environ.get(_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


@contextmanager
def autotuning(flag: bool) -> Iterator[None]:
    """Context manager: measured selection on (``True``) or off (``False``) inside the block."""
    global _enabled
    previous = _enabled
    _enabled = bool(flag)
    try:
        yield
    finally:
        _enabled = previous


def can_measure() -> bool:
    """Whether a choice may be timed now: switched on, not in deterministic mode, not scripting/tracing/compiling.

    Deterministic mode is either PyTorch's (``torch.use_deterministic_algorithms(True)``) or cuDNN's
    (``torch.backends.cudnn.deterministic``, which ``monai.utils.set_determinism`` sets, as every bundle does): a
    timed choice can differ between runs, and two paths that agree to float tolerance would then break a seeded
    run's bit-for-bit reproducibility.
    """
    if not is_enabled() or torch.are_deterministic_algorithms_enabled() or torch.backends.cudnn.deterministic:
        return False
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        return False
    compiling = getattr(torch.compiler, "is_compiling", None)
    return not (compiling is not None and compiling())


def measure(
    fn: Callable[[], Any],
    repeats: int = REPEATS,
    clock: Callable[[], float] = time.perf_counter,
    device: Optional[torch.device] = None,
) -> float:
    """Median time of ``repeats`` calls of ``fn`` after one warm-up call (CUDA is synchronised around each call)."""

    def sync() -> None:
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()
    times = []
    for _ in range(max(int(repeats), 1)):
        sync()
        start = clock()
        fn()
        sync()
        times.append(clock() - start)
    return statistics.median(times)


def with_backward(fn: Callable[[], torch.Tensor], inputs: Sequence[torch.Tensor]) -> Callable[[], None]:
    """``fn`` followed by the gradient of its output with respect to those ``inputs`` that require one.

    The gradient is returned by ``torch.autograd.grad``, never accumulated into ``.grad``, so timing leaves the
    parameters' gradients untouched.  Without such inputs (or with grad mode off) only the forward runs.
    """
    needed = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]

    def run() -> None:
        out = fn()
        if needed and torch.is_grad_enabled() and out.requires_grad:
            torch.autograd.grad(out, needed, torch.ones_like(out), allow_unused=True)

    return run


def _load() -> None:
    global _loaded_file
    path = _cache_file or os.environ.get(_CACHE_ENV) or None
    if path is None or path == _loaded_file:
        return
    _loaded_file = path
    if os.path.isfile(path):
        with open(path) as f:
            stored = json.load(f)
        if isinstance(stored, dict):
            _choices.update({str(k): str(v) for k, v in stored.items()})


def _save() -> None:
    path = _cache_file or os.environ.get(_CACHE_ENV) or None
    if path is None:
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(_choices, f, indent=1, sort_keys=True)
    os.replace(tmp, path)  # atomic: concurrent processes never read a half-written file


def set_cache_file(path: Optional[PathLike]) -> None:
    """Also keep choices in the JSON file ``path`` (read now, rewritten after each new choice); ``None``: memory only
    unless ``MONAI_IMPLICIT_AUTOTUNE_CACHE`` names a file."""
    global _cache_file
    _cache_file = None if path is None else os.fspath(path)
    _load()


def clear_cache() -> None:
    """Forget every choice made in this process (a disk cache file is left as it is)."""
    global _loaded_file
    _choices.clear()
    _loaded_file = None


def cached_choices() -> dict[str, str]:
    """A copy of the cached choices, ``{key: candidate name}``."""
    return dict(_choices)


def choose(
    key: Hashable,
    candidates: Mapping[str, Callable[[], Any]],
    default: str,
    work: float = float("inf"),
    clock: Callable[[], float] = time.perf_counter,
    device: Optional[torch.device] = None,
) -> str:
    """Name of the fastest candidate for ``key``, measured once and cached; ``default`` when not measuring.

    Args:
        key: everything the speed depends on (shapes, dtype, device, configuration, grad); its ``str`` is the
            cache key.
        candidates: ``{name: callable}``, each running one path once (wrap with :func:`with_backward` to include
            the backward pass).
        default: the cost model's choice, returned when :func:`can_measure` is false or ``work < MIN_WORK``.
        work: the cost model's estimate of the cheaper path, in multiply-adds.
        clock: time source (tests inject a fake clock).
        device: the device whose work must be synchronised before reading the clock.
    """
    check_option(default, candidates, "default")
    if not can_measure() or work < MIN_WORK:
        return default
    _load()
    name = str(key)
    if _choices.get(name) not in candidates:  # not measured yet (or a stale file entry)
        with torch.random.fork_rng(devices=[device] if device is not None and device.type == "cuda" else []):
            times = {label: measure(fn, clock=clock, device=device) for label, fn in candidates.items()}
        _choices[name] = min(times, key=times.__getitem__)
        _save()
    return _choices[name]
