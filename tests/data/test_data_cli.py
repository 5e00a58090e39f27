"""``python -m monai_implicit.data``: every subcommand writes exactly what the library function writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_implicit.data import make_la_like_dataset, make_phantom_dataset, make_wmh_like_dataset
from monai_implicit.data.__main__ import main
from monai_implicit.data.rf import make_rf_dataset
from monai_implicit.data.wmh import wmh_datalist


def _same_dataset(cli_json: Path, ref_json: Path) -> None:
    """Same datalist (paths relative to each dataset) and the same voxels/samples in every listed file."""
    cli, ref = json.loads(cli_json.read_text()), json.loads(ref_json.read_text())
    assert cli == ref
    files = []
    for section in ("training", "validation", "test"):
        for item in ref.get(section, []):
            for value in (item.values() if isinstance(item, dict) else [item]):
                for name in value if isinstance(value, list) else [value]:
                    if isinstance(name, str) and (name.endswith(".nii.gz") or name.endswith(".npy")):
                        files.append(name)
    assert files
    for name in files:
        a, b = cli_json.parent / name, ref_json.parent / name
        if name.endswith(".npy"):
            assert np.array_equal(np.load(a), np.load(b))
        else:
            ia, ib = nib.load(a), nib.load(b)
            assert np.array_equal(np.asarray(ia.dataobj), np.asarray(ib.dataobj)) and np.allclose(ia.affine, ib.affine)


def test_wmh_and_its_datalist(tmp_path):
    assert main(["wmh", "--out", str(tmp_path / "cli"), "--num-cases", "2", "--seed", "3",
                 "--fov-mm", "96", "112", "24"]) == 0
    ref = make_wmh_like_dataset(tmp_path / "ref", num_cases=2, seed=3, fov_mm=(96.0, 112.0, 24.0))
    _same_dataset(tmp_path / "cli" / "dataset.json", ref)
    out = tmp_path / "list.json"
    assert main(["wmh-datalist", "--wmh-dir", str(tmp_path / "cli"), "--out", str(out)]) == 0
    expected = json.loads(wmh_datalist(tmp_path / "cli", tmp_path / "expected.json").read_text())
    assert json.loads(out.read_text()) == expected
    assert {tuple(Path(p).name for p in e["image"]) for e in expected["training"]} == {("T1.nii.gz", "FLAIR.nii.gz")}


def test_heart_brain_rf(tmp_path):
    assert main(["heart", "--out", str(tmp_path / "h"), "--num-cases", "1", "--num-test", "1",
                 "--fov-mm", "80", "80", "40"]) == 0
    _same_dataset(tmp_path / "h" / "dataset.json",
                  make_la_like_dataset(tmp_path / "h_ref", num_cases=1, num_test=1, fov_mm=(80.0, 80.0, 40.0)))
    assert main(["brain", "--out", str(tmp_path / "b"), "--num-images", "2", "--num-test", "1",
                 "--shape", "32", "48"]) == 0
    _same_dataset(tmp_path / "b" / "dataset.json",
                  make_phantom_dataset(tmp_path / "b_ref", num_images=2, num_test=1, shape=(32, 48)))
    assert nib.load(sorted((tmp_path / "b").rglob("*.nii.gz"))[0]).shape[:2] == (32, 48)
    assert main(["rf", "--out", str(tmp_path / "r"), "--num-lines", "2", "--num-validation", "1",
                 "--length", "256"]) == 0
    _same_dataset(tmp_path / "r" / "dataset.json",
                  make_rf_dataset(tmp_path / "r_ref", num_lines=2, num_validation=1, length=256))


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["wmh-datalist", "--wmh-dir", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["brain", "--out", str(tmp_path / "b"), "--shape", "3", "4", "5"]) == 2
    assert capsys.readouterr().err.startswith("error:")
    rf = ["rf", "--out", str(tmp_path / "r"), "--num-lines", "1", "--num-validation", "0", "--length", "128"]
    assert main(rf) == 0
    assert main(rf) == 2
    assert "exist" in capsys.readouterr().err  # an existing dataset is not silently overwritten
    with pytest.raises(SystemExit):
        main(["nope"])


def test_module_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "monai_implicit.data", "rf", "--out", str(tmp_path / "r"),
                           "--num-lines", "1", "--num-validation", "0", "--length", "128"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == tmp_path / "r" / "dataset.json"
