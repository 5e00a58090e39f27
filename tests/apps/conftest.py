"""Shared fixtures of the MONAI Label app tests: tiny copies of real bundles with initial weights, and studies.

The app's code, the ``monai_implicit_label`` package of the app folder ``apps/label``, is not installed: the app
folder goes on ``sys.path`` here, as MONAI Label puts it there when it loads ``apps/label/main.py``.

A tiny bundle is a temporary copy of ``bundles/<name>`` whose inference and train configs get a small network and a
coarse grid; its served weights are the initialised network saved as ``models/model.pt`` (no training needed).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "apps" / "label"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

# a few thousand parameters and coarse grids: one epoch or one inference takes seconds on a CPU
TINY = {
    "hyperunet_lits": (
        {"features": 2, "input_features": 2, "depth": 1, "dropout": 0.0},
        # val_fraction: a 3-image datastore needs a larger validation share than the 40-case default's 0.1
        {"pixdim": [5.0, 5.0, 6.0], "patch_size": [8, 8, 8], "val_fraction": 0.34},
    ),
    "nerdunet_wmh": ({"features": [2, 4]}, {"slice_size": [16, 16], "pixdim": [4.0, 4.0, -1]}),
}


def write_initial_checkpoint(bundle: Path) -> None:
    """Save the bundle's initialised network (seed 0) as its served weights ``models/model.pt``."""
    import torch
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser["bundle_root"] = str(bundle)
    torch.manual_seed(0)
    network = parser.get_parsed_content("network_def")
    (bundle / "models").mkdir(exist_ok=True)
    torch.save(network.state_dict(), bundle / "models" / "model.pt")
    if "plan" in parser.config:
        # the training plan stored next to the weights (what a training run writes): the tiny grid, a CT window
        plan = {"pixdim": parser.get_parsed_content("pixdim"), "hu_window": [-100.0, 250.0], "intensity_mean": 100.0,
                "intensity_std": 50.0, "patch_size": parser.get_parsed_content("patch_size"), "batch_size": 1,
                "depth": parser.get_parsed_content("network_def#depth")}
        (bundle / "models" / "plan.json").write_text(json.dumps(plan))


@pytest.fixture
def tiny_bundle() -> Callable[..., Path]:
    """``tiny_bundle(bundles_dir, name, weights=True)``: a tiny copy of ``bundles/<name>`` in ``bundles_dir``."""

    def make(bundles_dir: Path, name: str = "hyperunet_lits", weights: bool = True) -> Path:
        network, grid = TINY[name]
        dst = Path(bundles_dir) / name
        shutil.copytree(
            REPO / "bundles" / name, dst, ignore=shutil.ignore_patterns("data", "models", "logs", "eval", "__pycache__")
        )
        for config_name in ("inference.json", "train.json"):
            path = dst / "configs" / config_name
            config: dict[str, Any] = json.loads(path.read_text())
            config["network_def"].update(network)
            config.update(grid)
            path.write_text(json.dumps(config, indent=2))
        if weights:
            write_initial_checkpoint(dst)
        return dst

    return make


@pytest.fixture
def lits_studies() -> Callable[[Path], Path]:
    """``lits_studies(tmp)``: 4 synthetic CT volumes in ``tmp/studies``, ``liver_0..2`` with final labels."""

    def make(tmp: Path) -> Path:
        from monai_implicit.data import make_lits_like_dataset

        datalist = make_lits_like_dataset(tmp / "synthetic", num_cases=4, fov_mm=(80, 80, 48), spacing=(2.5, 2.5, 3.0))
        studies = tmp / "studies"
        (studies / "labels" / "final").mkdir(parents=True)
        for i, item in enumerate(json.loads(datalist.read_text())["training"]):
            shutil.copy(datalist.parent / item["image"], studies)
            if i < 3:  # liver_3 stays unlabelled: the image we annotate
                shutil.copy(datalist.parent / item["label"], studies / "labels" / "final")
        return studies

    return make
