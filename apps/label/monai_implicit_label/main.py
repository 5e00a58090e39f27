"""MONAI Label app serving the segmentation bundles of ``monai_implicit``.

The app folder is ``apps/label`` of the repository (its ``main.py`` exports :class:`MonaiImplicitApp`); the app
uses the installed ``monai_implicit``, which never imports the app.  Start it on a folder of NIfTI studies (labels
go to ``<studies>/labels/final``); the ``--app`` folder receives MONAI Label's working folders
(``bin/ lib/ logs/ model/``) and must be outside the packages::

    python apps/label/cli.py start_server --studies /data/ct --conf models hyperunet_lits \
        [--app ~/monai_implicit_app] [--conf bundles_dir ~/monai_implicit/bundles]

(``start_server`` serves ``apps/label`` unless ``--app`` names another folder, whose ``main.py`` it writes when it
has none; it serves on 127.0.0.1 unless ``--host`` says otherwise, behind a guard against requests from other web
origins (:mod:`monai_implicit_label.server`); every other option goes to ``monailabel start_server``.
``python apps/label/cli.py init DIR`` only writes the folder, for a plain ``monailabel start_server --app DIR``,
which has neither default; ``monailabel start_server --app apps/label`` serves the app folder itself.)

App options (``--conf KEY VALUE``):
    ``models``: comma-separated bundle names, or ``all`` (default): every segmentation bundle in ``bundles_dir``;
    ``bundles_dir``: the folder holding the bundles (default: ``bundles/`` of the repository around
    ``apps/label``; needed when the app folder is not in a source checkout);
    ``epochs``: the default ``max_epochs`` of the train tasks shown to clients (default 10);
    ``max_voxels``: the largest image accepted for inference, in voxel values per file (default 512 * 512 * 1024).

Every bundle becomes an infer task (``/infer/<name>``, labels from the bundle's ``channel_def``) and, when it has a
``configs/train.json``, a train task (``/train/<name>``) that runs that config.  The app never downloads (no model
zoo, no pre-trained weights) and does not use MONAI Label's bundle tasks, which need torchvision: nothing but
MONAI's own guarded probes at ``import monai`` tries to import torchvision, so a missing or broken (CPU/CUDA
mismatched) torchvision does not matter.  MONAI Label loads ``apps/label/main.py`` by path (again for every
background task); the class lives here, in a module imported once, so every load serves the same class.

Security (what a client of the server can and cannot do):
    * images: ``/infer`` takes datastore image ids only (resolved by ``datastore.get_image_uri``), or a file the
      client uploads with the request (or a MONAI Label session image).  A server path is refused with the same 404
      whether or not it exists.  Images larger than ``max_voxels`` are refused from their header (HTTP 413).
      A multi-channel bundle (``nerdunet_wmh``: T1 + FLAIR) reads its other channels from the datastore as
      ``<id>_<channel name>`` (``sub01`` + ``sub01_FLAIR``) or from one multi-channel file; otherwise HTTP 422
      says what is missing.
    * training: request options are checked before MONAI Label starts the background task (HTTP 422 naming the
      option, nothing written, no process started); ``overrides`` may set only the ids of
      :data:`~monai_implicit_label.training.ALLOWED_OVERRIDES` (numbers and switches within bounds) that the
      bundle's ``train.json`` defines: no components, nested ids, paths, strings or expressions.
    * the server itself: MONAI Label has no authentication unless ``MONAI_LABEL_AUTH_ENABLE=true`` (with a
      Keycloak realm, ``MONAI_LABEL_AUTH_REALM_URI``); anyone who can connect can annotate, train and read the
      datastore.  Keep it on 127.0.0.1 (the ``start_server`` default) or enable authentication.  MONAI Label
      allows every web origin (CORS ``*`` with credentials); ``start_server`` serves it behind a guard that refuses
      requests from other web origins (``MONAI_IMPLICIT_LABEL_ORIGINS`` lists exceptions) and, on loopback, other
      Host names (``MONAI_IMPLICIT_LABEL_HOSTS``).  MONAI Label's ``MONAI_LABEL_CORS_ORIGINS`` makes MONAI Label
      0.8.5 fail at start and is refused by ``start_server``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from fastapi import HTTPException
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.train import TrainTask

import monai_implicit
from monai_implicit_label.bundles import select_bundles
from monai_implicit_label.cli import check_app_folder
from monai_implicit_label.infer import DEFAULT_MAX_VOXELS, BundleSegmentationInfer, InferInputError
from monai_implicit_label.train import BundleTrain, TrainOptions

__all__ = ["MonaiImplicitApp", "guard_train_requests"]

logger = logging.getLogger(__name__)

#: names of the temporary files MONAI Label's ``/infer`` writes an uploaded image to (``NamedTemporaryFile``)
_UPLOAD_NAME = re.compile(r"^tmp[a-z0-9_]{8}(\.[A-Za-z0-9]+)+$")


def _positive_int_conf(conf: dict[str, str], key: str, default: int) -> int:
    value = conf.get(key, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise ValueError(f"--conf {key} must be a positive integer, got {value!r}.")
    return number


class MonaiImplicitApp(MONAILabelApp):
    """The MONAI Label app: one infer and one train task per selected bundle.

    Args:
        app_dir: the app folder (MONAI Label's ``--app``); not inside a package (MONAI Label writes into it).
        studies: the datastore (``--studies``): a local folder, or a DICOMweb URL.
        conf: ``--conf`` options (see the module docstring).

    Raises:
        ValueError: ``app_dir`` is inside a package (see :func:`~monai_implicit_label.cli.check_app_folder`),
            ``models`` names a folder that is not a servable bundle, or ``epochs`` / ``max_voxels`` is not a
            positive integer (the server then refuses to start, with the reason in its log).
        FileNotFoundError: ``bundles_dir`` is not a folder.
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        check_app_folder(app_dir)
        conf = dict(conf or {})
        self.bundles = select_bundles(conf.get("bundles_dir") or None, conf.get("models", "all"))
        self.default_epochs = _positive_int_conf(conf, "epochs", 10)
        self.max_voxels = _positive_int_conf(conf, "max_voxels", DEFAULT_MAX_VOXELS)
        logger.info(f"serving bundles: {[(b.name, str(b.root)) for b in self.bundles]}")
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="monai_implicit",
            description="Implicit-kernel segmentation networks (monai_implicit bundles)",
            version=monai_implicit.__version__,
        )

    def init_infers(self) -> dict[str, InferTask]:
        return {b.name: BundleSegmentationInfer(b, max_voxels=self.max_voxels) for b in self.bundles}

    def init_trainers(self) -> dict[str, TrainTask]:
        return {b.name: BundleTrain(b, self.default_epochs) for b in self.bundles if b.train_config is not None}

    def on_init_complete(self) -> None:
        super().on_init_complete()
        guard_train_requests()  # the server is up: check train requests before MONAI Label starts a task

    def _known_model(self, model: Optional[str], tasks: dict[str, Any], what: str) -> None:
        # MONAI Label answers an unknown model with a bare 500; clients deserve a 404 that names the choices
        if not model or model not in tasks:
            raise HTTPException(status_code=404, detail=f"unknown {what} model {model!r}; available: {sorted(tasks)}.")

    # ---------------------------------------------------------------- training
    def check_train_request(self, request: dict[str, Any]) -> TrainOptions:
        """Check a train request as MONAI Label will pass it to the task; no side effect.

        Raises:
            HTTPException: 404 for an unknown model, 422 naming the refused option or override.
        """
        self._known_model(request.get("model"), self._trainers, "training")
        task = self._trainers[request["model"]]
        try:
            options = task.check_request(request)
            if options.dataset == "datastore":
                task.training_datalist(self.datastore(), options.val_split)  # enough labelled images (read only)
        except (TypeError, ValueError) as e:
            raise HTTPException(status_code=422, detail=str(e)) from None
        return options

    def train(self, request: dict[str, Any]) -> dict[str, Any]:
        self.check_train_request(request)
        return super().train(request)

    # ---------------------------------------------------------------- inference
    def _uploaded_file(self, image: str) -> bool:
        """Whether ``image`` is a file MONAI Label wrote for a client: an ``/infer`` upload or a session image.

        An upload lies directly in the temporary folder with a ``NamedTemporaryFile`` name; a session image under
        the session store.  Either must be a regular file (not a link) owned by the server's user.
        """
        path = Path(image)
        if not path.is_absolute():
            return False
        try:
            info = os.lstat(path)
        except OSError:
            return False
        if not stat.S_ISREG(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
            return False
        real = Path(os.path.realpath(path))
        if real.parent == Path(os.path.realpath(tempfile.gettempdir())) and _UPLOAD_NAME.match(real.name):
            return True
        sessions = self.sessions()
        store = Path(os.path.realpath(sessions.store_path)) if sessions is not None else None
        return store is not None and store in real.parents

    def infer(self, request: dict[str, Any], datastore: Any = None) -> dict[str, Any]:
        """Check the request (model, image, size, modalities) and run MONAI Label's inference.

        ``request["image"]`` is a datastore id or a file MONAI Label wrote for this request (upload, session);
        anything else, including an existing server path, is a 404 with the same message as a missing id.

        Raises:
            HTTPException: 404 unknown model or image, 409 no weights yet, 413 image larger than ``max_voxels``,
            422 missing modalities or unusable device.
        """
        self._known_model(request.get("model"), self._infers, "inference")
        task = self._infers[request["model"]]
        if not task.is_valid():
            raise HTTPException(
                status_code=409, detail=f"model {request['model']!r} has no trained weights yet; train it first."
            )
        image = request.get("image")
        if isinstance(image, (np.ndarray, torch.Tensor)):  # in-process callers only: HTTP requests carry strings
            request["image_channels"], request["image_id"] = [], None
            return self._run_infer(request, datastore)
        if not isinstance(image, str) or not image:
            raise HTTPException(status_code=400, detail=f"no image id given (?image=<id> or a file), got {image!r}.")
        datastore = datastore if datastore else self.datastore()
        path = datastore.get_image_uri(image)
        if path:
            image_id: Optional[str] = image
            companions = [datastore.get_image_uri(i) for i in task.companion_ids(image)]
        elif self._uploaded_file(image):
            path, image_id, companions = image, None, []
        else:
            known = sorted(datastore.list_images())
            raise HTTPException(
                status_code=404,
                detail=f"image {image!r} is not in the datastore ({len(known)} images: "
                f"{known[:10]}{' ...' if len(known) > 10 else ''}).",
            )
        # the task reads these keys: set them here, whatever the client sent
        request["image_channels"] = companions if companions and all(companions) else []
        request["image_id"] = image_id
        try:
            task.check_inputs(path, request["image_channels"], image_id)  # from the headers, before any loading
        except InferInputError as e:
            raise HTTPException(status_code=e.status_code, detail=str(e)) from None
        return self._run_infer(request, datastore)

    def _run_infer(self, request: dict[str, Any], datastore: Any) -> dict[str, Any]:
        try:
            return super().infer(request, datastore)
        except InferInputError as e:  # raised by the task (device, the predictor's input checks)
            raise HTTPException(status_code=e.status_code, detail=str(e)) from None

    def infer_wsi(self, request: dict[str, Any], datastore: Any = None) -> dict[str, Any]:
        # MONAI Label's whole-slide path hands a client's server path of a slide format (.tif, .svs) to the task
        # unchecked; the served bundles segment volumes, so it is not offered
        raise HTTPException(
            status_code=400,
            detail=f"whole-slide inference is not offered for {request.get('model')!r}; use /infer/<model>.",
        )

    def bundle_path(self, model: Optional[str]) -> Optional[str]:
        # MONAI Label calls this synchronously for every background task (train, batch infer, scoring) before
        # starting it: the one place where an unknown model can be refused with a 4xx instead of a failed task
        if model is not None and model not in self._trainers and model not in self._infers:
            known = sorted(set(self._trainers) | set(self._infers))
            raise HTTPException(status_code=404, detail=f"unknown model {model!r}; available: {known}.")
        return None


def guard_train_requests() -> None:
    """Make MONAI Label check train requests in the HTTP request, before it starts a background task.

    MONAI Label 0.8.5 hands ``POST /train/<model>`` to ``AsyncTask.run``, which starts a background process; the
    app's ``train`` runs only there, so a refused request would still be answered 200 and fail later (or, with a
    hostile request, run).  The app's one synchronous hook, ``bundle_path(model)``, does not see the request, so
    this wraps ``AsyncTask.run`` (once per process) to call :meth:`MonaiImplicitApp.check_train_request` on the
    request exactly as MONAI Label merges it (``{"model": ...}`` updated by the client's parameters) first.
    """
    from monailabel.interfaces.utils.app import app_instance
    from monailabel.utils.async_tasks.task import AsyncTask

    run = AsyncTask.run
    if getattr(run, "_checks_train_requests", False):
        return

    @functools.wraps(run)
    def checked_run(method: str, request: Optional[dict] = None, params: Optional[dict] = None, *args, **kwargs):
        if method == "train":
            instance = app_instance()
            if isinstance(instance, MonaiImplicitApp):
                instance.check_train_request({**(request or {}), **(params or {})})
        return run(method, request, params, *args, **kwargs)

    checked_run._checks_train_requests = True  # type: ignore[attr-defined]
    AsyncTask.run = staticmethod(checked_run)
