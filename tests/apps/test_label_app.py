"""The MONAI Label app's request handling, in-process (needs MONAI Label; no server).

Hostile train requests are sent through MONAI Label's own ``AsyncTask.run`` (what ``POST /train/<model>`` calls) with
the app's guard installed, and must be refused before any background task exists.  Inference requests go through
the app's ``infer`` as MONAI Label's ``/infer`` endpoint calls it; expectations are independent of the app: image
shapes from nibabel, voxel counts from the arrays written, device names from torch.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(importlib.util.find_spec("monailabel") is None, reason="MONAI Label is not installed")

LITS = "hyperunet_lits"
WMH = "nerdunet_wmh"


def _nifti(path: Path, shape, channels: int = 1, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    data = rng.random((*shape, channels) if channels > 1 else shape).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 3.0, 1.0])), path)
    return path


@pytest.fixture
def make_app(tmp_path, monkeypatch):
    """``make_app(bundles_dir, studies, **conf)``: the app as MONAI Label creates it (``app_instance``)."""
    from monailabel.config import settings
    from monailabel.interfaces.utils.app import app_instance, clear_cache
    from monailabel.utils.async_tasks import task as task_module
    from monailabel.utils.async_tasks.task import AsyncTask

    monkeypatch.setattr(settings, "MONAI_LABEL_DATASTORE_AUTO_RELOAD", False)  # no file watcher thread
    monkeypatch.setattr(settings, "MONAI_LABEL_SESSION_PATH", str(tmp_path / "sessions"))
    monkeypatch.setattr(AsyncTask, "run", AsyncTask.__dict__["run"])  # undo the guard after the test
    # a request that got through would start a training process: record it instead
    started: list = []
    monkeypatch.setattr(task_module, "run_background_task", lambda request, method: started.append(request) or {})
    app_dir = tmp_path / "app"

    def make(bundles_dir: Path, studies: Path, **conf: str):
        from monai_implicit_label.cli import init_app_dir

        init_app_dir(app_dir)
        monkeypatch.setattr(settings, "MONAI_LABEL_APP_DIR", str(app_dir))
        monkeypatch.setattr(settings, "MONAI_LABEL_STUDIES", str(studies))
        clear_cache()
        app = app_instance(str(app_dir), str(studies), {"bundles_dir": str(bundles_dir), **conf})
        app.started_tasks = started
        return app

    yield make
    clear_cache()


# ------------------------------------------------------------------------------------------------ training
HOSTILE_TRAIN = [
    # replace a component's dict by keys without "_", then give it an importable target in the same request
    ({"overrides": {"network_def": {"args": ["touch", "PWNED"]}, "network_def#_target_": "subprocess.run"}},
     "network_def"),
    ({"overrides": {"train#trainer#_target_": "os.system"}}, "train#trainer#_target_"),
    ({"overrides": {"train#handlers#0#_disabled_": True}}, "train#handlers#0#_disabled_"),
    ({"overrides": {"_requires_": "$print(1)"}}, "_requires_"),
    ({"overrides": {"ckpt_dir": "/tmp"}}, "ckpt_dir"),
    ({"overrides": {"log_dir": "/tmp"}}, "log_dir"),
    ({"overrides": {"dataset_dir": "/etc"}}, "dataset_dir"),
    ({"overrides": {"bundle_root": "/"}}, "bundle_root"),
    ({"overrides": {"num_workers": "$__import__('os').system('touch PWNED')"}}, "num_workers"),
    ({"overrides": {"num_samples": "@epochs"}}, "num_samples"),
    ({"overrides": {"batch_size": "%train#trainer"}}, "batch_size"),
    ({"overrides": {"patch_size": [8, 8, 8]}}, "patch_size"),
    ({"overrides": {"num_workers": 10**6}}, "num_workers"),
    ({"overrides": {"learning_rate": -1.0}}, "learning_rate"),
    ({"overrides": {"num_workers": True}}, "num_workers"),
    ({"overrides": ["num_workers", 0]}, "overrides"),
    ({"max_epochs": 0}, "max_epochs"),
    ({"max_epochs": 10**9}, "max_epochs"),
    ({"max_epochs": True}, "max_epochs"),
    ({"val_interval": -1}, "val_interval"),
    ({"val_split": 1.5}, "val_split"),
    ({"dataset": "/etc"}, "dataset"),
    ({"device": "cuda;rm -rf /"}, "device"),
    ({"gpus": "0;rm"}, "gpus"),
    ({"resume": "maybe"}, "resume"),
]


@pytest.mark.parametrize("params, name", HOSTILE_TRAIN, ids=[str(i) for i in range(len(HOSTILE_TRAIN))])
def test_hostile_train_request_is_refused_before_any_task(tmp_path, make_app, tiny_bundle, lits_studies, params, name):
    from fastapi import HTTPException
    from monailabel.utils.async_tasks import utils as task_utils
    from monailabel.utils.async_tasks.task import AsyncTask

    from monai_implicit_label.main import guard_train_requests

    bundle = tiny_bundle(tmp_path / "bundles", LITS)
    app = make_app(tmp_path / "bundles", lits_studies(tmp_path))
    guard_train_requests()
    before = sorted(p.relative_to(bundle) for p in bundle.rglob("*"))
    tasks_before = list(task_utils.background_tasks.get("train", []))
    with pytest.raises(HTTPException) as err:
        # exactly what POST /train/<model> runs (monailabel.endpoints.train.run_model)
        AsyncTask.run("train", request={"model": LITS}, params=params, force_sync=False, enqueue=False)
    assert 400 <= err.value.status_code < 500
    assert name in err.value.detail, err.value.detail
    # no side effect: no task, no overrides file or datalist, no process, nothing written in the bundle
    assert app.started_tasks == []
    assert list(task_utils.background_tasks.get("train", [])) == tasks_before
    assert not task_utils.background_processes.get("train")
    assert sorted(p.relative_to(bundle) for p in bundle.rglob("*")) == before
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()
    # the app's own train (MONAI Label's synchronous path, and the training process) refuses it as well
    with pytest.raises(HTTPException) as err:
        app.train({"model": LITS, **params})
    assert name in err.value.detail


def test_guard_checks_the_merged_request_and_passes_others_on(
    tmp_path, make_app, tiny_bundle, lits_studies, monkeypatch
):
    from fastapi import HTTPException
    from monailabel.utils.async_tasks.task import AsyncTask

    from monai_implicit_label.main import guard_train_requests

    tiny_bundle(tmp_path / "bundles", LITS)
    app = make_app(tmp_path / "bundles", lits_studies(tmp_path))
    calls = []
    monkeypatch.setattr(AsyncTask, "run", staticmethod(lambda *args, **kwargs: calls.append((args, kwargs)) or "ok"))
    guard_train_requests()
    guard_train_requests()  # idempotent: one check per request
    good = {"max_epochs": 2, "overrides": {"num_workers": 0, "learning_rate": 1e-4}}
    assert AsyncTask.run("train", request={"model": LITS}, params=good) == "ok"
    assert len(calls) == 1 and calls[0][0][2] == good
    # the deprecated POST /train/ passes {"model": m, **params[m]} and params itself (merged over it)
    with pytest.raises(HTTPException, match="ckpt_dir"):
        AsyncTask.run("train", request={"model": LITS}, params={"overrides": {"ckpt_dir": "/tmp"}})
    with pytest.raises(HTTPException) as err:
        AsyncTask.run("train", request={"model": "no_such_model"}, params={})
    assert err.value.status_code == 404 and LITS in err.value.detail
    # other background tasks are not train requests
    assert AsyncTask.run("scoring", request={"method": "x"}, params={}) == "ok"
    assert len(calls) == 2
    options = app.check_train_request({"model": LITS, **good})
    assert options.max_epochs == 2 and options.overrides == {"num_workers": 0, "learning_rate": 1e-4}


def test_train_request_needs_labelled_images(tmp_path, make_app, tiny_bundle):
    from fastapi import HTTPException

    tiny_bundle(tmp_path / "bundles", LITS)
    studies = tmp_path / "studies"
    studies.mkdir()
    _nifti(studies / "a.nii.gz", (8, 8, 8))
    app = make_app(tmp_path / "bundles", studies)
    with pytest.raises(HTTPException) as err:
        app.check_train_request({"model": LITS})
    assert err.value.status_code == 422 and "labelled image" in err.value.detail
    assert app.check_train_request({"model": LITS, "dataset": "bundle"}).dataset == "bundle"


# ------------------------------------------------------------------------------------------------ inference
def _detail(app, image: str) -> tuple[int, str]:
    from fastapi import HTTPException

    with pytest.raises(HTTPException) as err:
        app.infer({"model": LITS, "image": image})
    return err.value.status_code, err.value.detail


def test_infer_takes_datastore_ids_and_uploads_only(tmp_path, make_app, tiny_bundle, lits_studies):
    tiny_bundle(tmp_path / "bundles", LITS)
    studies = lits_studies(tmp_path)
    app = make_app(tmp_path / "bundles", studies)
    outside = next((tmp_path / "synthetic").rglob("*.nii.gz"))  # an existing NIfTI outside the datastore
    missing = tmp_path / "synthetic" / "missing.nii.gz"
    status, detail = _detail(app, str(outside))
    status_missing, detail_missing = _detail(app, str(missing))
    assert status == status_missing == 404
    # the same answer whether the path exists or not (the message only echoes the request)
    assert detail.replace(str(outside), "X") == detail_missing.replace(str(missing), "X")
    for sneaky in (os.path.relpath(outside), f"../synthetic/{outside.name}", str(studies / "liver_3.nii.gz")):
        assert _detail(app, sneaky)[0] == 404
    # a link with an upload's name in the temporary folder, pointing outside: not an upload
    link = Path(tempfile.gettempdir()) / f"tmp{os.getpid() % 10**8:08d}.nii.gz"
    link.symlink_to(outside)
    try:
        assert _detail(app, str(link))[0] == 404
    finally:
        link.unlink()

    # MONAI Label's whole-slide route would pass a .tif server path straight to the task
    from fastapi import HTTPException

    with pytest.raises(HTTPException) as err:
        app.infer_wsi({"model": LITS, "image": str(outside)})
    assert err.value.status_code == 400 and "/infer/<model>" in err.value.detail

    result = app.infer({"model": LITS, "image": "liver_3"})  # a datastore id
    expected_shape = nib.load(studies / "liver_3.nii.gz").shape
    assert nib.load(result["file"]).shape == expected_shape
    os.remove(result["file"])
    # an uploaded file, as MONAI Label's /infer writes it (NamedTemporaryFile in the temporary folder)
    with tempfile.NamedTemporaryFile(suffix=".nii.gz") as upload:
        upload.write((studies / "liver_3.nii.gz").read_bytes())
        upload.flush()
        result = app.infer({"model": LITS, "image": upload.name})
    assert nib.load(result["file"]).shape == expected_shape
    os.remove(result["file"])
    # a session image (MONAI Label's /session upload) lies under the session store
    session_image = Path(app.sessions().store_path) / "a-session-id" / "image.nii.gz"
    session_image.parent.mkdir(parents=True)
    session_image.write_bytes((studies / "liver_3.nii.gz").read_bytes())
    result = app.infer({"model": LITS, "image": str(session_image)})
    assert nib.load(result["file"]).shape == expected_shape
    os.remove(result["file"])
    # the package source is not an app folder: MONAI Label would write its working folders into it
    import monai_implicit
    import monai_implicit_label
    from monai_implicit_label.main import MonaiImplicitApp

    bundles = tmp_path / "bundles"
    for package in (monai_implicit, monai_implicit_label):
        with pytest.raises(ValueError, match="init DIR"):
            MonaiImplicitApp(str(Path(package.__file__).parent), str(studies), {"bundles_dir": str(bundles)})


def test_infer_refuses_images_over_max_voxels(tmp_path, make_app, tiny_bundle):
    tiny_bundle(tmp_path / "bundles", LITS)
    studies = tmp_path / "studies"
    studies.mkdir()
    _nifti(studies / "small.nii.gz", (10, 10, 10))
    _nifti(studies / "big.nii.gz", (10, 10, 11))
    app = make_app(tmp_path / "bundles", studies, max_voxels="1000")
    status, detail = _detail(app, "big")
    assert status == 413 and "1100" in detail and "1000" in detail and "max_voxels" in detail
    from fastapi import HTTPException

    with pytest.raises(HTTPException) as err:  # an in-process array is held to the same limit
        app.infer({"model": LITS, "image": np.zeros((10, 10, 11), np.float32)})
    assert err.value.status_code == 413 and "1100" in err.value.detail
    result = app.infer({"model": LITS, "image": "small"})  # at the limit: served
    assert nib.load(result["file"]).shape == (10, 10, 10)
    os.remove(result["file"])
    from monai_implicit_label.main import MonaiImplicitApp

    with pytest.raises(ValueError, match="max_voxels"):
        MonaiImplicitApp(str(tmp_path / "app"), str(studies), {"bundles_dir": str(tmp_path / "bundles"),
                                                                 "max_voxels": "0"})


def test_multi_channel_bundle_needs_every_modality(tmp_path, make_app, tiny_bundle):
    from fastapi import HTTPException

    tiny_bundle(tmp_path / "bundles", WMH)
    studies = tmp_path / "studies"
    studies.mkdir()
    shape = (20, 24, 3)
    _nifti(studies / "sub01.nii.gz", shape, seed=1)
    _nifti(studies / "sub01_FLAIR.nii.gz", shape, seed=2)
    _nifti(studies / "sub02.nii.gz", shape, seed=3)  # a one-image study
    _nifti(studies / "both.nii.gz", shape, channels=2, seed=4)  # T1 and FLAIR in one file
    app = make_app(tmp_path / "bundles", studies)
    with pytest.raises(HTTPException) as err:
        app.infer({"model": WMH, "image": "sub02"})
    assert err.value.status_code == 422
    assert all(n in err.value.detail for n in ("T1", "FLAIR", "'sub02_FLAIR'")), err.value.detail
    for image in ("sub01", "both"):
        # the client cannot point the other channel elsewhere: the app sets it from the datastore
        result = app.infer({"model": WMH, "image": image, "image_channels": ["/etc/passwd"]})
        label = nib.load(result["file"])
        assert label.shape == shape and set(np.unique(np.asarray(label.dataobj))) <= {0, 1}
        os.remove(result["file"])


# ------------------------------------------------------------------------------------------------ infer task
def test_normalize_device():
    from monai_implicit_label.infer import normalize_device

    assert normalize_device("cpu") == normalize_device("cpu:0") == torch.device("cpu")
    for bad in ("foo", "meta", "cuda;rm", ""):
        with pytest.raises(ValueError, match="device"):
            normalize_device(bad)
    if torch.cuda.is_available():
        current = torch.device("cuda", torch.cuda.current_device())
        assert normalize_device("cuda") == normalize_device(f"cuda:{current.index}") == current
        with pytest.raises(ValueError, match="does not exist"):
            normalize_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(ValueError, match="CUDA is not available"):
            normalize_device("cuda")


def test_predictor_cache_is_a_bounded_lru(tmp_path, tiny_bundle, monkeypatch):
    import monai_implicit.bundles
    from monai_implicit_label.bundles import read_segmentation_bundle
    from monai_implicit_label.infer import BundleSegmentationInfer

    bundle = read_segmentation_bundle(tiny_bundle(tmp_path / "bundles", LITS))
    loads = []
    monkeypatch.setattr(monai_implicit.bundles, "load", lambda root, device: loads.append(str(device)) or object())
    task = BundleSegmentationInfer(bundle, cache_size=2)
    # then four pretend GPUs (the loader above never touches them); "cuda" is the current one, cuda:1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    first = task.predictor("cuda")
    assert task.predictor("cuda:1") is first and task.predictor(torch.device("cuda", 1)) is first
    assert loads == ["cuda:1"]
    task.predictor("cpu")
    task.predictor("cpu:0")
    assert loads == ["cuda:1", "cpu"] and task.cached_devices == ["cuda:1", "cpu"]
    task.predictor("cuda:1")  # used again: now the most recent
    for device in ("cuda:0", "cuda:2", "cuda:3", "cuda:0"):
        task.predictor(device)
    assert len(task.cached_devices) == 2 and task.cached_devices == ["cuda:3", "cuda:0"]
    assert loads == ["cuda:1", "cpu", "cuda:0", "cuda:2", "cuda:3", "cuda:0"]
    # a new checkpoint on disk is loaded again, without growing the cache
    checkpoint = bundle.checkpoint
    checkpoint.write_bytes(checkpoint.read_bytes() + b"\0")
    task.predictor("cuda:0")
    assert loads[-1] == "cuda:0" and len(loads) == 7 and len(task.cached_devices) == 2
    with pytest.raises(ValueError, match="does not exist"):
        task.predictor("cuda:9")
    with pytest.raises(ValueError, match="positive integer"):
        BundleSegmentationInfer(bundle, cache_size=0)


def test_origin_guard():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from monai_implicit_label.server import guarded_app

    calls = []

    async def endpoint(request):
        calls.append(request.method)
        return PlainTextResponse("ran")

    inner = Starlette(routes=[Route("/train", endpoint, methods=["GET", "POST"])])
    app = guarded_app(inner, origins=["http://localhost:3000/"], hosts=["127.0.0.1", "localhost"])
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    assert client.post("/train").text == "ran"  # no Origin: 3D Slicer, scripts
    assert client.post("/train", headers={"Origin": "http://127.0.0.1:8000"}).status_code == 200  # its own pages
    assert client.post("/train", headers={"Origin": "http://localhost:3000"}).status_code == 200  # listed
    forged = client.post("/train", headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403 and "evil.example" in forged.json()["detail"]
    assert client.post("/train", headers={"Origin": "http://127.0.0.1:8001"}).status_code == 403  # another port
    assert client.get("/train", headers={"Host": "evil.example:8000"}).status_code == 400  # DNS rebinding
    assert calls == ["POST", "POST", "POST"]  # refused requests never reached the application
