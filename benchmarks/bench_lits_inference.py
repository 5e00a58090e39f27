"""Sliding-window inference time of the hyperunet_lits bundle network vs its plain twin and vs MONAI's UNet.

A CT volume of 512x512x150 voxels (the LiTS in-plane size) is segmented with ``monai.inferers.SlidingWindowInferer``
(gaussian blending) by, side by side in one process:

* ``hyper``: the bundle's HyperUNet as configured in ``configs/inference.json`` (eval mode: kernels sampled once and
  cached, "Hyper-Convolutions via Implicit Kernels for Medical Imaging", Sec. 3);
* ``hyper_baked``: the same network after :func:`monai_implicit.networks.utils.bake` (what the predictor API and the
  TorchScript export run);
* ``plain_twin``: ``PlainUNet`` with the same topology and kernel sizes;
* ``monai_unet``: ``monai.networks.nets.UNet`` whose channel widths give the parameter count closest to the bundle
  network's;
* ``dynunet``: MONAI's ``DynUNet`` with nnU-Net's topology as configured in ``configs/train_dynunet.json`` (the peer
  trained side by side with the bundle network; its Dice is in the bundle docs).

The network depth is the plan's (``--depth``, 3 for the embedded data), so no trained bundle is needed.  Prints JSON
with the median time of each (after a warm-up) and the ratios to ``dynunet``, ``monai_unet`` and ``plain_twin``.
CPU by default; ``--device cuda`` when available.  ``--quick`` uses a 160x160x48 volume.

    python benchmarks/bench_lits_inference.py [--quick] [--repeats 3] [--roi 64 64 40] [--depth 3]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from _timing import describe_machine, interleaved, machine_summary, medians
from monai.bundle import ConfigParser
from monai.inferers import SlidingWindowInferer
from monai.networks.nets import UNet

from monai_implicit.networks.nets import PlainUNet
from monai_implicit.networks.utils import bake

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "hyperunet_lits"


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def monai_unet_like(target: int, out_channels: int, depth: int) -> UNet:
    """MONAI UNet (3D, 2 conv per level, no residual units) with the parameter count closest to ``target``."""
    best = None
    for base in range(2, 65):
        channels = [base * 2**i for i in range(depth + 1)]
        net = UNet(3, 1, out_channels, channels=channels, strides=[2] * depth, num_res_units=0)
        gap = abs(n_params(net) - target)
        if best is None or gap < best[0]:
            best = (gap, net, channels)
    return best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="160x160x48 volume instead of 512x512x150")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--roi", type=int, nargs=3, default=(64, 64, 40),
                        help="sliding-window size (the plan's patch for the embedded data)")
    parser.add_argument("--depth", type=int, default=3, help="network depth (the plan's)")
    parser.add_argument("--sw-batch-size", type=int, default=2)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    shape = (160, 160, 48) if args.quick else (512, 512, 150)

    config = ConfigParser()
    config.read_config(str(BUNDLE / "configs" / "inference.json"))
    config["bundle_root"] = str(BUNDLE)
    config["network_def#depth"] = args.depth
    hyper = config.get_parsed_content("network_def")
    net_args = {k: v for k, v in config.get("network_def").items() if not k.startswith("_")}
    net_args["out_channels"] = config.get("num_classes")
    twin_args = {k: v for k, v in net_args.items() if k not in ("n_l", "hidden", "spacing", "init")}
    plain = PlainUNet(**twin_args)
    # the DynUNet overlay's network, with the plan's depth and the bundle's classes
    dyn = ConfigParser({"num_classes": net_args["out_channels"], "plan": {"depth": args.depth}})
    dyn.update(json.loads((BUNDLE / "configs" / "train_dynunet.json").read_text()))
    nets = {
        "hyper": hyper,
        "hyper_baked": bake(hyper.eval()),
        "plain_twin": plain,
        "dynunet": dyn.get_parsed_content("network_def"),
        "monai_unet": monai_unet_like(n_params(hyper), net_args["out_channels"], args.depth),
    }
    inferer = SlidingWindowInferer(args.roi, sw_batch_size=args.sw_batch_size, overlap=args.overlap, mode="gaussian")
    torch.manual_seed(0)
    volume = torch.rand(1, 1, *shape, device=device)
    warm = torch.rand(1, 1, *args.roi, device=device)
    with torch.no_grad():
        for net in nets.values():
            net.to(device).eval()
            inferer(warm, net)  # warm-up: allocator, oneDNN primitives, cached hyper-kernels
        # interleaved so that machine load affects all alike
        times = interleaved({name: lambda net=net: inferer(volume, net) for name, net in nets.items()}, args.repeats,
                            warmup=0, device=device)
    median = medians(times)
    result = {
        "benchmark": "bench_lits_inference",
        "volume": list(shape),
        "roi": list(args.roi),
        "sw_batch_size": args.sw_batch_size,
        "overlap": args.overlap,
        "device": str(device),
        "machine": machine_summary(device),
        "host": describe_machine(device),
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "params": {name: n_params(net) for name, net in nets.items()},
        "median_s": {name: round(t, 3) for name, t in median.items()},
        "ratio_vs_dynunet": {name: round(t / median["dynunet"], 3) for name, t in median.items()},
        "ratio_vs_monai_unet": {name: round(t / median["monai_unet"], 3) for name, t in median.items()},
        "ratio_vs_plain_twin": {name: round(t / median["plain_twin"], 3) for name, t in median.items()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
