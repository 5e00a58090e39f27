"""MONAI Label app serving this package's segmentation bundles.

Start it on a folder of NIfTI studies (labels go to ``<studies>/labels/final``)::

    monailabel start_server --app monai_implicit/apps/label --studies /data/ct --conf models hyperunet_lits

App options (``--conf KEY VALUE``):
    ``models``: comma-separated bundle names, or ``all`` (default): every segmentation bundle in ``bundles_dir``;
    ``bundles_dir``: the folder holding the bundles (default: ``bundles/`` of the source checkout);
    ``epochs``: the default ``max_epochs`` of the train tasks shown to clients (default 10).

Every bundle becomes an infer task (``/infer/<name>``, labels from the bundle's ``channel_def``) and, when it has a
``configs/train.json``, a train task (``/train/<name>``) that runs that config.  The app never downloads (no model
zoo, no pre-trained weights) and does not use MONAI Label's bundle tasks, which need torchvision: nothing but
MONAI's own guarded probes at ``import monai`` tries to import torchvision, so a missing or broken (CPU/CUDA
mismatched) torchvision does not matter.  MONAI Label loads
this file by path, so it only uses absolute imports.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

from fastapi import HTTPException
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.train import TrainTask

import monai_implicit
from monai_implicit.apps.label.bundles import select_bundles
from monai_implicit.apps.label.infer import BundleSegmentationInfer
from monai_implicit.apps.label.train import BundleTrain

logger = logging.getLogger(__name__)


class MonaiImplicitApp(MONAILabelApp):
    """The MONAI Label app: one infer and one train task per selected bundle.

    Args:
        app_dir: the app folder (MONAI Label's ``--app``).
        studies: the datastore (``--studies``): a local folder, or a DICOMweb URL.
        conf: ``--conf`` options (see the module docstring).

    Raises:
        ValueError: ``models`` names a folder that is not a servable bundle, or ``epochs`` is not a positive
            integer (the server then refuses to start, with the reason in its log).
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        conf = dict(conf or {})
        self.bundles = select_bundles(conf.get("bundles_dir") or None, conf.get("models", "all"))
        try:
            self.default_epochs = int(conf.get("epochs", 10))
        except ValueError:
            raise ValueError(f"--conf epochs must be a positive integer, got {conf.get('epochs')!r}.") from None
        if self.default_epochs < 1:
            raise ValueError(f"--conf epochs must be a positive integer, got {self.default_epochs}.")
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
        return {b.name: BundleSegmentationInfer(b) for b in self.bundles}

    def init_trainers(self) -> dict[str, TrainTask]:
        return {b.name: BundleTrain(b, self.default_epochs) for b in self.bundles if b.train_config is not None}

    def _known_model(self, model: Optional[str], tasks: dict[str, Any], what: str) -> None:
        # MONAI Label answers an unknown model with a bare 500; clients deserve a 404 that names the choices
        if not model or model not in tasks:
            raise HTTPException(status_code=404, detail=f"unknown {what} model {model!r}; available: {sorted(tasks)}.")

    def infer(self, request: dict[str, Any], datastore: Any = None) -> dict[str, Any]:
        self._known_model(request.get("model"), self._infers, "inference")
        task = self._infers[request["model"]]
        if not task.is_valid():
            raise HTTPException(
                status_code=409, detail=f"model {request['model']!r} has no trained weights yet; train it first."
            )
        image = request.get("image")
        if isinstance(image, str):
            datastore = datastore if datastore else self.datastore()
            if not image:
                raise HTTPException(status_code=400, detail="no image given (?image=<id> or an uploaded file).")
            if not os.path.exists(image) and not datastore.get_image_uri(image):
                known = sorted(datastore.list_images())
                raise HTTPException(
                    status_code=404,
                    detail=f"image {image!r} is not in the datastore {self.studies} ({len(known)} images: "
                    f"{known[:10]}{' ...' if len(known) > 10 else ''}).",
                )
        return super().infer(request, datastore)

    def train(self, request: dict[str, Any]) -> dict[str, Any]:
        self._known_model(request.get("model"), self._trainers, "training")
        return super().train(request)

    def bundle_path(self, model: Optional[str]) -> Optional[str]:
        # MONAI Label calls this synchronously for every background task (train, batch infer, scoring) before
        # starting it: the one place where an unknown model can be refused with a 4xx instead of a failed task
        if model is not None and model not in self._trainers and model not in self._infers:
            known = sorted(set(self._trainers) | set(self._infers))
            raise HTTPException(status_code=404, detail=f"unknown model {model!r}; available: {known}.")
        return None
