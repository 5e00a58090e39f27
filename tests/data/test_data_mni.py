"""MNI152 template slices: real anatomy read offline from nilearn's package data, a leak-free split, the layout the
csmri bundle reads, and the ``mni152-slices`` subcommand."""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_implicit.data import (
    MNI152_SHAPE,
    load_datalist,
    load_mni152_template,
    make_mni152_dataset,
    make_phantom_dataset,
    mni152_slices,
    mni152_split,
)
from monai_implicit.data.__main__ import main
from monai_implicit.transforms import CheckedLoadImaged

needs_nilearn = pytest.mark.skipif(importlib.util.find_spec("nilearn") is None, reason="needs nilearn (data extra)")
NAME = re.compile(r"mni152_(axial|coronal|sagittal)_([xyz])(\d{3})\.nii\.gz$")
AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}


@pytest.fixture(scope="module")
def raw() -> np.ndarray:
    """The packaged template read with nibabel (not through the code under test), scaled to max 1 as nilearn does."""
    import nilearn.datasets

    path = Path(nilearn.datasets.__file__).parent / "data" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    data = np.asarray(nib.load(path).get_fdata(), dtype=np.float64)
    return data / data.max()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_mni152_dataset(tmp_path_factory.mktemp("mni") / "ds", size=64)


def _entries(datalist: dict, part: str) -> list[tuple[str, int, str]]:
    """(orientation, template index, relative path) parsed from the file names of a datalist section."""
    out = []
    for item in datalist[part]:
        m = NAME.search(item["image"])
        if m:
            assert m.group(2) == "xyz"[AXIS[m.group(1)]]
            out.append((m.group(1), int(m.group(3)), item["image"]))
    return out


def _brain_area(raw: np.ndarray, orientation: str) -> np.ndarray:
    axis = AXIS[orientation]
    return (raw > 0.1).sum(axis=tuple(a for a in range(3) if a != axis))


@needs_nilearn
def test_template_is_read_offline(monkeypatch, raw):
    def no_network(*args, **kwargs):
        raise AssertionError("the MNI152 template must not be downloaded")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    import nilearn.datasets

    nilearn.datasets.load_mni152_template.cache_clear()  # really read the file, not nilearn's in-memory copy
    volume, spacing = load_mni152_template()
    assert volume.shape == MNI152_SHAPE == raw.shape and volume.dtype == np.float32
    assert spacing == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(volume, raw, atol=1e-6)


@needs_nilearn
def test_native_slices_are_the_template_slices(raw):
    for orientation, shape in (("axial", (197, 233)), ("coronal", (197, 189)), ("sagittal", (233, 189))):
        images, spacing = mni152_slices(orientation, [90, 100], size=None)
        assert images.shape == (2, *shape) and spacing == (1.0, 1.0)
        np.testing.assert_allclose(images[1], np.moveaxis(raw, AXIS[orientation], 0)[100], atol=1e-6)


@needs_nilearn
def test_slices_are_brain_anatomy(dataset, raw):
    datalist = json.loads(dataset.read_text())
    assert datalist["numValidation"] == 8 and datalist["numTest"] == 8 and datalist["numTraining"] > 60
    bright = []
    for part in ("training", "validation", "test"):
        for orientation, index, rel in _entries(datalist, part):
            nii = nib.load(dataset.parent / rel)
            image = np.asarray(nii.dataobj)
            assert image.shape == (64, 64) and image.dtype == np.float32
            assert 0.0 <= image.min() and image.max() <= 1.0 and image[0, 0] == 0.0  # template scale, background 0
            brain = image > 0.1
            assert 0.15 < brain.mean() < 0.65, (rel, brain.mean())
            # T1 contrast: bright white matter (cerebellar slices have little of it at 64 x 64) and darker grey
            # matter / CSF in every slice, not a flat blob
            values = image[brain]
            assert (values > 0.75).mean() > 0.03 and (values < 0.6).mean() > 0.1 and values.std() > 0.1, rel
            bright.append((values > 0.75).mean())
            # no stretch: the brain's extent in mm matches the template's (1 mm voxels) within two output pixels
            native = np.moveaxis(raw, AXIS[orientation], 0)[index] > 0.1
            spacing = np.abs(np.diag(nii.affine)[:2])
            assert spacing[0] == pytest.approx(spacing[1], rel=0.02)
            for d in range(2):
                got = np.nonzero(brain.any(axis=1 - d))[0]
                ref = np.nonzero(native.any(axis=1 - d))[0]
                assert abs((got[-1] - got[0] + 1) * spacing[d] - (ref[-1] - ref[0] + 1)) <= 2 * spacing[d] + 1, rel
    assert len(bright) == 8 + 8 + datalist["numTraining"] and 0.2 < np.mean(bright) < 0.5  # white matter ~1/3


@needs_nilearn
def test_split_has_the_gap_and_skips_empty_slices(dataset, raw):
    datalist = json.loads(dataset.read_text())
    parts = {p: _entries(datalist, p) for p in ("training", "validation", "test")}
    assert all(rel.startswith("./imagesTs/") for *_, rel in parts["test"])
    assert all(rel.startswith("./imagesTr/") for p in ("training", "validation") for *_, rel in parts[p])
    for orientation in ("axial", "coronal"):
        idx = {p: [i for o, i, _ in parts[p] if o == orientation] for p in parts}
        assert len(idx["validation"]) == len(idx["test"]) == 4
        held = idx["validation"] + idx["test"]
        assert min(abs(t - h) for t in idx["training"] for h in held) >= 10  # 1 mm slices, gap_mm=10
        assert min(abs(v - t) for v in idx["validation"] for t in idx["test"]) >= 10
        for slab in (idx["validation"], idx["test"]):  # a slab of consecutive candidates, training on both sides
            assert np.all(np.diff(sorted(slab)) == 2)
            assert min(idx["training"]) < min(slab) and max(slab) < max(idx["training"])
        area = _brain_area(raw, orientation)
        used = sorted(sum(idx.values(), []))
        assert min(area[used]) >= 0.3 * area.max()
        assert area[used[0] - 2] < 0.3 * area.max() or used[0] < 2  # the near-empty end slices are skipped
        assert area[used[-1] + 2] < 0.3 * area.max()


@needs_nilearn
@pytest.mark.parametrize("gap_mm,step", [(20.0, 1), (6.0, 3)])
def test_split_options(gap_mm, step):
    split = mni152_split("coronal", num_validation=3, num_test=2, slice_step=step, gap_mm=gap_mm)
    held = split["validation"] + split["test"]
    assert len(split["validation"]) == 3 and len(split["test"]) == 2
    assert min(abs(t - h) for t in split["training"] for h in held) >= gap_mm
    assert all((i - split["training"][0]) % step == 0 for i in split["training"] + held)
    sagittal = mni152_split("sagittal")
    assert max(sum(sagittal.values(), [])) <= 98  # the symmetric template: left hemisphere and midline only
    with pytest.raises(ValueError, match="apart"):
        mni152_split("axial", num_validation=20, num_test=20)
    with pytest.raises(ValueError, match="orientation|Unsupported"):
        mni152_split("oblique")


@needs_nilearn
def test_bundle_loader_reads_every_split(dataset):
    load = CheckedLoadImaged("image", ensure_channel_first=True, image_only=True)
    for part in ("training", "validation", "test"):
        items = load_datalist(dataset, ("image",), data_list_key=part)
        image = load(items[0])["image"]
        assert tuple(image.shape) == (1, 64, 64)
        np.testing.assert_array_equal(image[0].numpy(), np.asarray(nib.load(items[0]["image"]).dataobj))


@needs_nilearn
def test_determinism_noise_and_mixed(tmp_path):
    kw = dict(size=(32, 40), orientations="axial", num_validation=1, num_test=1, slice_step=6)
    a = make_mni152_dataset(tmp_path / "a", noise=0.02, seed=1, **kw)
    b = make_mni152_dataset(tmp_path / "b", noise=0.02, seed=1, **kw)
    c = make_mni152_dataset(tmp_path / "c", noise=0.02, seed=2, **kw)
    clean = make_mni152_dataset(tmp_path / "clean", **kw)
    la, lb = json.loads(a.read_text()), json.loads(b.read_text())
    assert la == lb
    rel = la["validation"][0]["image"]
    va, vb, vc, v0 = (np.asarray(nib.load(p.parent / rel).dataobj) for p in (a, b, c, clean))
    assert va.shape == (32, 40)
    assert np.array_equal(va, vb) and not np.array_equal(va, vc)
    assert 0.005 < np.std(va - v0) < 0.05  # Rician noise of level 0.02 on top of the clean slice
    again = make_mni152_dataset(tmp_path / "clean", overwrite=True, **kw)
    assert np.array_equal(np.asarray(nib.load(again.parent / rel).dataobj), v0)
    mixed = make_mni152_dataset(tmp_path / "mixed", num_phantoms=2, seed=3, **kw)
    datalist = json.loads(mixed.read_text())
    phantoms = [e["image"] for e in datalist["training"] if "phantoms" in e["image"]]
    assert len(phantoms) == 2 and all(NAME.search(e["image"]) for e in datalist["validation"] + datalist["test"])
    ref = make_phantom_dataset(tmp_path / "ref", num_images=2, num_test=0, shape=(32, 40), seed=3)
    for p in phantoms:
        expected = ref.parent / "imagesTr" / Path(p).name
        assert np.array_equal(np.asarray(nib.load(mixed.parent / p).dataobj), np.asarray(nib.load(expected).dataobj))
    assert len(load_datalist(mixed, ("image",))) == datalist["numTraining"]


@needs_nilearn
def test_cli(tmp_path, capsys):
    args = ["--size", "32", "--orientations", "coronal", "--num-validation", "1", "--num-test", "0",
            "--slice-step", "8", "--gap-mm", "12"]
    assert main(["mni152-slices", "--out", str(tmp_path / "cli"), *args]) == 0
    assert Path(capsys.readouterr().out.strip()) == tmp_path / "cli" / "dataset.json"
    ref = make_mni152_dataset(tmp_path / "ref", size=32, orientations=["coronal"], num_validation=1, num_test=0,
                              slice_step=8, gap_mm=12.0)
    cli = json.loads((tmp_path / "cli" / "dataset.json").read_text())
    assert cli == json.loads(ref.read_text()) and not cli["test"]
    for item in cli["training"] + cli["validation"]:
        a, b = nib.load(tmp_path / "cli" / item["image"]), nib.load(ref.parent / item["image"])
        assert np.array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj)) and np.allclose(a.affine, b.affine)
    assert main(["mni152-slices", "--out", str(tmp_path / "cli"), *args]) == 2  # existing dataset kept
    assert "exist" in capsys.readouterr().err
    assert main(["mni152-slices", "--out", str(tmp_path / "n"), "--native", "--orientations", "sagittal",
                 "--num-validation", "1", "--num-test", "1", "--slice-step", "10"]) == 0
    native = json.loads((tmp_path / "n" / "dataset.json").read_text())
    assert nib.load(tmp_path / "n" / native["training"][0]["image"]).shape == (233, 189)


def test_without_nilearn(tmp_path, capsys, monkeypatch):
    """A clean error naming the extra, from the library and from the CLI (nilearn's absence simulated)."""
    monkeypatch.setitem(sys.modules, "nilearn", None)
    monkeypatch.setitem(sys.modules, "nilearn.datasets", None)
    with pytest.raises(ImportError, match=r"monai-implicit\[data\]"):
        make_mni152_dataset(tmp_path / "none")
    assert main(["mni152-slices", "--out", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "nilearn" in err and "[data]" in err
    assert not (tmp_path / "none" / "dataset.json").exists()
