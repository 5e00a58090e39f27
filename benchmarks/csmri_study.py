"""Hyper-UNet vs plain twin on the hyperunet_csmri bundle: same epochs, equal training wall time, matched parameters,
and what limits the hyper version (kernel-network learning rate, residual gain initialisation).

Every network is trained from an empty bundle root under ``--out`` by the bundle's own ``train.json`` (plus the
overlay of the variant), then evaluated by ``evaluate.json`` on the held-out MNI152 slices (the dataset's
``validation`` list, slabs >= 10 mm from every training slice) and on a phantom test set (brain phantoms of seeds the
training phantoms do not use). Prints JSON (every figure, the machine) and a markdown table for the bundle's docs;
both are also written to ``--out``.

Runs, in this order (all with the bundle's defaults unless said):

* ``hyper``: the default (Hyper-UNet, 40 epochs); its training time ``T`` is the budget of the equal-time runs.
* ``twin`` / ``matched``: ``plain_twin.json`` (1.49M parameters) / ``plain_twin_matched.json`` (0.59M), 40 epochs.
* ``twin_time`` / ``matched_time``: the same networks trained for ``T``: ``epochs = floor(40 * T / T_same_epochs)``
  (the twin's own 40-epoch time gives its epoch time) with ``time_limit = T`` as a cap. The cosine schedule spans
  ``epochs`` (T_max), so with epochs chosen to fit, both networks anneal their learning rate fully within the same
  seconds; the cap only stops a run that a slower machine state makes overshoot (the schedule is then cut short,
  which the ``stopped_early`` field reports). A bare time limit with a large ``epochs`` would compare a fully annealed
  Hyper-UNet with a twin stopped at a high learning rate.
* ``hyper_klr<s>``: the default with ``kernel_lr_scale = s`` (learning rate of the HyperConv kernel networks;
  ``--kernel_lr_scales``, default 0.3 and 3: in 4-epoch probes on the default data, validation PSNR was 24.06 dB at
  scale 1, 23.98 at 0.3, 23.62 at 0.1, 23.50 at 3 and 23.30 at 10, so the question is whether a scale near 1 helps).
* ``hyper_gain<g>``: the default with the residual gain initialised to ``g`` instead of 0 (``--init_gains``,
  default 1; 4-epoch probes: 24.06 dB at 0, 23.26 at 1, 22.92 at 0.1).

Wall time is the trainer's own run time (ignite ``state.times["COMPLETED"]``: training and its periodic validation,
not the data caching before it). The networks share one process, one after the other, with one torch thread pool.

    python benchmarks/csmri_study.py --out /tmp/csmri_study                 # the study (about 30 min, 2 CPU cores)
    python benchmarks/csmri_study.py --out /tmp/csmri_quick --quick         # tiny settings: a smoke run (~1 min)
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
from pathlib import Path
from typing import Any, Optional

import torch
from _timing import describe_machine
from monai.bundle import ConfigWorkflow

from monai_implicit.data import load_datalist, make_mni152_dataset, make_phantom_dataset

CONFIGS = Path(__file__).resolve().parents[1] / "bundles" / "hyperunet_csmri" / "configs"
OVERLAYS = {"hyper": [], "twin": ["plain_twin.json"], "matched": ["plain_twin_matched.json"]}
LABELS = {
    "hyper": "Hyper-UNet (default)",
    "twin": "plain twin, same epochs",
    "twin_time": "plain twin, same wall time",
    "matched": "matched-parameter twin, same epochs",
    "matched_time": "matched-parameter twin, same wall time",
}
# a smoke run: small slices and few epochs (the networks keep their size)
QUICK = {
    "slice_size": [32, 32], "calib": 4, "batch_size": 2, "num_workers": 0, "epochs": 2, "val_interval": 1,
    "synthetic_options": {"size": [32, 32], "num_validation": 1, "num_test": 1, "slice_step": 16, "num_phantoms": 2,
                          "seed": 0},
}
PHANTOM_SEED = 1000  # the training phantoms use seeds 0 .. num_phantoms - 1


def workflow(configs: list[str], root: Path, workflow_type: str, overrides: dict[str, Any]) -> ConfigWorkflow:
    wf = ConfigWorkflow(config_file=[str(CONFIGS / c) for c in configs], workflow_type=workflow_type,
                        bundle_root=str(root), **overrides)
    wf.initialize()
    return wf


def train(name: str, net: str, root: Path, common: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Train variant ``name`` (network ``net``, ``common`` settings updated by the variant's ``extra``) from the
    empty bundle root ``root``; its epochs, time and size."""
    print(f"== training {name} in {root}", file=sys.stderr, flush=True)
    wf = workflow(["train.json", *OVERLAYS[net]], root, "train", {**common, **extra})
    wf.run()
    trainer = wf.parser.get_parsed_content("train#trainer")
    network = wf.parser.get_parsed_content("network")
    result = {
        "net": net,
        "network": type(wf.parser.get_parsed_content("network_def").network.network).__name__,
        "params": sum(p.numel() for p in network.parameters()),
        "epochs": trainer.state.epoch,
        "max_epochs": trainer.state.max_epochs,
        "stopped_early": trainer.state.epoch < trainer.state.max_epochs,
        "train_seconds": round(float(trainer.state.times["COMPLETED"]), 2),
        "overrides": extra,
    }
    wf.finalize()
    del wf, trainer, network
    gc.collect()
    return result


def evaluate(net: str, root: Path, overrides: dict[str, Any], datalist: Optional[list], tag: str,
             baselines: bool) -> dict[str, float]:
    """Mean metrics of evaluate.json for the model in ``root`` on the validation list (``datalist`` None) or on
    ``datalist``; the zero-filled and L1-wavelet rows only when ``baselines``."""
    extra: dict[str, Any] = {"output_dir": str(root / "eval" / tag)}
    if datalist is not None:
        extra["eval_datalist"] = datalist
    if not baselines:
        extra["has_sigpy"] = False  # the L1-wavelet reconstruction does not depend on the network: computed once
    wf = workflow(["train.json", *OVERLAYS[net], "evaluate.json"], root, "eval", {**overrides, **extra})
    wf.run()
    metrics = {k: float(v) for k, v in wf.parser.get_parsed_content("validate#evaluator").state.metrics.items()}
    wf.finalize()
    del wf
    gc.collect()
    if not baselines:
        metrics = {k: v for k, v in metrics.items() if "zero_filled" not in k}
    return metrics


def markdown(results: dict[str, dict], baselines: dict[str, dict[str, float]], datasets: list[str]) -> str:
    head = "| | parameters | epochs | training time (s) | " + " | ".join(
        f"{d} PSNR (dB) | {d} SSIM" for d in datasets) + " |"
    lines = [head, "|" + "---|" * (4 + 2 * len(datasets))]

    def row(label: str, params: str, epochs: str, seconds: str, metrics: dict[str, dict[str, float]], suffix: str):
        cells = []
        for d in datasets:
            psnr, ssim = metrics[d].get(f"val_psnr{suffix}"), metrics[d].get(f"val_ssim{suffix}")
            cells += ["-" if psnr is None else f"{psnr:.2f}", "-" if ssim is None else f"{ssim:.3f}"]
        lines.append(f"| {label} | {params} | {epochs} | {seconds} | " + " | ".join(cells) + " |")

    row("zero-filled input", "-", "-", "-", baselines, "_zero_filled")
    if any("val_psnr_l1_wavelet" in baselines[d] for d in datasets):
        row("L1-wavelet compressed sensing (sigpy)", "-", "-", "-", baselines, "_l1_wavelet")
    for name, r in results.items():
        label = LABELS.get(name) or (
            f"Hyper-UNet, kernel_lr_scale {r['overrides']['kernel_lr_scale']}" if "kernel_lr_scale" in r["overrides"]
            else f"Hyper-UNet, residual gain initialised to {r['overrides']['network_def#network#init_gain']}")
        epochs = f"{r['epochs']}" + (" (stopped by the time limit)" if r["stopped_early"] else "")
        row(label, f"{r['params']:,}", epochs, f"{r['train_seconds']:.1f}", r["metrics"], "")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/csmri_study"), help="empty folder for every run")
    parser.add_argument("--kernel_lr_scales", type=float, nargs="*", default=[0.3, 3.0])
    parser.add_argument("--init_gains", type=float, nargs="*", default=[1.0])
    parser.add_argument("--num_phantoms", type=int, default=16, help="phantom test images")
    parser.add_argument("--quick", action="store_true", help="tiny settings (a smoke run of the script)")
    parser.add_argument("--overrides", type=json.loads, default={},
                        help='JSON of train.json overrides for every run, e.g. \'{"num_threads": 2}\'')
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"--out {args.out} is not empty: every run starts from an empty bundle root.")
    common = {**(QUICK if args.quick else {}), **args.overrides}

    # the data, written once and shared by every run (read only): MNI152 slices + training phantoms, phantom test set
    probe = ConfigWorkflow(config_file=str(CONFIGS / "train.json"), workflow_type="train",
                           bundle_root=str(args.out / "probe"), **common)
    synthetic = probe.parser.get_parsed_content("synthetic_options")
    data_dir = args.out / "data" / "mni152_brain"
    make_mni152_dataset(data_dir, **synthetic)
    phantom_json = make_phantom_dataset(args.out / "data" / "phantom_test", num_images=1, num_test=args.num_phantoms,
                                        shape=synthetic["size"], seed=PHANTOM_SEED)
    phantoms = load_datalist(phantom_json, ("image",), "test")
    common["dataset_dir"] = str(data_dir)
    epochs = int(common.get("epochs", probe.parser["epochs"]))
    del probe

    runs = args.out / "runs"
    results: dict[str, dict] = {}
    plan: list[tuple[str, str, dict[str, Any]]] = [("hyper", "hyper", {}), ("twin", "twin", {}),
                                                   ("matched", "matched", {})]
    for name, net, extra in plan:
        results[name] = train(name, net, runs / name, common, extra)
    budget = results["hyper"]["train_seconds"]
    for net in ("twin", "matched"):
        same = results[net]["train_seconds"]
        timed = {"epochs": max(epochs, math.floor(epochs * budget / same)), "time_limit": max(1, math.ceil(budget))}
        results[f"{net}_time"] = train(f"{net}_time", net, runs / f"{net}_time", common, timed)
    for s in args.kernel_lr_scales:
        results[f"hyper_klr{s:g}"] = train(f"hyper_klr{s:g}", "hyper", runs / f"hyper_klr{s:g}", common,
                                           {"kernel_lr_scale": s})
    for g in args.init_gains:
        results[f"hyper_gain{g:g}"] = train(f"hyper_gain{g:g}", "hyper", runs / f"hyper_gain{g:g}", common,
                                            {"network_def#network#init_gain": g})

    datasets = {"MNI152 held-out": None, "phantoms": phantoms}
    baselines: dict[str, dict[str, float]] = {}
    for i, (name, r) in enumerate(results.items()):
        r["metrics"] = {}
        for tag, datalist in datasets.items():
            metrics = evaluate(r["net"], runs / name, common, datalist, tag.split()[0].lower(), baselines=i == 0)
            if i == 0:
                baselines[tag] = {k: v for k, v in metrics.items() if "zero_filled" in k or "l1_wavelet" in k}
            r["metrics"][tag] = {k: v for k, v in metrics.items() if k in ("val_psnr", "val_ssim")}

    table = markdown(results, baselines, list(datasets))
    report = {"machine": describe_machine(), "torch_threads": torch.get_num_threads(), "quick": args.quick,
              "held_out": {"MNI152 held-out": "validation list of the MNI152 dataset",
                           "phantoms": f"{len(phantoms)} phantoms, seeds {PHANTOM_SEED + 1}.."},
              "baselines": baselines, "runs": results, "table": table}
    (args.out / "study.json").write_text(json.dumps(report, indent=2))
    (args.out / "study.md").write_text(table + "\n")
    print(json.dumps(report, indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
