"""Continuous-kernel convolutions: FFT vs direct crossover, FFT memory, FlexConv training cost.

Prints one JSON object with three sections (all measured side by side in this run, median of ``--repeats`` after a
warm-up):

* ``crossover``: ``fft_conv`` vs ``F.conv{1,2,3}d`` ("same" padding, forward) over kernel sizes in 1D (RF lines),
  2D and 3D; ``ratio = direct_ms / fft_ms`` (> 1: FFT faster), the measured crossover (smallest kernel from which
  FFT stays faster) and whether ``conv_nd(method="auto")``'s cost model picks the faster path.
* ``memory``: peak resident memory of forward + backward of ``fft_conv`` vs a naive complex FFT convolution (complex
  ``fftn`` of the complex-cast input and kernel at the full linear size ``n + k - 1``, broadcast product
  ``(B, C_out, C_in, *freq)`` summed over ``C_in``: the construction whose memory rules it out at the RF kernel
  sizes of "Continuous representation of kernels used in convolutional neural networks" (Jonker)).
  Method: each measurement runs in a fresh process; after building the inputs the kernel's peak-RSS counter is
  reset (``echo 5 > /proc/self/clear_refs``), and the peak is ``VmHWM`` after the op minus ``VmRSS`` before it
  (Linux; falls back to ``ru_maxrss`` deltas elsewhere).  Inputs are excluded, autograd buffers included.
* ``flexconv_step``: one training step (forward, backward, SGD) of a FlexConv with maximum extent 33 (cropped to
  5 taps per axis at its published initialisation) vs an ``nn.ConvNd`` of the cropped size, same channels.

Usage: ``python benchmarks/bench_continuous.py [--quick] [--repeats 3] [--threads N]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
from typing import Callable

import torch
import torch.nn.functional as F
from _timing import describe_machine, interleaved, medians

from monai_implicit.layers.fft_conv import conv_nd, fft_conv, fft_is_faster
from monai_implicit.layers.flexconv import FlexConv

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _median_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median milliseconds of each function, timed in interleaved rounds after one warm-up call."""
    return {name: 1e3 * t for name, t in medians(interleaved(fns, repeats)).items()}


def crossover(configs: list[dict], repeats: int) -> list[dict]:
    results = []
    for cfg in configs:
        dims, b, c, size = cfg["dims"], cfg["batch"], cfg["channels"], cfg["size"]
        torch.manual_seed(0)
        x = torch.randn(b, c, *size)
        rows = []
        for k in cfg["kernels"]:
            w = torch.randn(c, c, *([k] * dims))
            with torch.no_grad():
                ms = _median_ms({"direct": lambda x=x, w=w, f=CONV[dims]: f(x, w, padding="same"),
                                 "fft": lambda x=x, w=w: fft_conv(x, w, padding="same")}, repeats)
            direct, fft = ms["direct"], ms["fft"]
            padded = (b, c, *[s + k - 1 for s in size])
            model_fft = fft_is_faster(padded, (c, c, *([k] * dims)))
            rows.append({"kernel": k, "direct_ms": round(direct, 2), "fft_ms": round(fft, 2),
                         "ratio_direct_over_fft": round(direct / fft, 3),
                         "auto_picks": "fft" if model_fft else "direct",
                         "auto_picks_faster": model_fft == (fft < direct)})
        faster = [r["ratio_direct_over_fft"] > 1 for r in rows]
        cross = next((r["kernel"] for i, r in enumerate(rows) if all(faster[i:])), None)
        results.append({"dims": dims, "input": [b, c, *size], "rows": rows, "measured_crossover_kernel": cross})
    return results


def _peak_worker(kind: str, shape: tuple, kernel: tuple, queue: mp.Queue) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x = torch.randn(*shape, requires_grad=True)
    w = torch.randn(*kernel, requires_grad=True)
    dims = len(shape) - 2
    linux = os.path.exists("/proc/self/clear_refs")

    def status(key: str) -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key))

    if linux:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = status("VmRSS:")
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if kind == "fft_conv":
        y = fft_conv(x, w, padding="same")
    else:  # naive complex FFT convolution at the full linear size
        n = shape[2:]
        k = kernel[2:]
        full = [a + b - 1 for a, b in zip(n, k)]
        axes = tuple(range(-dims, 0))
        pad = [p for kk in reversed(k) for p in ((kk - 1) // 2, kk - 1 - (kk - 1) // 2)]
        xp = F.pad(x, pad).to(torch.complex64)
        x_f = torch.fft.fftn(xp, s=[a + b - 1 for a, b in zip(xp.shape[2:], k)], dim=axes)
        w_f = torch.fft.fftn(w.flip(axes).to(torch.complex64), s=x_f.shape[2:], dim=axes)
        y_f = (x_f[:, None] * w_f[None]).sum(2)
        y_full = torch.fft.ifftn(y_f, dim=axes).real
        y = y_full[(slice(None), slice(None), *[slice(kk - 1, kk - 1 + nn) for kk, nn in zip(k, n)])]
        del full
    y.square().sum().backward()
    peak = status("VmHWM:") if linux else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((peak - before) / 1024.0)


def peak_memory(shape: tuple, kernel: tuple) -> dict:
    ctx = mp.get_context("spawn")
    out = {}
    for kind in ("fft_conv", "naive_complex_fft"):
        queue = ctx.Queue()
        proc = ctx.Process(target=_peak_worker, args=(kind, shape, kernel, queue))
        proc.start()
        out[f"{kind}_peak_mb"] = round(queue.get(), 1)
        proc.join()
    # correctness of the comparison: both compute the same thing
    torch.manual_seed(1)
    x, w = torch.randn(1, shape[1], *shape[2:]), torch.randn(*kernel)
    ref = CONV[len(shape) - 2](x, w, padding="same")
    out["fft_conv_rel_err"] = float((fft_conv(x, w, padding="same") - ref).norm() / ref.norm())
    out["memory_ratio_naive_over_fft_conv"] = round(out["naive_complex_fft_peak_mb"] / out["fft_conv_peak_mb"], 2)
    return {"input": list(shape), "kernel": list(kernel), **out}


def flexconv_step(dims: int, batch: int, channels: int, size: int, repeats: int) -> dict:
    torch.manual_seed(0)
    flex = FlexConv(dims, channels, channels, 33)
    k = tuple(flex.weight.shape[2:])
    plain = torch.nn.modules.conv.__dict__[f"Conv{dims}d"](channels, channels, k, padding=tuple(s // 2 for s in k))
    x = torch.randn(batch, channels, *([size] * dims))
    target = torch.randn(batch, channels, *([size] * dims))

    def step(module: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        opt.zero_grad()
        F.mse_loss(module(x), target).backward()
        opt.step()

    opt_f = torch.optim.SGD(flex.parameters(), lr=1e-6)  # tiny lr: the crop stays at its initial size
    opt_p = torch.optim.SGD(plain.parameters(), lr=1e-6)
    ms = _median_ms({"flex": lambda: step(flex, opt_f), "plain": lambda: step(plain, opt_p)}, repeats)
    t_flex, t_plain = ms["flex"], ms["plain"]
    # with the kernel fixed, FlexConv computes the same convolution as its plain twin
    flex.eval()
    same = torch.allclose(flex.to_conv()(x), flex(x), rtol=1e-4, atol=1e-5)
    return {"dims": dims, "input": [batch, channels, *([size] * dims)], "max_extent": 33, "cropped_kernel": list(k),
            "flexconv_step_ms": round(t_flex, 2), "plain_conv_step_ms": round(t_plain, 2),
            "ratio_flexconv_over_plain": round(t_flex / t_plain, 2), "to_conv_matches": same,
            "params_flexconv": sum(p.numel() for p in flex.parameters()),
            "params_plain": sum(p.numel() for p in plain.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.quick:
        configs = [
            {"dims": 1, "batch": 2, "channels": 8, "size": (1024,), "kernels": [9, 65, 257]},
            {"dims": 2, "batch": 1, "channels": 8, "size": (64, 64), "kernels": [5, 17, 33]},
            {"dims": 3, "batch": 1, "channels": 4, "size": (24, 24, 24), "kernels": [3, 9]},
        ]
        mem = [((2, 8, 2048), (8, 8, 513)), ((1, 4, 64, 64), (4, 4, 33, 33))]
        steps = [(2, 2, 8, 32)]
    else:
        configs = [
            {"dims": 1, "batch": 4, "channels": 22, "size": (4096,), "kernels": [9, 33, 65, 131, 263, 527, 1055]},
            {"dims": 2, "batch": 2, "channels": 16, "size": (128, 128), "kernels": [3, 5, 9, 17, 33]},
            {"dims": 3, "batch": 1, "channels": 8, "size": (32, 32, 32), "kernels": [3, 5, 7, 9, 11]},
        ]
        # the thesis' RF setting (22 channels, kernels 131-2111) and a 2D image with a 33x33 FlexConv extent
        mem = [((8, 22, 4096), (22, 22, 1055)), ((2, 16, 96, 96), (16, 16, 33, 33))]
        steps = [(2, 8, 16, 64), (3, 2, 8, 24)]
    report = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "host": describe_machine(),
        "crossover": crossover(configs, args.repeats),
        "memory": [peak_memory(s, k) for s, k in mem],
        "flexconv_step": [flexconv_step(d, b, c, n, args.repeats) for d, b, c, n in steps],
    }
    # auto never loses much: conv_nd picks a path, report its time next to the best
    torch.manual_seed(0)
    x, w = torch.randn(4, 22, 4096), torch.randn(22, 22, 263)
    with torch.no_grad():
        ms = _median_ms({"auto": lambda: conv_nd(x, w, padding="same"),
                         **{m: lambda m=m: conv_nd(x, w, padding="same", method=m) for m in ("direct", "fft")}},
                        args.repeats)
    auto, best = ms["auto"], min(ms["direct"], ms["fft"])
    report["auto_vs_best_1d_k263"] = {"auto_ms": round(auto, 2), "best_ms": round(best, 2)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
