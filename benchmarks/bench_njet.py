"""Benchmark: N-Jet 3D forward+backward, separable path vs dense kernel vs nn.Conv3d of the same kernel size.

Prints JSON.  For sigma 0.5, 1, 2, 4 (kernel sizes 5, 7, 11, 19 at k=2), one NJetConv(3, 16, 16, order=2) on a
(1, 16, 64, 64, 64) input that requires grad (a layer inside a network) is timed forward + backward on its
separable path and on its dense path, side by side with ``nn.Conv3d(16, 16, k, padding=k // 2)`` (the cost floor of
any dense-kernel layer: no kernel synthesis).  Rounds are interleaved (separable, dense, Conv3d, separable, ...) so
load changes hit all three alike; the median of the rounds is reported with the ratios ``dense / separable`` and
``conv3d / separable``, and ``path="auto"`` (its measured choice, timed as a fourth case) with its slowdown over the
faster of the two paths.  Targets: separable >= 5x faster than nn.Conv3d at sigma 2 and >= 2x at sigma 1; auto never
more than 10% slower than the faster path.

Dense 3D convolutions with 19^3 kernels are slow on CPU (one forward+backward at 64^3 took over 40 minutes on 2
shared cores): a case stops repeating once it has used ``--budget`` seconds (at least one round is always
measured; the JSON says how many were), and ``--depth`` times a 64x64xdepth slab instead of the full cube.

Usage: ``python benchmarks/bench_njet.py [--quick] [--size 64] [--depth 64] [--repeats 3] [--budget 240]
[--sigmas 0.5 1 2 4] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import json

import torch
from _timing import describe_machine, interleaved, medians
from torch import nn

from monai_implicit.layers.njet import NJetConv


def _fwd_bwd(fn, x: torch.Tensor) -> None:
    x.grad = None
    fn(x).sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32^3 input, 2 rounds")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--depth", type=int, default=None, help="extent of the last axis (default: --size); a thin "
                        "slab keeps the 19^3 dense case affordable on few cores, ratios are per voxel")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--order", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=240.0, help="seconds per case before repeats stop")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    if args.quick:
        args.size, args.repeats = 32, 2
    torch.manual_seed(0)
    device = torch.device(args.device)
    c = args.channels
    depth = args.depth or args.size
    x = torch.randn(1, c, args.size, args.size, depth, device=device, requires_grad=True)
    warm = torch.randn(1, c, 24, 24, 24, device=device, requires_grad=True)
    results = []
    for sigma in args.sigmas:
        sigma_range = (min(0.25, sigma / 2), max(8.0, 2 * sigma))
        layer = NJetConv(3, c, c, order=args.order, init_sigma=sigma, sigma_range=sigma_range).to(device)
        k = layer.kernel_size[0]
        conv = nn.Conv3d(c, c, k, padding=k // 2).to(device)
        layer.path = "auto"
        auto_path = "separable" if layer.use_separable(x) else "dense"  # measured once here (cached per shape)

        def separable(inp: torch.Tensor, layer: NJetConv = layer) -> torch.Tensor:
            layer.path = "separable"
            return layer(inp)

        def dense(inp: torch.Tensor, layer: NJetConv = layer) -> torch.Tensor:
            layer.path = "dense"
            return layer(inp)

        def auto(inp: torch.Tensor, layer: NJetConv = layer) -> torch.Tensor:
            layer.path = "auto"
            return layer(inp)

        cases = {"separable": separable, "dense": dense, "auto": auto, "conv3d": conv}
        for fn in cases.values():  # warm-up (allocator, oneDNN primitive caches) on a small input
            _fwd_bwd(fn, warm)
        _fwd_bwd(separable, x)
        times = interleaved({name: lambda fn=fn: _fwd_bwd(fn, x) for name, fn in cases.items()}, args.repeats,
                            warmup=0, budget=args.budget, device=device)
        med = medians(times)
        results.append({
            "sigma": sigma,
            "kernel_size": k,
            "separable_s": round(med["separable"], 4),
            "dense_s": round(med["dense"], 4),
            "conv3d_s": round(med["conv3d"], 4),
            "dense_over_separable": round(med["dense"] / med["separable"], 2),
            "conv3d_over_separable": round(med["conv3d"] / med["separable"], 2),
            "auto_s": round(med["auto"], 4),
            "conv3d_over_auto": round(med["conv3d"] / med["auto"], 2),
            "auto_slowdown_vs_best": round(med["auto"] / min(med["separable"], med["dense"]), 3),
            "rounds": {name: len(v) for name, v in times.items()},
            "auto_path": auto_path,
        })
        print(json.dumps(results[-1]), flush=True)
    at1 = [r for r in results if r["sigma"] == 1.0]
    at2 = [r for r in results if r["sigma"] == 2.0]
    report = {
        "benchmark": "NJetConv 3D forward+backward: separable vs dense vs nn.Conv3d",
        "input": [1, c, args.size, args.size, depth],
        "channels": f"{c} -> {c}",
        "order": args.order,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": str(device),
        "host": describe_machine(device),
        "results": results,
        "target": "separable >= 5x faster than nn.Conv3d at sigma 2, >= 2x at sigma 1; auto <= 1.1x the faster path",
        "target_met": {
            "sigma2_5x": bool(at2[0]["conv3d_over_separable"] >= 5.0) if at2 else None,
            "sigma1_2x": bool(at1[0]["conv3d_over_separable"] >= 2.0) if at1 else None,
            "auto_within_10pct": all(r["auto_slowdown_vs_best"] <= 1.1 for r in results),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
