"""HyperUNet vs its plain-convolution twin (same topology and kernel size), measured side by side.

Prints JSON: for each setting (2D 256x256 batch 8, 3D 96^3 batch 1) and device (CPU; CUDA when available) the
median time of an eval forward (no_grad, the kernel cache warm) and of a training step (forward + backward + Adam
step), for HyperUNet, its PlainUNet twin and the baked HyperUNet, and the ratios hyper/plain.

    python benchmarks/bench_hyperconv.py            # the sizes of the acceptance criteria
    python benchmarks/bench_hyperconv.py --quick    # small sizes, a smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

import torch
from _timing import describe_machine, interleaved, medians

from monai_implicit.networks.nets import HyperUNet, PlainUNet
from monai_implicit.networks.utils import bake


def bench_setting(spatial_dims: int, batch: int, size: int, features: int, kernel_size: int, repeats: int,
                  device: torch.device) -> dict:
    torch.manual_seed(0)
    hyper = HyperUNet(spatial_dims, 1, 1, features=features, kernel_size=kernel_size).to(device)
    plain = PlainUNet(spatial_dims, 1, 1, features=features, kernel_size=kernel_size).to(device)
    x = torch.randn(batch, 1, *([size] * spatial_dims), device=device)

    def eval_fn(net: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            net.eval()
            with torch.no_grad():
                net(x)
        return run

    hyper.eval()
    baked = bake(hyper)
    # one warm-up call each (allocator, oneDNN primitives, the kernel cache), then round-robin rounds
    eval_times = medians(interleaved(
        {"hyper": eval_fn(hyper), "plain": eval_fn(plain), "hyper_baked": eval_fn(baked)}, repeats, device=device
    ))

    def train_fn(net: torch.nn.Module) -> Callable[[], None]:
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)

        def run() -> None:
            net.train()
            opt.zero_grad(set_to_none=True)
            net(x).mean().backward()
            opt.step()
        return run

    train_times = medians(interleaved({"hyper": train_fn(hyper), "plain": train_fn(plain)}, repeats, device=device))
    return {
        "input_shape": list(x.shape),
        "features": features,
        "kernel_size": kernel_size,
        "params": {"hyper": sum(p.numel() for p in hyper.parameters()),
                   "plain": sum(p.numel() for p in plain.parameters())},
        "eval_s": eval_times,
        "train_step_s": train_times,
        "eval_ratio_hyper_vs_plain": eval_times["hyper"] / eval_times["plain"],
        "eval_ratio_baked_vs_plain": eval_times["hyper_baked"] / eval_times["plain"],
        # the cached Hyper-UNet runs the same convolutions as its baked network: this ratio is ~1 within noise
        "eval_ratio_hyper_vs_baked": eval_times["hyper"] / eval_times["hyper_baked"],
        "train_step_ratio_hyper_vs_plain": train_times["hyper"] / train_times["plain"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--features-3d", type=int, default=16,
                        help="first-level channels of the 3D setting (16 keeps a 96^3 training step on a 2-core CPU "
                             "in tens of seconds)")
    parser.add_argument("--settings", nargs="+", choices=("2d", "3d"), default=("2d", "3d"),
                        help="which settings to run (each prints a JSON line to stderr as soon as it finishes)")
    args = parser.parse_args()
    settings = [
        ("2d", 2, 2 if args.quick else 8, 64 if args.quick else 256, 32),
        ("3d", 3, 1, 32 if args.quick else 96, args.features_3d),
    ]
    settings = [s for s in settings if s[0] in args.settings]
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    result: dict = {"torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
                    "host": describe_machine("cuda" if torch.cuda.is_available() else None),
                    # cached eval no slower than the baked network (same convolutions; timing noise is a
                    # few per cent), a training step at most 1.10x the plain twin's
                    "targets": {"eval_ratio_hyper_vs_baked": 1.0, "train_step_ratio_hyper_vs_plain": 1.10}}
    for device in devices:
        result[device.type] = {}
        for name, dims, batch, size, features in settings:
            key = f"{name}_{size}^{dims}_b{batch}"
            result[device.type][key] = bench_setting(dims, batch, size, features, 5, args.repeats, device)
            print(json.dumps({device.type: {key: result[device.type][key]}}), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
