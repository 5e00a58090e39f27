"""Container handling and random-state sharing used by the k-space and noise transforms.

Every transform of :mod:`monai_implicit.transforms.kspace` and :mod:`monai_implicit.transforms.noise` computes on a
plain torch tensor and returns the input's container: numpy in -> numpy out, torch in -> torch out, MetaTensor in ->
MetaTensor out with the input's meta data (MONAI's convention, through :func:`~monai.utils.convert_to_dst_type`).
"""

from __future__ import annotations

import numpy as np
import torch
from monai.config.type_definitions import NdarrayOrTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms.transform import Randomizable
from monai.utils.type_conversion import convert_to_dst_type, convert_to_tensor

__all__ = ["ensure_tracked", "plain_tensor", "restore_container", "SharedRandomState"]


def ensure_tracked(x: NdarrayOrTensor) -> NdarrayOrTensor:
    """A torch input as a MetaTensor when meta tracking is on (MONAI's ``get_track_meta``); numpy as is."""
    return convert_to_tensor(x, track_meta=get_track_meta()) if isinstance(x, torch.Tensor) else x


def plain_tensor(x: NdarrayOrTensor) -> torch.Tensor:
    """A plain torch tensor view of numpy / torch / MetaTensor data (the caller restores the meta data)."""
    t = convert_to_tensor(x, track_meta=False)
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"expected a numpy array or torch tensor, got {type(x).__name__}.")
    return t


def restore_container(out: torch.Tensor, like: NdarrayOrTensor) -> NdarrayOrTensor:
    """``out`` in the container type of ``like`` (numpy / torch / MetaTensor with its meta data), keeping out's
    dtype."""
    restored, *_ = convert_to_dst_type(out, dst=like, dtype=out.dtype)
    return restored


class SharedRandomState(Randomizable):
    """A random transform that drives an inner random transform (``self.<inner>``) from its own random state, so that
    ``set_random_state`` on the outer transform makes the pipeline reproducible (MONAI's ``Rand*d`` pattern)."""

    inner: str

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        getattr(self, self.inner).set_random_state(state=self.R)
        return self
