"""Unit tests of the shared bundle helpers: atomic checkpoints, dataset checks, label checks, channel selection."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ignite.engine import Engine
from monai.data import MetaTensor
from monai.handlers import CheckpointSaver

from monai_implicit.bundles import select_channels
from monai_implicit.data import ensure_dataset, image_datalist
from monai_implicit.handlers import AtomicCheckpointSaver, latest_checkpoint
from monai_implicit.transforms import CheckLabelValuesd


def _engine_with(saver, epochs: int = 1) -> Engine:
    engine = Engine(lambda e, b: None)
    saver.attach(engine)
    engine.run([0], max_epochs=epochs)
    return engine


@pytest.mark.parametrize("saver_cls", [CheckpointSaver, AtomicCheckpointSaver])
def test_interrupted_save_leaves_no_checkpoint(tmp_path, monkeypatch, saver_cls):
    """A crash in the middle of torch.save: MONAI's saver leaves a truncated *.pt, ours leaves nothing."""
    net = torch.nn.Linear(64, 64)

    def broken_save(obj, f, *args, **kwargs):
        handle = open(f, "wb") if isinstance(f, (str, Path)) else f
        handle.write(b"PK\x03\x04 truncated")
        handle.flush()
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    saver = saver_cls(save_dir=str(tmp_path), save_dict={"model": net}, save_interval=1, n_saved=1)
    with pytest.raises(OSError, match="No space"):
        _engine_with(saver)
    leftovers = list(tmp_path.iterdir())
    if saver_cls is CheckpointSaver:
        assert [p.name for p in leftovers] == ["model_epoch=1.pt"]  # the failure mode we guard against
    else:
        assert leftovers == []
        assert latest_checkpoint(tmp_path) is None


def test_atomic_saver_stores_engine_and_latest(tmp_path):
    net = torch.nn.Linear(2, 2)
    saver = AtomicCheckpointSaver(str(tmp_path), {"model": net}, engine_key="trainer", save_interval=1, n_saved=1)
    _engine_with(saver, epochs=3)
    assert latest_checkpoint(tmp_path) == str(tmp_path / "checkpoint_epoch=3.pt")
    state = torch.load(latest_checkpoint(tmp_path), weights_only=False)
    assert state["trainer"]["iteration"] == 3 * state["trainer"]["epoch_length"]
    assert set(state) == {"model", "trainer", "scaler", "rng"}  # resume state: engine, AMP scaler, random generators
    (tmp_path / "checkpoint_epoch=10.pt.tmp").write_bytes(b"")  # not a checkpoint name
    (tmp_path / "checkpoint_epoch=12.pt").mkdir()  # not a file
    assert latest_checkpoint(tmp_path).endswith("epoch=3.pt")
    with pytest.raises(ValueError, match="engine_key"):
        AtomicCheckpointSaver(str(tmp_path), {"trainer": net}, engine_key="trainer", save_interval=1)


def test_ensure_dataset(tmp_path):
    calls = []

    def generator(folder, overwrite, **kwargs):
        calls.append(kwargs)
        (Path(folder) / "dataset.json").write_text("{}")

    synthetic = tmp_path / "bundle" / "data" / "synthetic"
    path = ensure_dataset(synthetic, synthetic, generator, "use --dataset_dir", num_cases=2)
    assert path == str((synthetic / "dataset.json").resolve()) and calls == [{"num_cases": 2}]
    assert ensure_dataset(synthetic, synthetic, generator) == path and len(calls) == 1  # not regenerated
    with pytest.raises(FileNotFoundError, match="real_dir.*use --dataset_dir"):
        ensure_dataset(tmp_path / "real_dir", synthetic, generator, "use --dataset_dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no dataset.json"):
        ensure_dataset(tmp_path / "empty", synthetic, generator)


def test_image_datalist(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        image_datalist(tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="no file matches"):
        image_datalist(tmp_path)
    (tmp_path / "b.nii.gz").write_bytes(b"1")
    (tmp_path / "a.nii").write_bytes(b"1")
    assert [Path(d["image"]).name for d in image_datalist(tmp_path)] == ["a.nii", "b.nii.gz"]


def test_check_label_values():
    label = MetaTensor(torch.tensor([[0, 1, 2, 2]]), meta={"filename_or_obj": "/data/seg-7.nii"})
    check = CheckLabelValuesd("label", allowed=(0, 1, 2))
    assert check({"label": label})["label"] is label
    label[0, 0] = 4
    with pytest.raises(ValueError, match=r"seg-7.nii.*\[4.0\]"):
        check({"label": label})
    with pytest.raises(ValueError, match="allowed"):
        CheckLabelValuesd("label", allowed=())


def test_select_channels():
    pred = torch.zeros(3, 4, 4)
    pred[2, 1, 1] = 1
    out = [{"pred": pred, "label": pred.clone()}]
    p, y = select_channels(2)(out)
    assert p[0].shape == (1, 4, 4) and p[0].sum() == 1 and torch.equal(p[0], y[0])
    with pytest.raises(ValueError, match="shape"):
        select_channels(5)(out)
    with pytest.raises(ValueError, match="index"):
        select_channels(-1)


def test_moved_names_resolve_with_a_deprecation_warning():
    """Names that left ``monai_implicit.bundles`` still work from old configs, warning with their new home."""
    import importlib

    import monai_implicit.bundles as bundles
    from monai_implicit.data import load_datalist
    from monai_implicit.losses import MaskedDiceCELoss
    from monai_implicit.transforms import IgnoreLabeld, LoadKspaced

    with pytest.warns(DeprecationWarning, match=r"bundles.load_datalist moved to monai_implicit.data.datalist"):
        assert bundles.load_datalist is load_datalist
    with pytest.warns(DeprecationWarning, match="monai_implicit.transforms.checks.CheckLabelValuesd"):
        assert bundles.CheckLabelValuesd is CheckLabelValuesd
    masking = importlib.import_module("monai_implicit.bundles.masking")  # a former config's "$import ..."
    with pytest.warns(DeprecationWarning, match="monai_implicit.losses.masked.MaskedDiceCELoss"):
        assert masking.MaskedDiceCELoss is MaskedDiceCELoss
    with pytest.warns(DeprecationWarning, match="monai_implicit.transforms.labels.IgnoreLabeld"):
        assert bundles.masking.IgnoreLabeld is IgnoreLabeld
    with pytest.warns(DeprecationWarning, match="monai_implicit.transforms.kspace.io.LoadKspaced"):
        assert bundles.reconstruction.LoadKspaced is LoadKspaced
    with pytest.raises(AttributeError, match="no 'nothing'"):
        bundles.masking.nothing  # noqa: B018
    with pytest.raises(AttributeError):
        bundles.nothing  # noqa: B018
