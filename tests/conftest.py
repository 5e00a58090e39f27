"""Shared test helpers: running a bundle's workflows on tiny settings, its command line, and one tiny training per
bundle shared by every test of the session.

Every bundle workflow runs with ``bundle_root`` pointing at a temporary folder, so nothing is written into the
repository.  ``bundle_runs`` trains each bundle once (1 epoch of a few iterations), then evaluates and infers with
it once; the bundle-contract test (tests/bundles/test_bundle_contract.py) and the per-bundle tests read the same
runs.  Tests that train further (resume, overlays) do it in a copy or their own folder, so the shared run keeps its
1-epoch weights.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLES = REPO / "bundles"

# tiny settings per bundle: "net" (network_def overrides, valid for train.json and inference.json), "data" (grid
# settings shared by training and inference), "train" (the rest of a tiny training run)
TINY: dict[str, dict[str, dict[str, Any]]] = {
    "ckcnn_rf_localization": {
        "net": {"network_def#hidden_channels": 4, "network_def#kernel_size": 9, "network_def#num_blocks": 2,
                "network_def#kernel_hidden": 8},
        "data": {},
        "train": {"synthetic_options": {"num_lines": 12, "num_validation": 4, "length": 128, "n_bubbles": [1, 4],
                                        "seed": 0},
                  "crop_length": 64, "batch_size": 4, "val_batch_size": 4, "num_workers": 0, "epochs": 1,
                  "val_interval": 1},
    },
    "hyperunet_csmri": {
        # the U-Net inside DataConsistency(ResidualReconstruction(...))
        "net": {"network_def#network#network#features": 4, "network_def#network#network#input_features": 4,
                "network_def#network#network#depth": 2},
        "data": {"slice_size": [32, 32], "calib": 4},
        "train": {"synthetic_options": {"size": [32, 32], "num_validation": 1, "num_test": 1, "slice_step": 16,
                                        "num_phantoms": 2, "seed": 0},
                  "batch_size": 2, "num_workers": 0, "epochs": 1, "val_interval": 1, "val_fraction": 0.4},
    },
    "hyperunet_lits": {
        "net": {"network_def#features": 2, "network_def#input_features": 2, "network_def#depth": 1,
                "network_def#dropout": 0.0},
        "data": {"pixdim": [5.0, 5.0, 6.0], "patch_size": [8, 8, 8], "num_workers": 0, "sw_batch_size": 8},
        "train": {"synthetic_options": {"num_cases": 3, "seed": 0, "fov_mm": [60.0, 60.0, 48.0]},
                  "num_samples": 1, "batch_size": 1, "epochs": 1, "val_interval": 1, "val_fraction": 0.34},
    },
    "nerdunet_wmh": {
        "net": {"network_def#features": [2, 4]},
        "data": {"pixdim": [4.0, 4.0, -1], "slice_size": [32, 48], "num_workers": 0, "sw_batch_size": 8},
        "train": {"synthetic_options": {"num_cases": 3, "seed": 0, "fov_mm": [120.0, 140.0, 18.0]},
                  "num_samples": 2, "batch_size": 1, "epochs": 1, "val_interval": 1, "val_fraction": 0.34},
    },
    "njetunet_la": {
        "net": {"network_def#features": 2, "network_def#init_sigma": 0.7},
        "data": {"pixdim": [4.0, 4.0, -1], "slice_size": [32, 32], "num_workers": 0, "sw_batch_size": 16},
        "train": {"synthetic_options": {"num_cases": 3, "seed": 0, "fov_mm": [120.0, 120.0, 16.0]},
                  "num_samples": 2, "batch_size": 1, "epochs": 1, "val_interval": 1, "val_fraction": 0.34},
    },
}

# the embedded-data folder of each bundle (under <bundle_root>/data), written by train.json's ``initialize``
DATA_DIRS = {"ckcnn_rf_localization": "synthetic_rf", "hyperunet_csmri": "mni152_brain",
             "hyperunet_lits": "synthetic_lits", "nerdunet_wmh": "synthetic_wmh", "njetunet_la": "synthetic_la"}

# what evaluate.json and inference.json need besides the tiny settings
EVAL_OVERRIDES = {"ckcnn_rf_localization": {"threshold_candidates": [0.2, 0.5, 0.8]}}
INFER_OVERRIDES = {
    "ckcnn_rf_localization": {"default_threshold": 0.5},
    "hyperunet_csmri": {},
    "hyperunet_lits": {"dataset_dir": "{data}"},
    "nerdunet_wmh": {"dataset_dir": "{data}"},
    "njetunet_la": {"dataset_dir": "{data}"},
}


def configs_dir(bundle: str) -> Path:
    return BUNDLES / bundle / "configs"


def tiny_overrides(bundle: str, *parts: str) -> dict[str, Any]:
    """The merged tiny settings ``parts`` (of "net", "data", "train") of ``bundle``; all three by default."""
    return {k: v for part in (parts or ("net", "data", "train")) for k, v in TINY[bundle][part].items()}


def cli_overrides(overrides: dict) -> list[str]:
    """``--key value`` arguments of ``python -m monai.bundle`` (JSON for anything but strings)."""
    return [a for k, v in overrides.items() for a in (f"--{k}", json.dumps(v) if not isinstance(v, str) else v)]


def run_cli(args: list[str], cwd: Path = REPO, runner: tuple[str, ...] = ("-m", "monai.bundle")) -> str:
    """Run ``python <runner> <args>`` with the repository importable and one thread; return its output."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, *runner, *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def multi_gpu_train(bundle: str, overrides: dict[str, Any]) -> str:
    """Run ``training`` of ``train.json`` + ``multi_gpu_train.json`` in two processes (torchrun; gloo on CPUs) with
    the tiny settings updated by ``overrides`` (``bundle_root`` among them); return the output."""
    configs = json.dumps([str(configs_dir(bundle) / c) for c in ("train.json", "multi_gpu_train.json")])
    with socket.socket() as s:  # a free port: a fixed one collides with other torchrun jobs on the machine
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = cli_overrides({**tiny_overrides(bundle), **overrides})
    return run_cli(["--nproc_per_node=2", f"--master_port={port}", "-m", "monai.bundle", "run", "training",
                    "--config_file", configs, *args], runner=("-m", "torch.distributed.run"))


def bundle_workflow(bundle: str, configs: list[str], root: Path, workflow_type: str | None = "train",
                    initialize: bool = True, tiny: tuple[str, ...] = ("net", "data", "train"), **override: Any):
    """A ``ConfigWorkflow`` of ``bundle``'s ``configs`` (file names) with ``bundle_root=root`` and the tiny settings
    (``tiny`` parts) updated by ``override``; initialised (and its required properties checked) unless told not."""
    from monai.bundle import ConfigWorkflow

    files = [str(configs_dir(bundle) / c) for c in configs]
    wf = ConfigWorkflow(config_file=files, workflow_type=workflow_type, bundle_root=str(root),
                        **{**tiny_overrides(bundle, *tiny), **override})
    if initialize:
        wf.initialize()  # properties can only be resolved once initialized (MONAI ConfigWorkflow)
        if workflow_type is not None:
            assert wf.check_properties() == []
    return wf


def error_chain(error: BaseException) -> list[BaseException]:
    """``error`` and its causes (MONAI wraps errors of config expressions and transforms in RuntimeErrors)."""
    chain, e = [], error
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    return chain


class BundleRun(NamedTuple):
    root: Path
    workflow: Any  # the monai.bundle.ConfigWorkflow, after run() and finalize()


class BundleRuns:
    """One tiny training per bundle, then one evaluation and one inference with its weights, each run once per
    session on first use (evaluation after training, inference after evaluation: the localisation bundle's
    inference reads the threshold its evaluation tuned)."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._factory = tmp_path_factory
        self._runs: dict[tuple[str, str], BundleRun] = {}

    def _cached(self, bundle: str, stage: str, make: Callable[[], BundleRun]) -> BundleRun:
        if (bundle, stage) not in self._runs:
            self._runs[bundle, stage] = make()
        return self._runs[bundle, stage]

    def data_dir(self, bundle: str) -> Path:
        return self.trained(bundle).root / "data" / DATA_DIRS[bundle]

    def trained(self, bundle: str) -> BundleRun:
        def make() -> BundleRun:
            root = self._factory.mktemp(f"{bundle}_bundle")
            wf = bundle_workflow(bundle, ["train.json"], root)
            assert (root / "data" / DATA_DIRS[bundle] / "dataset.json").is_file()  # written by initialize
            wf.run()
            wf.finalize()
            return BundleRun(root, wf)

        return self._cached(bundle, "train", make)

    @staticmethod
    def _run(bundle: str, configs: list[str], root: Path, workflow_type: str, **kwargs: Any) -> BundleRun:
        wf = bundle_workflow(bundle, configs, root, workflow_type=workflow_type, **kwargs)
        wf.run()
        wf.finalize()
        return BundleRun(root, wf)

    def evaluated(self, bundle: str) -> BundleRun:
        root = self.trained(bundle).root
        return self._cached(bundle, "eval", lambda: self._run(bundle, ["train.json", "evaluate.json"], root, "eval",
                                                                **EVAL_OVERRIDES.get(bundle, {})))

    def inferred(self, bundle: str) -> BundleRun:
        root = self.evaluated(bundle).root
        extra = {k: v.format(data=self.data_dir(bundle)) if isinstance(v, str) else v
                 for k, v in INFER_OVERRIDES[bundle].items()}
        return self._cached(bundle, "infer", lambda: self._run(bundle, ["inference.json"], root, "infer",
                                                                 tiny=("net", "data"), **extra))


@pytest.fixture(scope="session")
def bundle_runs(tmp_path_factory: pytest.TempPathFactory) -> BundleRuns:
    """The session's tiny bundle runs: ``bundle_runs.trained(name)``, ``.evaluated(name)``, ``.inferred(name)``."""
    return BundleRuns(tmp_path_factory)


class BundleHelpers:
    """The helpers above as one object, for test modules (conftest.py is not importable under
    ``--import-mode=importlib``)."""

    repo = REPO
    tiny = staticmethod(tiny_overrides)
    configs = staticmethod(configs_dir)
    workflow = staticmethod(bundle_workflow)
    cli = staticmethod(run_cli)
    cli_overrides = staticmethod(cli_overrides)
    multi_gpu_train = staticmethod(multi_gpu_train)
    error_chain = staticmethod(error_chain)
    data_dirs = DATA_DIRS


@pytest.fixture(scope="session")
def bundle_helpers() -> type[BundleHelpers]:
    return BundleHelpers
