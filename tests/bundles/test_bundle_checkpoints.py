"""Every bundle's train.json and multi_gpu_train.json wire the resumable checkpoints the same way.

The behaviour itself is tested on tiny trainers in tests/handlers/test_checkpoints.py and through njetunet_la's
train.json in tests/bundles/test_njetunet_la_bundle.py; here the configs of all five bundles are checked without
training.
"""

from __future__ import annotations

import importlib
import pydoc
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser
from monai.bundle.config_item import ComponentLocator

BUNDLES = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "bundles").iterdir() if p.is_dir())
LOGGING_ONLY = {"StatsHandler", "TensorBoardStatsHandler", "ProgressBar", "NJetSigmaLogger"}


def _configs(bundle: str, *names: str) -> ConfigParser:
    parser = ConfigParser()
    folder = Path(__file__).resolve().parents[2] / "bundles" / bundle / "configs"
    parser.read_config([str(folder / n) for n in names])
    return parser


def _class(target: str) -> type:
    if "." in target:
        return pydoc.locate(target)
    module = ComponentLocator().get_component_module_name(target)
    return getattr(importlib.import_module(module[0] if isinstance(module, list) else module), target)


def test_all_bundles_found():
    assert BUNDLES == ["ckcnn_rf_localization", "hyperunet_csmri", "hyperunet_lits", "nerdunet_wmh", "njetunet_la"]


@pytest.mark.parametrize("bundle", BUNDLES)
def test_train_config_resumes_best_metric(bundle):
    parser = _configs(bundle, "train.json")
    handlers = {h["_target_"].rsplit(".", 1)[-1]: h for h in parser["train#handlers"]}
    resume, saver = handlers["ResumeFromCheckpoint"], handlers["AtomicCheckpointSaver"]
    assert resume["best_metric_state"] == saver["best_metric_state"] == "@validate#best_metric_state"
    assert saver["n_saved"] >= 2  # a previous checkpoint to fall back on while / if the newest is unreadable
    assert parser["validate#best_metric_state#saver"] == "@validate#best_model_saver"
    assert "@validate#best_model_saver" in parser["validate#handlers"]
    assert parser["validate#best_model_saver#key_metric_filename"] == "model.pt"


@pytest.mark.parametrize("bundle", BUNDLES)
@pytest.mark.parametrize("rank", [0, 1])
def test_multi_gpu_keeps_appended_handlers_on_every_rank(bundle, rank, monkeypatch):
    """Ranks > 0 drop the logging handlers by type: a handler appended to train#handlers (MONAI Label's
    ``+train#handlers`` pretrained CheckpointLoader) is kept on every rank, which slicing ``[:-3]`` did not do."""
    parser = _configs(bundle, "train.json", "multi_gpu_train.json")
    targets = [h["_target_"] for h in parser["train#handlers"]] + ["CheckpointLoader"]
    parser["train#handlers"] = [object.__new__(_class(t)) for t in targets]  # no construction: types are enough
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: rank)
    kept = [type(h).__name__ for h in parser.get_parsed_content("train#trainer#train_handlers")]
    names = [t.rsplit(".", 1)[-1] for t in targets]
    assert kept == (names if rank == 0 else [n for n in names if n not in LOGGING_ONLY])
    assert "CheckpointLoader" in kept and "ResumeFromCheckpoint" in kept
