"""Integration test: the app's ``start_server`` command with the hyperunet_lits bundle and synthetic studies.

The server is started as the README says (``python apps/label/cli.py start_server --app DIR``, no ``--host``), so
the test also checks that MONAI Label's working folders go to the app folder, not the packages nor ``apps/label``, that
it listens on 127.0.0.1 and that other web origins are not allowed by CORS.  The bundle is a temporary copy of
``bundles/hyperunet_lits`` with a tiny network and coarse voxel grid (see ``conftest.py``); its starting weights are
the initialised network saved as ``models/model.pt``.  The server runs with proxies pointing at a closed port (any
download would fail) and with a ``torchvision`` that fails on import (as one built for another torch does) and
records who tried to import it: the test also shows that the app works offline, that a broken torchvision does not
matter, and that nothing but MONAI's guarded ``optional_import`` probes (run by ``import monai`` itself) ever tries
to import it.  Hostile requests (a code-running train override, a server path as image) are answered 4xx before
anything runs or is read.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("monailabel") is None,
        reason="MONAI Label is not installed (pip install --no-deps monailabel==0.8.5 itk==5.4.7 pydicom-seg==0.4.1 "
        "&& pip install -e '.[label]')",
    ),
]

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "apps" / "label"
# folders MONAI Label must not write into when --app names another folder: the package and the app's source folder
SOURCE_FOLDERS = (REPO / "monai_implicit", APP_DIR, APP_DIR / "monai_implicit_label")
MONAI_LABEL_FOLDERS = ("bin", "lib", "logs", "model")
MODEL = "hyperunet_lits"
STARTUP_TIMEOUT = 300.0
TRAIN_TIMEOUT = 600.0

# a torchvision that fails the way one built for another torch does; it records who tried to import it
BROKEN_TORCHVISION = """import os, sys
frame = sys._getframe(1)
while frame is not None and frame.f_code.co_filename.startswith("<frozen"):
    frame = frame.f_back
with open(os.environ["MONAI_IMPLICIT_TORCHVISION_MARKER"], "a") as f:
    f.write(f"{frame.f_code.co_filename}:{frame.f_code.co_name}\\n" if frame else "?\\n")
raise RuntimeError("operator torchvision::nms does not exist (torchvision does not match this torch)")
"""
# MONAI probes optional packages when it is imported (monai.utils.optional_import catches any error): the only
# import attempts allowed
GUARDED_IMPORTER = os.path.join("monai", "utils", "module.py") + ":optional_import"


def _weights(path: Path) -> dict:
    """The floating-point tensors of a checkpoint's model."""
    import torch

    state = torch.load(str(path), map_location="cpu", weights_only=True)
    state = state.get("model", state)
    return {k: v.double() for k, v in state.items() if torch.is_floating_point(v)}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bundle_inference(bundle: Path, image: Path, out: Path) -> np.ndarray:
    """The bundle's own inference.json run by MONAI (unbaked network, bundle post-processing and writer)."""
    from monai.bundle import ConfigWorkflow

    workflow = ConfigWorkflow(
        config_file=str(bundle / "configs" / "inference.json"),
        workflow_type="infer",
        bundle_root=str(bundle),
        datalist=[{"image": str(image)}],
        output_dir=str(out),
        num_workers=0,
        device="$torch.device('cpu')",
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    (written,) = out.glob("*_seg.nii.gz")
    return np.asarray(nib.load(written).dataobj)


def _stop(process: subprocess.Popen) -> None:
    """Kill the server and everything it started (training processes), by PID."""
    import psutil

    try:
        parent = psutil.Process(process.pid)
        family = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=30)
    process.wait(timeout=30)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def _working_folders(folders) -> list[Path]:
    """MONAI Label's working folders found in ``folders``."""
    return [d / f for d in folders for f in MONAI_LABEL_FOLDERS if (d / f).exists()]


def _listening_addresses(pid: int, port: int) -> set[str]:
    import psutil

    family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    addresses = set()
    for process in family:
        for connection in process.net_connections(kind="inet"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
                addresses.add(connection.laddr.ip)
    return addresses


def test_server_infer_train_and_errors(tmp_path, tiny_bundle, lits_studies):
    import requests

    bundles = tmp_path / "bundles"
    bundle = tiny_bundle(bundles, MODEL)
    studies = lits_studies(tmp_path)
    app = tmp_path / "app"  # written by the start command
    source_folders_before = _working_folders(SOURCE_FOLDERS)
    blocked = tmp_path / "blocked"
    (blocked / "torchvision").mkdir(parents=True)
    (blocked / "torchvision" / "__init__.py").write_text(BROKEN_TORCHVISION)
    marker = tmp_path / "torchvision_imports.txt"

    port = _free_port()
    dead_proxy = "http://127.0.0.1:9"  # the discard port: nothing listens, any download fails at once
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(blocked), str(REPO), os.environ.get("PYTHONPATH", "")]),
        "MONAI_IMPLICIT_TORCHVISION_MARKER": str(marker),
        "MONAILABEL_PYEXE": sys.executable,
        "MONAI_LABEL_SESSION_PATH": str(tmp_path / "sessions"),
        "MONAI_LABEL_DATASTORE_AUTO_RELOAD": "false",
        "MONAI_LABEL_AUTO_UPDATE_SCORING": "false",
        "OMP_NUM_THREADS": "2",
        **{k: dead_proxy for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    env.pop("MONAI_LABEL_CORS_ORIGINS", None)  # MONAI Label 0.8.5 cannot start with it
    env.pop("MONAI_IMPLICIT_LABEL_ORIGINS", None)
    env.pop("MONAI_IMPLICIT_LABEL_HOSTS", None)  # the start command's default applies
    # the README's start command; no --host: it must default to loopback
    command = [sys.executable, str(APP_DIR / "cli.py"), "start_server", "--app", str(app),
               "--studies", str(studies), "--port", str(port), "--conf", "models", MODEL,
               "--conf", "bundles_dir", str(bundles)]
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    http = requests.Session()
    http.trust_env = False  # talk to the local server directly, not through the test's proxies

    def server_log() -> str:
        log.flush()
        return (tmp_path / "server.log").read_text()[-4000:]

    try:
        # --- the server comes up (bounded wait) ---
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert server.poll() is None, f"server exited with {server.returncode}:\n{server_log()}"
            try:
                info = http.get(f"{url}/info/", timeout=10)
                if info.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"server not up after {STARTUP_TIMEOUT} s:\n{server_log()}"
            time.sleep(1.0)

        # --- where it listens, what it wrote, which web pages may call it ---
        assert _listening_addresses(server.pid, port) == {"127.0.0.1"}
        assert (app / "main.py").is_file() and all((app / f).is_dir() for f in MONAI_LABEL_FOLDERS)
        assert _working_folders(SOURCE_FOLDERS) == source_folders_before
        evil = {"Origin": "http://evil.example"}
        preflight = http.options(
            f"{url}/infer/{MODEL}", headers={**evil, "Access-Control-Request-Method": "POST"}, timeout=10
        )
        assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
        # a "simple" cross-origin POST needs no preflight: it is refused before MONAI Label runs it
        forged = http.post(f"{url}/train/{MODEL}", headers=evil, timeout=10)
        assert forged.status_code == 403 and "evil.example" in forged.json()["detail"]
        assert http.get(f"{url}/train/", timeout=10).status_code == 404  # no train task was started
        assert http.get(f"{url}/info/", headers={"Origin": url}, timeout=10).status_code == 200  # same origin
        rebound = http.get(f"{url}/info/", headers={"Host": f"evil.example:{port}"}, timeout=10)
        assert rebound.status_code == 400  # DNS rebinding: a page's own host name is not this server's

        # --- GET /info/: models, labels, trainers ---
        info = info.json()
        assert set(info["models"]) == {MODEL} and set(info["trainers"]) == {MODEL}
        assert info["models"][MODEL]["labels"] == {"liver": 1, "tumour": 2}
        assert info["models"][MODEL]["type"] == "segmentation" and info["models"][MODEL]["dimension"] == 3
        assert info["labels"] == ["liver", "tumour"]
        assert info["datastore"]["total"] == 4 and info["datastore"]["completed"] == 3

        # --- POST /infer: a NIfTI label map in the image's grid, equal to the bundle's own inference ---
        image = studies / "liver_3.nii.gz"
        reply = http.post(f"{url}/infer/{MODEL}", params={"image": "liver_3", "output": "image"}, timeout=300)
        assert reply.status_code == 200, reply.text
        (tmp_path / "pred.nii.gz").write_bytes(reply.content)
        pred_img = nib.load(tmp_path / "pred.nii.gz")
        pred = np.asarray(pred_img.dataobj)
        ref_img = nib.load(image)
        assert pred.shape == ref_img.shape
        np.testing.assert_allclose(pred_img.affine, ref_img.affine, atol=1e-4)
        assert pred.dtype == np.uint8 and set(np.unique(pred)) <= {0, 1, 2}
        expected = _bundle_inference(bundle, image, tmp_path / "bundle_inference")
        assert expected.shape == pred.shape
        # baked and unbaked convolutions differ by float rounding only: argmax may flip at exact near-ties
        assert np.mean(expected == pred) > 0.99

        # --- unknown model or image: 4xx with a message ---
        for path, params, needles in [
            ("/infer/no_such_model", {"image": "liver_3"}, ("no_such_model", MODEL)),
            (f"/infer/{MODEL}", {"image": "no_such_image"}, ("no_such_image", "liver_3")),
            ("/train/no_such_model", None, ("no_such_model", MODEL)),
        ]:
            bad = http.post(f"{url}{path}", params=params, timeout=60)
            assert 400 <= bad.status_code < 500, (path, bad.status_code, bad.text)
            assert all(n in bad.json()["detail"] for n in needles), bad.json()  # names the input and the choices

        # --- a server path as image: 404, the same as for a path that does not exist; nothing segmented ---
        outside = next((tmp_path / "synthetic").rglob("*.nii.gz"))  # an existing NIfTI outside the studies
        missing = tmp_path / "synthetic" / "missing.nii.gz"
        details = []
        for path in (outside, missing):
            for query, form in (({"image": str(path)}, None), ({"image": "liver_3"}, {"params": json.dumps(
                    {"image": str(path)})})):  # the path in the query, or slipped in through params
                bad = http.post(f"{url}/infer/{MODEL}", params={**query, "output": "image"}, data=form, timeout=60)
                assert bad.status_code == 404, (path, form, bad.status_code, bad.headers, bad.content[:200])
                assert bad.headers["content-type"] == "application/json"
                details.append(bad.json()["detail"].replace(str(path), "PATH"))
        assert details[:2] == details[2:]  # an existing file and a missing one are not told apart

        # --- an uploaded file is segmented (MONAI Label's POST /infer with a file) ---
        reply = http.post(f"{url}/infer/{MODEL}", params={"output": "image"},
                          files={"file": ("upload.nii.gz", image.read_bytes())}, timeout=300)
        assert reply.status_code == 200, reply.text
        (tmp_path / "upload_pred.nii.gz").write_bytes(reply.content)
        np.testing.assert_array_equal(np.asarray(nib.load(tmp_path / "upload_pred.nii.gz").dataobj), pred)

        # --- a hostile train request: 422 naming the id; no task, nothing written, nothing run ---
        pwned = tmp_path / "PWNED"
        bundle_files = _files(bundle)
        hostile = {"max_epochs": 1, "overrides": {"network_def": {"args": ["touch", str(pwned)]},
                                                  "network_def#_target_": "subprocess.run"}}
        bad = http.post(f"{url}/train/{MODEL}", json=hostile, timeout=60)
        assert bad.status_code == 422, (bad.status_code, bad.text)
        assert "network_def" in bad.json()["detail"]
        bad = http.post(f"{url}/train/{MODEL}", json={"overrides": {"ckpt_dir": str(tmp_path)}}, timeout=60)
        assert bad.status_code == 422 and "ckpt_dir" in bad.json()["detail"], bad.text
        assert http.get(f"{url}/train/", timeout=30).status_code == 404  # "No Train Tasks Found"
        time.sleep(2.0)  # a background task, had one started, would have written by now
        assert _files(bundle) == bundle_files and not pwned.exists()

        # --- POST /train: one epoch with the bundle's train.json, the served checkpoint changes ---
        checkpoint = bundle / "models" / "model.pt"
        before = _sha256(checkpoint)
        served = _weights(checkpoint)
        request = {"max_epochs": 1, "overrides": {"num_workers": 0, "num_samples": 1, "sw_batch_size": 8}}
        reply = http.post(f"{url}/train/{MODEL}", json=request, timeout=60)
        assert reply.status_code == 200, reply.text
        task_id = reply.json()["id"]
        deadline = time.monotonic() + TRAIN_TIMEOUT
        while True:
            task = http.get(f"{url}/train/", timeout=30).json()
            assert task["id"] == task_id
            if task["status"] not in ("SUBMITTED", "RUNNING"):
                break
            assert time.monotonic() < deadline, f"training still running after {TRAIN_TIMEOUT} s: {task['details']}"
            time.sleep(2.0)
        details = "\n".join(task["details"])
        assert task["status"] == "DONE", details
        assert (bundle / "models" / "checkpoint_epoch=1.pt").is_file(), details
        after = _sha256(checkpoint)
        assert after != before
        assert '"checkpoint_updated": true' in details
        # fine-tuned from the served weights, not trained from a fresh initialisation: two iterations move the
        # weights by a few percent, while an independent initialisation differs by about sqrt(2) of their norm
        # (MONAI Label keeps only the last lines of the child's log, so the "Restored" line cannot be relied on)
        tuned = _weights(checkpoint)
        assert set(tuned) == set(served)
        change = sum(float((tuned[k] - served[k]).pow(2).sum()) for k in served) ** 0.5
        assert change < 0.3 * sum(float(v.pow(2).sum()) for v in served.values()) ** 0.5, details
        assert http.get(f"{url}/info/", timeout=30).json()["train_stats"][MODEL]["epoch"] == 1

        # --- the next inference uses the new weights ---
        reply = http.post(f"{url}/infer/{MODEL}", params={"image": "liver_3", "output": "json"}, timeout=300)
        assert reply.status_code == 200, reply.text
        assert reply.json()["checkpoint"]["checksum"] == f"SHA256:{after}"
        assert reply.json()["label_names"] == {"liver": 1, "tumour": 2}

        importers = set(marker.read_text().splitlines()) if marker.exists() else set()
        assert importers, "the broken torchvision was not on the server's path: the check below proves nothing"
        unguarded = {i for i in importers if not i.endswith(GUARDED_IMPORTER)}
        assert not unguarded, f"torchvision imported outside MONAI's optional_import: {unguarded}"
    finally:
        _stop(server)
        log.close()
    assert server.returncode is not None
