"""Resumable training: best model kept across resumes, fallback on a corrupt checkpoint, exact names, RNG and scaler.

Tiny MONAI trainers (a linear layer, one or two batches) run a few epochs in a temporary folder; every "resume" is
a new set of objects pointed at the same folder, as a re-run of the training command would be.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from ignite.metrics import Metric
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import ValidationHandler
from monai.transforms import Compose, RandFlipd, RandGaussianNoised
from monai.utils import set_determinism

import monai_implicit.bundles
from monai_implicit.bundles import log_training_summary
from monai_implicit.handlers import (
    AtomicCheckpointSaver,
    BestMetricState,
    CheckpointLoader,
    CheckpointReadError,
    ResumeFromCheckpoint,
    RNGState,
    epoch_checkpoints,
    latest_checkpoint,
    read_checkpoint,
)

LOGGER = "monai_implicit.handlers.checkpoints"


@pytest.fixture(autouse=True)
def _reset_determinism():
    yield
    set_determinism(seed=None)  # the trainers below seed globally, as a bundle does; do not leak it


class ScheduledScore(Metric):
    """A validation "metric" that returns ``scores[epoch]``: rigs which validation is better or worse."""

    def __init__(self, scores: dict[int, float]) -> None:
        self.scores = scores
        self.engine: Optional[Engine] = None
        super().__init__()

    def attach(self, engine: Engine, name: str, usage: Any = "epoch_wise") -> None:
        self.engine = engine
        super().attach(engine, name, usage)

    def reset(self) -> None:
        pass

    def update(self, output: Any) -> None:
        pass

    def compute(self) -> float:
        return self.scores[self.engine.state.epoch]


def _training(folder: Path, max_epochs: int, scores: Optional[dict[int, float]] = None, transform: Any = None,
              resume: bool = True) -> tuple[SupervisedTrainer, Optional[SupervisedEvaluator], torch.nn.Module]:
    """A bundle-like trainer: resume, validation into model.pt, resume checkpoints with n_saved=2."""
    set_determinism(seed=0)  # what a bundle's "initialize" does at every start
    net = torch.nn.Linear(4, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    data = [{"image": torch.randn(1, 4), "label": torch.randn(1, 1)} for _ in range(4)]
    loader = DataLoader(Dataset(data, transform=transform), batch_size=2, shuffle=True, num_workers=0)
    evaluator = best = None
    handlers: list = []
    if scores is not None:
        model_saver = AtomicCheckpointSaver(folder, {"model": net}, save_key_metric=True,
                                            key_metric_filename="model.pt")
        evaluator = SupervisedEvaluator(device="cpu", val_data_loader=DataLoader(Dataset(data[:2]), batch_size=2),
                                        network=net, key_val_metric={"score": ScheduledScore(scores)},
                                        val_handlers=[model_saver])
        best = BestMetricState(evaluator, model_saver)
        handlers.append(ValidationHandler(1, evaluator, epoch_level=True))
    handlers.insert(0, ResumeFromCheckpoint(folder, {"model": net, "optimizer": opt}, enabled=resume,
                                            best_metric_state=best))
    handlers.append(AtomicCheckpointSaver(folder, {"model": net, "optimizer": opt}, engine_key="trainer",
                                          best_metric_state=best, save_interval=1, n_saved=2))
    trainer = SupervisedTrainer(device="cpu", max_epochs=max_epochs, train_data_loader=loader, network=net,
                                optimizer=opt, loss_function=torch.nn.MSELoss(), train_handlers=handlers)
    return trainer, evaluator, net


def _weights(path: Path, key: Optional[str] = None) -> dict:
    state = torch.load(path, weights_only=True)
    return state[key] if key else state


def _epoch(path: Path) -> int:
    engine = torch.load(path, weights_only=True)["trainer"]
    return engine["iteration"] // engine["epoch_length"]


def _copy(net: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_keeps_best_model_and_summary(tmp_path):
    trainer, evaluator, _ = _training(tmp_path, 3, {1: 0.5, 2: 0.8, 3: 0.6})
    trainer.run()
    model = tmp_path / "model.pt"
    best_bytes = model.read_bytes()
    assert _same(_weights(model), _weights(tmp_path / "checkpoint_epoch=2.pt", "model"))  # best = epoch 2

    # resumed: epoch 4 validates worse (0.7 < 0.8): model.pt stays byte-identical, the summary still says epoch 2
    trainer, evaluator, _ = _training(tmp_path, 4, {4: 0.7})
    trainer.run()
    assert evaluator.state.metrics["score"] == 0.7  # the worse validation did run
    assert model.read_bytes() == best_bytes
    summary = log_training_summary(trainer, evaluator, str(tmp_path))
    assert (summary["best_metric_epoch"], summary["best_metric"]) == (2, 0.8)

    # resumed again: epoch 5 validates better, it replaces model.pt and becomes the best epoch
    trainer, evaluator, net = _training(tmp_path, 5, {5: 0.9})
    trainer.run()
    assert _same(_weights(model), net.state_dict())
    assert _same(_weights(model), _weights(tmp_path / "checkpoint_epoch=5.pt", "model"))
    summary = log_training_summary(trainer, evaluator, str(tmp_path))
    assert (summary["best_metric_epoch"], summary["best_metric"]) == (5, 0.9)
    # n_saved=2 holds across the two resumes: the interrupted runs' older checkpoints were removed
    assert [n for n, _ in epoch_checkpoints(tmp_path)] == [4, 5]



def test_best_model_survives_a_failed_replacement(tmp_path, monkeypatch):
    """ignite removes the old best file before writing the new one; with a fixed name the atomic write replaces it."""
    trainer, _, _ = _training(tmp_path, 1, {1: 0.5})
    trainer.run()
    best = (tmp_path / "model.pt").read_bytes()
    real_save = torch.save

    def full_disk_for_model_pt(obj, f, *args, **kwargs):
        if set(obj) == {"weight", "bias"}:  # the key-metric saver writes the bare network state
            raise OSError("No space left on device")
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk_for_model_pt)
    trainer, _, _ = _training(tmp_path, 2, {2: 0.9})  # better: model.pt is to be replaced, and the write fails
    with pytest.raises(OSError, match="No space"):
        trainer.run()
    assert (tmp_path / "model.pt").read_bytes() == best

def test_corrupt_newest_checkpoint_falls_back(tmp_path, caplog):
    trainer, _, _ = _training(tmp_path, 3)
    trainer.run()
    newest = tmp_path / "checkpoint_epoch=3.pt"
    previous_model = _weights(tmp_path / "checkpoint_epoch=2.pt", "model")
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated, e.g. by a full disk

    trainer, _, net = _training(tmp_path, 3)
    loaded = {}
    trainer.add_event_handler(Events.STARTED, lambda e: loaded.update(epoch=e.state.epoch, model=_copy(net)))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        trainer.run()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("checkpoint_epoch=3.pt" in w and "truncated or corrupt" in w for w in warnings), warnings
    assert loaded["epoch"] == 2 and _same(loaded["model"], previous_model)
    assert trainer.state.epoch == 3 and _epoch(newest) == 3  # epoch 3 retrained and rewritten

    for _, path in epoch_checkpoints(tmp_path):
        path.write_bytes(b"PK\x03\x04 not a checkpoint")
    trainer, _, _ = _training(tmp_path, 4)
    with pytest.raises(CheckpointReadError, match=r"checkpoint_epoch=3\.pt.*\|.*checkpoint_epoch=2\.pt") as err:
        trainer.run()
    assert "resume disabled" in str(err.value)


def test_checkpoint_without_required_entry_is_skipped(tmp_path, caplog):
    trainer, _, _ = _training(tmp_path, 2)
    trainer.run()
    newest = tmp_path / "checkpoint_epoch=2.pt"
    state = torch.load(newest, weights_only=True)
    del state["optimizer"]
    torch.save(state, newest)
    trainer, _, _ = _training(tmp_path, 2)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        trainer.run()
    assert any("checkpoint_epoch=2.pt" in r.getMessage() and "['optimizer'] are missing" in r.getMessage()
               for r in caplog.records)
    assert trainer.state.epoch == 2 and _epoch(newest) == 2  # resumed at 1, redid epoch 2


def test_exact_checkpoint_names(tmp_path):
    for name in ("checkpoint_epoch=3.pt", "checkpoint_epoch=11.pt", "backup_of_checkpoint_epoch=99.pt",
                 "checkpoint_epoch=98.pt.tmp", "old_checkpoint_epoch=97.pt", "checkpoint_epoch=96.pth", "model.pt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "checkpoint_epoch=95.pt").mkdir()
    assert [n for n, _ in epoch_checkpoints(tmp_path)] == [3, 11]
    assert latest_checkpoint(tmp_path) == str(tmp_path / "checkpoint_epoch=11.pt")
    with pytest.warns(DeprecationWarning, match="monai_implicit.handlers.checkpoints.latest_checkpoint"):
        assert monai_implicit.bundles.latest_checkpoint(tmp_path) == latest_checkpoint(tmp_path)  # the old name
    assert latest_checkpoint(tmp_path / "missing") is None and epoch_checkpoints(tmp_path / "missing") == []


def _draws(transform: Any, epochs: list[tuple[int, bool]], folder: Path) -> tuple[list, dict]:
    """Run (max_epochs, resume) in turn; record every batch and a torch/numpy/random draw per iteration."""
    record: list = []
    net = None
    for max_epochs, resume in epochs:
        trainer, _, net = _training(folder, max_epochs, transform=transform, resume=resume)

        @trainer.on(Events.ITERATION_COMPLETED)
        def _record(engine: Engine) -> None:
            images = torch.stack([item["image"] for item in engine.state.batch])  # decollated by MONAI
            record.append((engine.state.epoch, images, torch.rand(2),
                           np.random.rand(2), random.random()))

        trainer.run()
    return record, net.state_dict()


def test_resumed_random_draws_equal_uninterrupted_run(tmp_path):
    transform = Compose([RandGaussianNoised("image", prob=1.0, std=1.0), RandFlipd("image", prob=0.5, spatial_axis=0)])
    straight, straight_net = _draws(transform, [(4, False)], tmp_path / "a")
    resumed, resumed_net = _draws(transform, [(2, False), (4, True)], tmp_path / "b")
    assert [r[0] for r in straight] == [r[0] for r in resumed] == [1, 1, 2, 2, 3, 3, 4, 4]
    for a, b in zip(straight, resumed):
        assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2]) and np.array_equal(a[3], b[3]) and a[4] == b[4]
    assert _same(straight_net, resumed_net)  # hence the same training

    # without the RNG state a resume draws differently (the test can fail)
    _draws(transform, [(2, False)], tmp_path / "c")
    for _, path in epoch_checkpoints(tmp_path / "c"):
        state = torch.load(path, weights_only=True)
        del state["rng"]
        torch.save(state, path)
    without, _ = _draws(transform, [(4, True)], tmp_path / "c")
    assert not torch.equal(without[0][1], straight[4][1])


def test_rng_state_round_trip():
    rng = RNGState()
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    saved = rng.state_dict()
    expected = (torch.rand(3), np.random.rand(3), np.random.randn(), random.random(), random.gauss(0, 1))
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    rng.load_state_dict(saved)
    again = (torch.rand(3), np.random.rand(3), np.random.randn(), random.random(), random.gauss(0, 1))
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2:] == again[2:]


def test_grad_scaler_state_round_trip(tmp_path):
    def engine_with_scaler(scale: float) -> Engine:
        engine = Engine(lambda e, b: None)
        engine.scaler = torch.amp.GradScaler("cpu", init_scale=scale, growth_interval=7)
        return engine

    net = torch.nn.Linear(2, 2)
    engine = engine_with_scaler(1024.0)
    engine.scaler.scale(torch.ones(()))  # creates the scale tensor
    engine.scaler.update(new_scale=37.0)
    AtomicCheckpointSaver(tmp_path, {"model": net}, engine_key="trainer", save_interval=1, n_saved=2).attach(engine)
    engine.run([0], max_epochs=1)
    saved = torch.load(tmp_path / "checkpoint_epoch=1.pt", weights_only=True)["scaler"]
    assert saved["scale"] == 37.0 and saved["growth_interval"] == 7

    resumed = engine_with_scaler(65536.0)
    ResumeFromCheckpoint(tmp_path, {"model": net}).attach(resumed)
    resumed.run([0], max_epochs=2)
    assert resumed.scaler.get_scale() == 37.0 and resumed.scaler.state_dict() == saved



def test_supervised_trainer_amp_scaler_resumes(tmp_path, monkeypatch):
    """MONAI's trainer creates a new GradScaler in run(): the resume must load into that one (at STARTED).

    A CPU GradScaler stands in for the CUDA one; without infinite gradients it doubles its scale every
    ``growth_interval`` optimizer steps, so after ``k`` steps: scale = 2**16 * 2**(k // 3), tracker = k % 3.
    """
    monkeypatch.setattr(torch.cuda.amp, "GradScaler", lambda *a, **k: torch.amp.GradScaler("cpu", growth_interval=3))

    def run(max_epochs: int) -> dict:
        trainer, _, _ = _training(tmp_path, max_epochs)
        trainer.amp = True
        trainer.run()
        return trainer.scaler.state_dict()

    assert run(2)["scale"] == 2.0**16 * 2  # 2 epochs x 2 batches = 4 steps
    state = run(5)  # resumed: 6 more steps, 10 in all
    assert (state["scale"], state["_growth_tracker"]) == (2.0**16 * 2**3, 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_rng_restored_with_map_location(tmp_path):
    """CUDA generator states round-trip, also when the checkpoint is mapped onto the GPU (map_location)."""
    net = torch.nn.Linear(2, 2).cuda()
    engine = Engine(lambda e, b: None)
    AtomicCheckpointSaver(tmp_path, {"model": net}, engine_key="trainer", save_interval=1, n_saved=2).attach(engine)
    torch.manual_seed(5)  # seeds every CUDA device too
    engine.run([0], max_epochs=1)
    expected = torch.rand(3, device="cuda").cpu(), torch.rand(3)
    torch.manual_seed(9)
    resumed = Engine(lambda e, b: None)
    ResumeFromCheckpoint(tmp_path, {"model": net}, map_location="cuda").attach(resumed)
    resumed.run([0], max_epochs=2)
    assert torch.equal(torch.rand(3, device="cuda").cpu(), expected[0]) and torch.equal(torch.rand(3), expected[1])

def test_old_checkpoint_without_resume_extras(tmp_path, caplog):
    """A checkpoint written before scaler/rng/best-metric were saved still resumes (with a warning)."""
    trainer, _, _ = _training(tmp_path, 2, {1: 0.1, 2: 0.2})
    trainer.run()
    path = tmp_path / "checkpoint_epoch=2.pt"
    state = torch.load(path, weights_only=True)
    torch.save({k: state[k] for k in ("model", "optimizer", "trainer")}, path)
    trainer, evaluator, _ = _training(tmp_path, 3, {3: 0.3})
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        trainer.run()
    assert trainer.state.epoch == 3
    assert any("has no ['scaler', 'rng', 'best_metric_state']" in r.getMessage() for r in caplog.records)


def test_corrupt_model_file_is_named(tmp_path):
    net = torch.nn.Linear(2, 2)
    model = tmp_path / "model.pt"
    torch.save(net.state_dict(), model)
    model.write_bytes(model.read_bytes()[:40])
    with pytest.raises(CheckpointReadError, match=r"model\.pt.*truncated or corrupt"):
        read_checkpoint(model)
    engine = Engine(lambda e, b: None)
    CheckpointLoader(load_path=str(model), load_dict={"model": net}).attach(engine)
    with pytest.raises(CheckpointReadError, match=r"cannot load checkpoint .*model\.pt into \['model'\]"):
        engine.run([0])
    torch.save(torch.nn.Linear(3, 3).state_dict(), model)  # readable, but not this network's weights
    engine = Engine(lambda e, b: None)
    CheckpointLoader(load_path=str(model), load_dict={"model": net}).attach(engine)
    with pytest.raises(CheckpointReadError, match=r"model\.pt.*size mismatch"):
        engine.run([0])
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        read_checkpoint(tmp_path / "missing.pt")


def test_argument_checks(tmp_path):
    net = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"\['rng'\] are reserved"):
        AtomicCheckpointSaver(tmp_path, {"model": net, "rng": net}, engine_key="trainer", save_interval=1)
    with pytest.raises(ValueError, match="set engine_key"):
        AtomicCheckpointSaver(tmp_path, {"model": net}, best_metric_state=object(), save_interval=1)
    with pytest.raises(ValueError, match=r"\['trainer'\] are reserved"):
        ResumeFromCheckpoint(tmp_path, {"trainer": net})
    with pytest.raises(TypeError, match="MONAI evaluator"):
        BestMetricState(Engine(lambda e, b: None))
    trainer, evaluator, _ = _training(tmp_path, 1, {1: 0.0})
    with pytest.raises(ValueError, match="save_key_metric=True"):
        BestMetricState(evaluator, AtomicCheckpointSaver(tmp_path, {"model": net}, save_interval=1))


def test_predictor_names_corrupt_model_file(tmp_path):
    """The bundles' predictor (``monai_implicit.bundles.load``) reports a truncated models/model.pt by name."""
    bundle = Path(__file__).resolve().parents[2] / "bundles" / "njetunet_la"
    (tmp_path / "configs").mkdir()
    for name in ("inference.json", "metadata.json"):
        (tmp_path / "configs" / name).write_text((bundle / "configs" / name).read_text())
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointReadError, match=r"models/model\.pt .*truncated or corrupt"):
        monai_implicit.bundles.load(tmp_path, device="cpu")
