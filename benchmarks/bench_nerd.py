"""NeRDUNet vs the same U-Net with a 1x1 head: training-step and eval time, side by side in one process.

The peer is :class:`~monai_implicit.networks.nets.PlainUNet` with exactly the NeRDUNet backbone (paper channels
16-256, 3x3 convolutions, no input block, no dropout) and its ordinary 1x1 classifier, so every ratio isolates the
cost of the NeRD head.  Measured: a training step (forward, cross-entropy, backward, Adam step), eval forward with
the position-dependent head parameters cached (patch positions, the default), eval forward in global mode (no cache:
every sliding window has its own positions), and the head alone (cached and uncached) against a 1x1 convolution.
The contenders are timed in interleaved rounds after warm-up (so load changes on a shared machine hit all alike);
seconds are medians over rounds and ratios are medians over rounds of the per-round ratio.  Prints JSON.

    python benchmarks/bench_nerd.py            # 2D 4x1x128x128 and 3D 1x1x48x48x48, 2 classes
    python benchmarks/bench_nerd.py --quick    # smaller sizes for a smoke run
"""

import argparse
import copy
import json
import platform

import torch
import torch.nn.functional as F
from _timing import describe_machine, interleaved, median_ratios, medians

from monai_implicit.networks.nets import NeRDUNet, PlainUNet

HEADS = ("nerdc", "nerdm")


def summarise(times: dict, baseline: str) -> tuple[dict, dict]:
    """Median seconds per function and the median over rounds of its time / the baseline's time."""
    return medians(times), median_ratios(times, baseline)


def train_step(net, opt, x, y):
    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    return step


def randomise_head(net):
    # the head's last layer starts at zero; random weights make the timing representative of a trained head
    with torch.no_grad():
        for p in net.head.mlp.parameters():
            p.normal_(0, 0.3)
    return net


def bench_case(spatial_dims: int, batch: int, size: int, classes: int, warmup: int, repeats: int) -> dict:
    torch.manual_seed(0)
    shape = [size] * spatial_dims
    x = torch.randn(batch, 1, *shape)
    y = torch.randint(0, classes, (batch, *shape))
    feats = torch.randn(batch, 16, *shape)
    origin = torch.zeros(batch, spatial_dims)
    plain = PlainUNet(spatial_dims, 1, classes, features=16, depth=4, kernel_size=3, input_features=None, dropout=0.0)
    nets = {"unet_1x1": plain}
    for head in HEADS:
        nets[head] = randomise_head(NeRDUNet(spatial_dims, 1, classes, head=head))
        nets[head + "_global"] = copy.deepcopy(nets[head])
        nets[head + "_global"].position = "global"
    result: dict = {"input": [batch, 1, *shape], "classes": classes}

    train = {}
    for name in ("unet_1x1", *HEADS):
        nets[name].train()
        opt = torch.optim.Adam(nets[name].parameters(), lr=1e-3, weight_decay=1e-6)  # the paper's optimiser
        train[name] = train_step(nets[name], opt, x, y)
    seconds, ratios = summarise(interleaved(train, repeats, warmup), "unet_1x1")
    result["train_step"] = {"seconds": seconds, "ratio_vs_unet_1x1": ratios}

    for net in nets.values():
        net.eval()
    evals = {"unet_1x1": lambda: plain(x)}
    for head in HEADS:
        evals[head] = lambda net=nets[head]: net(x)
        evals[head + "_global"] = lambda net=nets[head + "_global"]: net(x, origin, shape)
    with torch.no_grad():
        seconds, ratios = summarise(interleaved(evals, repeats, warmup), "unet_1x1")
    result["eval"] = {"seconds": seconds, "ratio_vs_unet_1x1": ratios}

    heads = {"conv_1x1": lambda: plain.head(feats)}
    for head in HEADS:
        uncached = copy.deepcopy(nets[head].head)
        uncached.use_cache = False
        heads[head + "_cached"] = lambda h=nets[head].head: h(feats)
        heads[head + "_uncached"] = lambda h=uncached: h(feats)
    with torch.no_grad():
        seconds, ratios = summarise(interleaved(heads, repeats, warmup), "conv_1x1")
    result["head_only_eval"] = {"seconds": seconds, "ratio_vs_conv_1x1": ratios}
    result["parameters"] = {name: sum(p.numel() for p in nets[name].parameters()) for name in ("unet_1x1", *HEADS)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (2D 2x64x64, 3D 1x32^3)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--classes", type=int, default=2)
    args = parser.parse_args()
    cases = [(2, 2, 64), (3, 1, 32)] if args.quick else [(2, 4, 128), (3, 1, 48)]
    out = {
        "benchmark": "NeRDUNet (paper channels 16-256) vs the same U-Net with a 1x1 head",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "host": describe_machine(),
        "repeats": args.repeats,
        "warmup": args.warmup,
        "cases": {},
    }
    for spatial_dims, batch, size in cases:
        case = bench_case(spatial_dims, batch, size, args.classes, args.warmup, args.repeats)
        out["cases"][f"{spatial_dims}d"] = case
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
