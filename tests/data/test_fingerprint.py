"""Tests of the dataset fingerprint (MONAI DataAnalyzer) and the training plan derived from it."""

from __future__ import annotations

import json
import logging
import math
import os
from types import SimpleNamespace

import monai.apps.auto3dseg
import nibabel as nib
import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from monai_implicit.data import (
    CPU_VOXEL_BUDGET,
    FINGERPRINT_FILE,
    PLAN_FILE,
    dataset_fingerprint,
    gpu_voxel_budget,
    load_plan,
    plan_segmentation,
)

# (spacing in mm, shape in voxels, x/y stored flipped (LPS-like header), has a label-2 "tumour")
CASES = [
    ((0.8, 0.8, 2.0), (40, 36, 20), False, True),
    ((1.0, 1.0, 3.0), (32, 30, 16), True, True),
    ((0.7, 0.7, 2.5), (44, 40, 18), False, False),
    ((0.9, 0.9, 1.5), (36, 36, 24), True, True),
]

# an MSD Task03_Liver-like fingerprint: 131 cases, 0.77 x 0.77 x 1.0 mm, 512 x 512 x 432 voxels, HU percentiles
TASK03_LIKE = {
    "version": 1,
    "num_cases": 131,
    "spacing_median": [0.77, 0.77, 1.0],
    "shape_median": [512.0, 512.0, 432.0],
    "size_mm_median": [512 * 0.77, 512 * 0.77, 432.0],
    "foreground_intensity": {"percentile_00_5": -17.0, "percentile_99_5": 201.0, "mean": 99.4, "std": 39.4,
                             "median": 101.0},
    "labels": [0, 1, 2],
    "class_fractions": {"1": 0.025, "2": 0.0015},
    "source": {"datalist": "/data/Task03_Liver/dataset.json", "hash": "0" * 64},
}


def _write_dataset(folder) -> dict:
    """Four small CT-like cases in the MSD layout; returns the expected fingerprint computed here with numpy."""
    rng = np.random.default_rng(7)
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    training, spacings, shapes, fg_values, fractions = [], [], [], [], []
    for i, (spacing, shape, flipped, tumour) in enumerate(CASES):
        label = np.zeros(shape, np.uint8)
        label[4:-4, 5:-6, 3:-3] = 1
        if tumour:
            label[8:14, 9:15, 5:9] = 2
        image = rng.normal(0.0, 30.0, shape)  # soft tissue around the organ
        image[label == 1] = rng.normal(90.0 + 10.0 * i, 15.0, int((label == 1).sum()))  # case-dependent enhancement
        image[label == 2] = rng.normal(45.0, 10.0, int((label == 2).sum()))
        image = np.round(image).astype(np.int16)
        signs = (-1.0, -1.0, 1.0) if flipped else (1.0, 1.0, 1.0)
        affine = np.diag([s * v for s, v in zip(signs, spacing)] + [1.0])
        nib.save(nib.Nifti1Image(image, affine), folder / "imagesTr" / f"case_{i}.nii.gz")
        nib.save(nib.Nifti1Image(label, affine), folder / "labelsTr" / f"case_{i}.nii.gz")
        training.append({"image": f"./imagesTr/case_{i}.nii.gz", "label": f"./labelsTr/case_{i}.nii.gz"})
        spacings.append(np.float32(spacing).astype(np.float64))  # NIfTI headers keep float32
        shapes.append(shape)
        fg_values.append(image[label > 0].astype(np.float64))
        fractions.append({k: float((label == k).mean()) for k in (1, 2)})
    (folder / "dataset.json").write_text(json.dumps({"name": "toy", "labels": {"0": "bg", "1": "a", "2": "b"},
                                                     "training": training}))
    spacings, shapes = np.array(spacings), np.array(shapes, dtype=np.float64)
    # equal-weight mixture of the cases' foreground voxels: every voxel weighted by 1 / (voxels of its case)
    pooled = np.concatenate(fg_values)
    weights = np.concatenate([np.full(len(v), 1.0 / len(v)) for v in fg_values])
    pooled_mean = np.average(pooled, weights=weights)
    return {
        "spacing_median": np.median(spacings, axis=0),
        "shape_median": np.median(shapes, axis=0),
        "size_mm_median": np.median(shapes * spacings, axis=0),
        "percentile_00_5": np.mean([np.percentile(v, 0.5) for v in fg_values]),
        "percentile_99_5": np.mean([np.percentile(v, 99.5) for v in fg_values]),
        # torch.median (DataAnalyzer's per-case median) is the lower of the two middle values
        "median": np.mean([np.percentile(v, 50, method="lower") for v in fg_values]),
        "mean": np.mean([v.mean() for v in fg_values]),
        "std": np.sqrt(np.average((pooled - pooled_mean) ** 2, weights=weights)),
        "class_fractions": {str(k): np.mean([f[k] for f in fractions]) for k in (1, 2)},
    }


@pytest.fixture
def dataset(tmp_path):
    expected = _write_dataset(tmp_path / "Task99_Toy")
    return tmp_path / "Task99_Toy" / "dataset.json", expected


class _CountingAnalyzer:
    """The real DataAnalyzer, counting how often it is constructed."""

    calls = 0

    def __new__(cls, *args, **kwargs):
        cls.calls += 1
        return _REAL_ANALYZER(*args, **kwargs)


_REAL_ANALYZER = monai.apps.auto3dseg.DataAnalyzer


class _FailingAnalyzer:
    def __init__(self, *args, **kwargs):
        raise AssertionError("DataAnalyzer must not run: the cached fingerprint matches")


@pytest.fixture
def fake_gpu(monkeypatch):
    """Make torch.cuda report one GPU with the given memory (GiB)."""

    def install(gib: float) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "get_device_properties",
                            lambda index: SimpleNamespace(name="fake", total_memory=int(gib * 2**30)))

    return install


def _coarsened_expectation(spacing, size_mm, budget) -> np.ndarray:
    """Spacing at which the median volume has ``budget`` voxels, by root finding (the module uses a closed form)."""
    s, size = np.asarray(spacing, float), np.asarray(size_mm, float)

    def excess(t: float) -> float:  # voxels above the budget when every finer axis is raised to t
        return float(np.prod(size / np.maximum(s, t)) - budget)

    if excess(s.max()) <= 0:
        t = brentq(excess, s.min(), s.max(), xtol=1e-12)
        return np.maximum(s, t)
    return np.full(len(s), (np.prod(size) / budget) ** (1.0 / len(s)))


# ---------------------------------------------------------------------------------------------------------------
# fingerprint


def test_fingerprint_matches_independent_statistics(dataset):
    datalist, expected = dataset
    fp = dataset_fingerprint(datalist)
    json.dumps(fp)  # JSON-serialisable
    assert fp["version"] == 1 and fp["num_cases"] == len(CASES)
    np.testing.assert_allclose(fp["spacing_median"], expected["spacing_median"], rtol=1e-6)
    np.testing.assert_allclose(fp["spacing_median"], [0.85, 0.85, 2.25], rtol=1e-6)
    np.testing.assert_allclose(fp["shape_median"], expected["shape_median"])
    np.testing.assert_allclose(fp["size_mm_median"], expected["size_mm_median"], rtol=1e-6)
    fg = fp["foreground_intensity"]
    for key in ("percentile_00_5", "percentile_99_5", "median", "mean", "std"):
        assert fg[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-3), key
    assert fp["labels"] == [0, 1, 2]
    assert set(fp["class_fractions"]) == {"1", "2"}
    for k, v in expected["class_fractions"].items():  # case 2 has no label 2: it counts as 0
        assert fp["class_fractions"][k] == pytest.approx(v, rel=1e-6)
    assert fp["source"]["datalist"] == str(datalist) and len(fp["source"]["hash"]) == 64
    cached = json.loads((datalist.parent / FINGERPRINT_FILE).read_text())
    assert cached == fp


def test_fingerprint_cache_reused_then_invalidated(dataset, monkeypatch):
    datalist, _ = dataset
    monkeypatch.setattr(_CountingAnalyzer, "calls", 0)
    monkeypatch.setattr(monai.apps.auto3dseg, "DataAnalyzer", _CountingAnalyzer)
    first = dataset_fingerprint(datalist)
    assert _CountingAnalyzer.calls == 1

    monkeypatch.setattr(monai.apps.auto3dseg, "DataAnalyzer", _FailingAnalyzer)
    assert dataset_fingerprint(datalist) == first  # reused: DataAnalyzer would have failed

    # touching one image invalidates it
    image = datalist.parent / "imagesTr" / "case_1.nii.gz"
    st = os.stat(image)
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))
    with pytest.raises(ValueError, match="must not run"):  # it did try to run DataAnalyzer again
        dataset_fingerprint(datalist)
    monkeypatch.setattr(monai.apps.auto3dseg, "DataAnalyzer", _CountingAnalyzer)
    second = dataset_fingerprint(datalist)
    assert _CountingAnalyzer.calls == 2 and second["source"]["hash"] != first["source"]["hash"]
    assert dataset_fingerprint(datalist) == second and _CountingAnalyzer.calls == 2

    # editing the datalist invalidates it; so does recompute=True
    content = json.loads(datalist.read_text())
    content["description"] = "edited"
    datalist.write_text(json.dumps(content))
    dataset_fingerprint(datalist)
    assert _CountingAnalyzer.calls == 3
    dataset_fingerprint(datalist, recompute=True)
    assert _CountingAnalyzer.calls == 4

    # an unreadable cache is recomputed and rewritten
    (datalist.parent / FINGERPRINT_FILE).write_text("{not json")
    fp = dataset_fingerprint(datalist)
    assert _CountingAnalyzer.calls == 5 and json.loads((datalist.parent / FINGERPRINT_FILE).read_text()) == fp


def test_fingerprint_cache_dir_and_read_only_dataset(dataset, tmp_path, monkeypatch, caplog):
    datalist, expected = dataset
    folder = datalist.parent
    cache = tmp_path / "cache"
    fp = dataset_fingerprint(datalist, cache_dir=cache)
    assert (cache / FINGERPRINT_FILE).is_file() and not (folder / FINGERPRINT_FILE).exists()

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if os.fspath(p) == str(folder) else real_access(p, mode))
    with caplog.at_level(logging.WARNING, logger="monai_implicit.data.fingerprint"):
        uncached = dataset_fingerprint(datalist)
    assert "not writable" in caplog.text and str(folder) in caplog.text
    assert not (folder / FINGERPRINT_FILE).exists()
    assert uncached == fp
    np.testing.assert_allclose(uncached["spacing_median"], expected["spacing_median"], rtol=1e-6)


def test_fingerprint_errors_name_the_file(dataset, tmp_path):
    datalist, _ = dataset
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        dataset_fingerprint(tmp_path / "nowhere.json")
    content = json.loads(datalist.read_text())

    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"training": []}))
    with pytest.raises(ValueError, match=r"empty\.json.*empty"):
        dataset_fingerprint(empty)
    no_list = tmp_path / "no_list.json"
    no_list.write_text(json.dumps({"name": "x"}))
    with pytest.raises(ValueError, match=r"no_list\.json.*training"):
        dataset_fingerprint(no_list)

    missing = json.loads(json.dumps(content))
    missing["training"][2]["image"] = "./imagesTr/gone.nii.gz"
    datalist.write_text(json.dumps(missing))
    with pytest.raises(FileNotFoundError, match=r"imagesTr/gone\.nii\.gz"):
        dataset_fingerprint(datalist)

    no_label = json.loads(json.dumps(content))
    del no_label["training"][0]["label"]
    datalist.write_text(json.dumps(no_label))
    with pytest.raises(ValueError, match=r"entry 0 must have the keys 'image' and 'label'"):
        dataset_fingerprint(datalist)

    # a label whose shape differs from its image's, an unreadable label: DataAnalyzer's error, with the file named
    datalist.write_text(json.dumps(content))
    label_1 = datalist.parent / "labelsTr" / "case_1.nii.gz"
    original = label_1.read_bytes()
    nib.save(nib.Nifti1Image(np.ones((50, 50, 30), np.uint8), nib.load(label_1).affine), label_1)
    with pytest.raises(ValueError, match=r"DataAnalyzer failed.*labelsTr/case_1\.nii\.gz"):
        dataset_fingerprint(datalist)
    label_1.write_bytes(b"not a nifti file")
    with pytest.raises(ValueError, match=r"DataAnalyzer failed.*labelsTr/case_1\.nii\.gz"):
        dataset_fingerprint(datalist)
    label_1.write_bytes(original)

    # labels without any foreground voxel: no foreground statistics
    for i, (_, shape, _, _) in enumerate(CASES):
        path = datalist.parent / "labelsTr" / f"case_{i}.nii.gz"
        nib.save(nib.Nifti1Image(np.zeros(shape, np.uint8), nib.load(path).affine), path)
    with pytest.raises(ValueError, match="foreground"):
        dataset_fingerprint(datalist)


# ---------------------------------------------------------------------------------------------------------------
# plan


def test_plan_from_fingerprint_on_cpu_keeps_median_spacing(dataset, tmp_path):
    datalist, expected = dataset
    fp = dataset_fingerprint(datalist)
    plan = plan_segmentation(fp, "cpu", save_dir=tmp_path / "ckpt")
    json.dumps(plan)
    # the toy median volume is far below the CPU budget: median spacing, whole volume
    np.testing.assert_allclose(plan["pixdim"], expected["spacing_median"], rtol=1e-6)
    shape = expected["size_mm_median"] / expected["spacing_median"]
    assert np.prod(shape) < CPU_VOXEL_BUDGET
    # depth: the largest d with every axis of the rounded-up shape >= 4 * 2**d; patch: the shape rounded up
    depth = max(d for d in range(1, 6) if all(math.ceil(n / 2**d) >= 4 for n in shape))
    assert plan["depth"] == depth == 2
    assert plan["patch_size"] == [math.ceil(n / 2**depth) * 2**depth for n in shape] == [40, 36, 20]
    assert plan["batch_size"] == 2 and plan["voxel_budget"] == CPU_VOXEL_BUDGET and plan["device_type"] == "cpu"
    assert plan["hu_window"] == pytest.approx([expected["percentile_00_5"], expected["percentile_99_5"]], rel=1e-4)
    assert plan["intensity_mean"] == pytest.approx(expected["mean"], rel=1e-4)
    assert plan["intensity_std"] == pytest.approx(expected["std"], rel=1e-4)
    assert plan["overrides"] == []
    assert load_plan(tmp_path / "ckpt") == {**plan, "fingerprint": fp}


@pytest.mark.parametrize(
    "spacing, size_mm, changed",
    [
        ((0.8, 0.8, 5.0), (240.0, 240.0, 100.0), [True, True, False]),  # raising the fine in-plane axes suffices
        ((0.8, 0.8, 2.5), (240.0, 240.0, 100.0), [True, True, True]),  # then all axes together (isotropic)
        ((0.77, 0.77, 1.0), (394.24, 394.24, 432.0), [True, True, True]),  # Task03_Liver-like
        ((0.5, 1.5, 3.0), (80.0, 150.0, 90.0), [True, False, False]),  # only the finest axis
    ],
)
def test_plan_cpu_coarsens_spacing_until_the_median_volume_fits(spacing, size_mm, changed):
    fp = {**TASK03_LIKE, "spacing_median": list(spacing), "size_mm_median": list(size_mm)}
    plan = plan_segmentation(fp, "cpu")
    pixdim = np.array(plan["pixdim"])
    np.testing.assert_allclose(pixdim, _coarsened_expectation(spacing, size_mm, CPU_VOXEL_BUDGET), rtol=1e-9)
    assert list(~np.isclose(pixdim, spacing)) == changed
    assert np.prod(np.array(size_mm) / pixdim) == pytest.approx(CPU_VOXEL_BUDGET, rel=1e-9)
    patch = np.array(plan["patch_size"])
    assert np.prod(patch) <= CPU_VOXEL_BUDGET and np.all(patch % 2 ** plan["depth"] == 0)
    assert np.all(patch // 2 ** plan["depth"] >= 4)
    # the patch is the (now whole) median volume, each axis within one rounding step of it
    assert np.all(np.abs(patch - np.array(size_mm) / pixdim) < 2 ** plan["depth"])


def test_plan_gpu_keeps_median_spacing(fake_gpu):
    fp = {**TASK03_LIKE, "spacing_median": [0.8, 0.8, 2.5], "size_mm_median": [240.0, 240.0, 100.0]}
    fake_gpu(16)
    plan = plan_segmentation(fp, "cuda")
    assert plan["device_type"] == "cuda" and plan["voxel_budget"] == 128**3
    assert plan["pixdim"] == [0.8, 0.8, 2.5]  # not coarsened although the volume (300 x 300 x 40) exceeds the budget
    assert plan["derived_from"]["gpu_total_memory_gib"] == pytest.approx(16.0)
    patch = np.array(plan["patch_size"])
    assert np.prod(patch) <= plan["voxel_budget"] and np.all(patch % 2 ** plan["depth"] == 0)
    # aspect ratio of the median shape (300, 300, 40) kept: each axis within one step of the scaled shape
    shape = np.array([300.0, 300.0, 40.0])
    target = shape * (plan["voxel_budget"] / np.prod(shape)) ** (1 / 3)
    assert np.all(np.abs(patch - target) < 2 ** plan["depth"])


def test_plan_task03_like_on_gpus(fake_gpu):
    fake_gpu(80)
    plan = plan_segmentation(TASK03_LIKE, torch.device("cuda", 0))
    assert plan["pixdim"] == [0.77, 0.77, 1.0]
    assert plan["voxel_budget"] == gpu_voxel_budget(80 * 2**30) == 4_194_304
    patch = np.array(plan["patch_size"])
    assert np.prod(patch) <= plan["voxel_budget"]
    assert plan["depth"] == 5 and np.all(patch % 32 == 0) and np.all(patch // 32 >= 4)
    assert plan["batch_size"] >= 2
    assert plan["hu_window"] == [-17.0, 201.0]
    assert plan["intensity_mean"] == 99.4 and plan["intensity_std"] == 39.4
    target = np.array([512.0, 512.0, 432.0]) * (plan["voxel_budget"] / (512 * 512 * 432)) ** (1 / 3)
    assert np.all(np.abs(patch - target) < 32)
    assert plan["patch_size"] == [160, 160, 160] and plan["batch_size"] == 2
    # on a 16 GiB GPU: nnU-Net's 3d_fullres patch of LiTS, 128 x 128 x 128, batch 2
    fake_gpu(16)
    plan16 = plan_segmentation(TASK03_LIKE, "cuda")
    assert plan16["patch_size"] == [128, 128, 128] and plan16["depth"] == 5 and plan16["batch_size"] == 2


def test_plan_gpu_thick_slices_lengthen_the_thin_axis_for_the_bottleneck(fake_gpu):
    # 512 x 512 x 40 voxels at 0.6 x 0.6 x 4 mm on 16 GiB: scaled to the budget the slice axis would be 23 voxels;
    # depth 3 needs 4 * 8 = 32 slices (the 40-slice volume has them), and x, y share the rest of the budget:
    # 2**21 / 32 = 256**2 voxels.  Depth 4 would need 64 slices, more than the volume.
    fp = {**TASK03_LIKE, "spacing_median": [0.6, 0.6, 4.0], "size_mm_median": [307.2, 307.2, 160.0]}
    fake_gpu(16)
    plan = plan_segmentation(fp, "cuda")
    assert plan["pixdim"] == [0.6, 0.6, 4.0]
    assert plan["depth"] == 3 and plan["patch_size"] == [256, 256, 32]


@pytest.mark.parametrize("num_cases, batch", [(200, 10), (10_000, 65), (10, 2)])
def test_plan_gpu_batch_grows_for_small_whole_volumes(fake_gpu, num_cases, batch):
    fp = {**TASK03_LIKE, "num_cases": num_cases, "spacing_median": [1.0, 1.0, 1.0],
          "size_mm_median": [40.0, 40.0, 40.0]}
    fake_gpu(16)
    plan = plan_segmentation(fp, "cuda")
    assert plan["patch_size"] == [40, 40, 40] and plan["depth"] == 3
    by_memory = 2 * 128**3 // 40**3  # 65 whole volumes in the memory of two budget-sized samples
    by_dataset = int(0.05 * num_cases)  # 5 % of the dataset (one patch = one whole volume)
    assert plan["batch_size"] == max(2, min(by_memory, by_dataset)) == batch


def test_gpu_budget_rule():
    assert gpu_voxel_budget(16 * 2**30) == 128**3
    assert gpu_voxel_budget(24 * 2**30) == int(1.5 * 128**3)
    assert gpu_voxel_budget(40 * 2**30) == gpu_voxel_budget(141 * 2**30) == 2 * 128**3
    assert gpu_voxel_budget(1 * 2**30) == 64**3


@pytest.mark.parametrize(
    "patch, depth",
    [((128, 128, 128), 5), ((160, 160, 160), 5), ((96, 96, 40), 3), ((64, 64, 24), 2), ((48, 48, 48), 3),
     ((30, 30, 30), 1), ((7, 7, 7), 1)],
)
def test_plan_depth_rule_for_a_given_patch(patch, depth):
    plan = plan_segmentation(TASK03_LIKE, "cpu", patch_size=patch)
    assert plan["patch_size"] == list(patch) and plan["depth"] == depth


def test_plan_overrides_win(tmp_path):
    base = plan_segmentation(TASK03_LIKE, "cpu")
    # pixdim: used as given, the patch is derived from the median shape at that spacing
    plan = plan_segmentation(TASK03_LIKE, "cpu", pixdim=2.0)
    assert plan["pixdim"] == [2.0, 2.0, 2.0] and plan["overrides"] == ["pixdim"]
    shape = np.array(TASK03_LIKE["size_mm_median"]) / 2.0
    np.testing.assert_allclose(plan["derived_from"]["shape_at_pixdim"], shape)
    patch = np.array(plan["patch_size"])
    target = shape * (CPU_VOXEL_BUDGET / np.prod(shape)) ** (1 / 3)
    assert np.prod(patch) <= CPU_VOXEL_BUDGET and np.all(np.abs(patch - target) < 2 ** plan["depth"])

    # patch size, batch size, depth and window: used as given
    plan = plan_segmentation(TASK03_LIKE, "cpu", patch_size=(96, 96, 64), batch_size=3, depth=4,
                             hu_window=(-100, 250), save_dir=tmp_path)
    assert plan["patch_size"] == [96, 96, 64] and plan["batch_size"] == 3 and plan["depth"] == 4
    assert plan["hu_window"] == [-100.0, 250.0]
    assert plan["intensity_mean"] == 99.4 and plan["intensity_std"] == 39.4  # foreground statistics kept
    assert plan["pixdim"] == base["pixdim"]  # not overridden: still derived
    assert sorted(plan["overrides"]) == ["batch_size", "depth", "hu_window", "patch_size"]
    assert load_plan(tmp_path)["patch_size"] == [96, 96, 64]

    # a depth alone: the derived patch is in multiples of 2**depth
    plan = plan_segmentation(TASK03_LIKE, "cpu", depth=2)
    assert plan["depth"] == 2 and all(p % 4 == 0 for p in plan["patch_size"])
    assert np.prod(plan["patch_size"]) <= CPU_VOXEL_BUDGET
    # a depth whose bottleneck minimum (4 * 32 voxels per axis) exceeds the CPU budget: kept, the patch follows it
    plan = plan_segmentation(TASK03_LIKE, "cpu", depth=5)
    assert plan["depth"] == 5 and all(p % 32 == 0 for p in plan["patch_size"])
    # a voxel budget: the CPU coarsening fits that budget instead
    plan = plan_segmentation(TASK03_LIKE, "cpu", voxel_budget=2**21)
    assert plan["voxel_budget"] == 2**21
    assert np.prod(np.array(TASK03_LIKE["size_mm_median"]) / plan["pixdim"]) == pytest.approx(2**21)


def test_plan_argument_errors(monkeypatch):
    with pytest.raises(ValueError, match="disagree"):
        plan_segmentation(TASK03_LIKE, "cpu", patch_size=(100, 100, 100), depth=3)
    with pytest.raises(ValueError, match="pixdim"):
        plan_segmentation(TASK03_LIKE, "cpu", pixdim=(1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="batch_size"):
        plan_segmentation(TASK03_LIKE, "cpu", batch_size=0)
    with pytest.raises(ValueError, match="hu_window"):
        plan_segmentation(TASK03_LIKE, "cpu", hu_window=(300, 100))
    with pytest.raises(ValueError, match="patch_size"):
        plan_segmentation(TASK03_LIKE, "cpu", patch_size=(96, 96))
    with pytest.raises(ValueError, match="device"):
        plan_segmentation(TASK03_LIKE, "meta")
    with pytest.raises(ValueError, match="size_mm_median"):
        plan_segmentation({k: v for k, v in TASK03_LIKE.items() if k != "size_mm_median"})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="voxel_budget"):
        plan_segmentation(TASK03_LIKE, "cuda")
    # planning for a GPU from a machine without one: give the budget
    assert plan_segmentation(TASK03_LIKE, "cuda", voxel_budget=128**3)["patch_size"] == [128, 128, 128]


def test_plan_logs_every_value_with_its_reason(caplog):
    with caplog.at_level(logging.INFO, logger="monai_implicit.data.fingerprint"):
        plan = plan_segmentation(TASK03_LIKE, "cpu", batch_size=4)
    lines = [r.getMessage() for r in caplog.records]
    for name in ("voxel_budget", "pixdim", "hu_window", "intensity_mean", "intensity_std", "patch_size", "depth",
                 "batch_size"):
        found = [line for line in lines if line.startswith(f"plan: {name} = ")]
        assert len(found) == 1, name
        assert plan["derived_from"]["reasons"][name] in found[0]
    assert "explicit override" in next(line for line in lines if line.startswith("plan: batch_size"))


def test_load_plan_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=PLAN_FILE):
        load_plan(tmp_path)
    (tmp_path / PLAN_FILE).write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_plan(tmp_path)
    (tmp_path / PLAN_FILE).write_text(json.dumps({"pixdim": [1, 1, 1]}))
    with pytest.raises(ValueError, match=r"lacks the keys \['hu_window'"):
        load_plan(tmp_path)


@pytest.mark.parametrize(
    "key,value,match",
    [("intensity_std", 0.0, "intensity_std"), ("hu_window", [250.0, -100.0], "low < high"),
     ("pixdim", [1.0, float("nan"), 2.0], "pixdim"), ("patch_size", [64, 0, 32], "patch_size"),
     ("batch_size", True, "batch_size"), ("depth", -1, "depth"), ("hu_window", [1.0], r"\[low, high\]")],
)
def test_load_plan_refuses_values_that_would_break_preprocessing(tmp_path, key, value, match):
    plan = {"pixdim": [2.0, 2.0, 3.0], "hu_window": [-100.0, 250.0], "intensity_mean": 100.0, "intensity_std": 50.0,
            "patch_size": [64, 64, 32], "batch_size": 2, "depth": 3}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    assert load_plan(tmp_path)["depth"] == 3
    plan[key] = value
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(ValueError, match=match) as err:
        load_plan(tmp_path)
    assert "plan.json" in str(err.value)
