"""Dictionary transforms for retrospective k-space undersampling and k-space noise (paper seed 000, §4.3-4.4).

Typical CS-MRI pipeline (bundle JSON friendly; every argument is a plain number, string or list)::

    Compose([
        LoadImaged("image"), EnsureChannelFirstd("image"), ScaleIntensityd("image"),
        RetrospectiveUndersampled("image", kind="poisson", accel=8, calib=24, seed=0),
        # -> "image": zero-filled magnitude input, "target": fully sampled image,
        #    "kspace": undersampled complex k-space, "mask": (1, H, W) sampling mask
    ])

For the k-space noise robustness test (paper Fig. 8-9), add
``KspaceGaussianNoised("kspace", snr_db=20, sampled_only=True, mask_key="mask", recon_key="image")``: noise on
the acquired samples, then the zero-filled input is recomputed from the noisy k-space.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms.transform import MapTransform, Randomizable, RandomizableTransform
from monai.utils.type_conversion import convert_to_dst_type

from monai_implicit.utils import check_probability

from .array import (
    IMAGE_FORMATS,
    KspaceGaussianNoise,
    RandKspaceGaussianNoise,
    RandRetrospectiveUndersample,
    RandUndersamplingMask,
    RetrospectiveUndersample,
    UndersamplingMask,
    _check_choice,
    from_complex,
    kspace_to_image,
    to_complex,
)

__all__ = [
    "UndersamplingMaskd",
    "UndersamplingMaskD",
    "UndersamplingMaskDict",
    "RandUndersamplingMaskd",
    "RandUndersamplingMaskD",
    "RandUndersamplingMaskDict",
    "RetrospectiveUndersampled",
    "RetrospectiveUndersampleD",
    "RetrospectiveUndersampleDict",
    "RandRetrospectiveUndersampled",
    "RandRetrospectiveUndersampleD",
    "RandRetrospectiveUndersampleDict",
    "KspaceGaussianNoised",
    "KspaceGaussianNoiseD",
    "KspaceGaussianNoiseDict",
    "RandKspaceGaussianNoised",
    "RandKspaceGaussianNoiseD",
    "RandKspaceGaussianNoiseDict",
]


def _single_key(transform: MapTransform, name: str) -> Hashable:
    if len(transform.keys) != 1:
        raise ValueError(f"{name} reads exactly one key (its outputs have fixed names), got keys={transform.keys}.")
    return transform.keys[0]


class UndersamplingMaskd(MapTransform):
    """Dictionary version of :class:`~.array.UndersamplingMask`: writes a fixed mask ``(1, *spatial)`` for the
    spatial grid of ``d[key]`` to ``d[mask_key]`` (paper §4.3).

    Args:
        keys: the single key whose spatial shape (and meta data) the mask takes.
        mask_key: where the mask is written.
        other arguments: see :class:`~.array.UndersamplingMask`.
    """

    backend = UndersamplingMask.backend

    def __init__(
        self,
        keys: KeysCollection,
        mask_key: str = "mask",
        kind: str = "poisson",
        accel: float = 8.0,
        calib: int | Sequence[int] = 24,
        seed: int = 0,
        readout_axis: int = 0,
        crop_corner: bool = True,
        tol: float = 0.1,
        max_iter: int = 30,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        _single_key(self, type(self).__name__)
        self.mask_key = mask_key
        self.masker = self._make_masker(kind, accel, calib, seed, readout_axis, crop_corner, tol, max_iter)

    def _make_masker(self, kind, accel, calib, seed, readout_axis, crop_corner, tol, max_iter) -> UndersamplingMask:
        return UndersamplingMask(kind, accel, calib, seed, readout_axis, crop_corner, tol, max_iter)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[self.mask_key] = self.masker(d[key])
        return d


class RandUndersamplingMaskd(Randomizable, UndersamplingMaskd):
    """Dictionary version of :class:`~.array.RandUndersamplingMask`: a new mask per sample (``num_masks`` limits
    the seeds to a cached pool). Arguments as in :class:`UndersamplingMaskd` with ``num_masks`` instead of
    ``seed``."""

    def __init__(
        self,
        keys: KeysCollection,
        mask_key: str = "mask",
        kind: str = "poisson",
        accel: float = 8.0,
        calib: int | Sequence[int] = 24,
        num_masks: int | None = None,
        readout_axis: int = 0,
        crop_corner: bool = True,
        tol: float = 0.1,
        max_iter: int = 30,
        allow_missing_keys: bool = False,
    ) -> None:
        self._num_masks = num_masks
        UndersamplingMaskd.__init__(
            self, keys, mask_key, kind, accel, calib, 0, readout_axis, crop_corner, tol, max_iter, allow_missing_keys
        )

    def _make_masker(self, kind, accel, calib, seed, readout_axis, crop_corner, tol, max_iter) -> UndersamplingMask:
        return RandUndersamplingMask(kind, accel, calib, self._num_masks, readout_axis, crop_corner, tol, max_iter)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.masker.set_random_state(state=self.R)  # type: ignore[attr-defined]
        return self

    def randomize(self, data: Any = None) -> None:
        self.masker.randomize()  # type: ignore[attr-defined]

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.randomize()
        for key in self.key_iterator(d):
            d[self.mask_key] = self.masker(d[key], randomize=False)  # type: ignore[call-arg]
        return d


class RetrospectiveUndersampled(MapTransform):
    """Dictionary version of :class:`~.array.RetrospectiveUndersample` (paper §4.3).

    Reads the fully sampled image ``d[key]`` ``(C, *spatial)`` and writes

    * ``d[image_key]``: the zero-filled reconstruction (``image_format``; ``image_key=None`` replaces ``d[key]``),
    * ``d[target_key]``: the fully sampled image in the same format,
    * ``d[kspace_key]``: the undersampled centred k-space,
    * ``d[mask_key]``: the sampling mask ``(1, *spatial)``.

    Any of ``target_key``, ``kspace_key``, ``mask_key`` may be None to skip that output. With ``mask_input_key``
    the mask is read from the data (e.g. a loaded acquisition mask) instead of being generated. All outputs keep
    the input's MetaTensor meta data.

    Args:
        keys: the single key of the fully sampled image.
        image_key, target_key, kspace_key, mask_key: output keys (defaults "image", "target", "kspace", "mask"
            when ``keys="image"``).
        mask_input_key: optional key of a precomputed mask ``(*spatial)`` or ``(1, *spatial)``.
        other arguments: see :class:`~.array.RetrospectiveUndersample`.
    """

    backend = RetrospectiveUndersample.backend

    def __init__(
        self,
        keys: KeysCollection = "image",
        kind: str = "poisson",
        accel: float = 8.0,
        calib: int | Sequence[int] = 24,
        seed: int = 0,
        readout_axis: int = 0,
        crop_corner: bool = True,
        tol: float = 0.1,
        max_iter: int = 30,
        image_format: str = "magnitude",
        kspace_format: str = "complex",
        input_format: str = "real",
        image_key: str | None = None,
        target_key: str | None = "target",
        kspace_key: str | None = "kspace",
        mask_key: str | None = "mask",
        mask_input_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        _single_key(self, type(self).__name__)
        self.undersample = self._make(
            kind, accel, calib, seed, readout_axis, crop_corner, tol, max_iter, image_format, kspace_format,
            input_format,
        )  # fmt: skip
        self.image_key = image_key
        self.target_key = target_key
        self.kspace_key = kspace_key
        self.mask_key = mask_key
        self.mask_input_key = mask_input_key

    def _make(self, *args: Any) -> RetrospectiveUndersample:
        return RetrospectiveUndersample(*args)

    def _run(self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None):
        return self.undersample(img, mask)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            mask = None
            if self.mask_input_key is not None:
                if self.mask_input_key not in d:
                    raise KeyError(f"mask_input_key {self.mask_input_key!r} is not in the data (keys {list(d)}).")
                mask = d[self.mask_input_key]
            out = self._run(d[key], mask)
            if self.target_key is not None:
                d[self.target_key] = out.target
            if self.kspace_key is not None:
                d[self.kspace_key] = out.kspace
            if self.mask_key is not None:
                d[self.mask_key] = out.mask
            d[key if self.image_key is None else self.image_key] = out.image
        return d


class RandRetrospectiveUndersampled(Randomizable, RetrospectiveUndersampled):
    """Dictionary version of :class:`~.array.RandRetrospectiveUndersample`: a new mask per sample. Arguments as
    :class:`RetrospectiveUndersampled`, with ``num_masks`` (optional cached pool of mask seeds) instead of
    ``seed``."""

    def __init__(
        self,
        keys: KeysCollection = "image",
        kind: str = "poisson",
        accel: float = 8.0,
        calib: int | Sequence[int] = 24,
        num_masks: int | None = None,
        readout_axis: int = 0,
        crop_corner: bool = True,
        tol: float = 0.1,
        max_iter: int = 30,
        image_format: str = "magnitude",
        kspace_format: str = "complex",
        input_format: str = "real",
        image_key: str | None = None,
        target_key: str | None = "target",
        kspace_key: str | None = "kspace",
        mask_key: str | None = "mask",
        mask_input_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        RetrospectiveUndersampled.__init__(
            self, keys, kind, accel, calib, num_masks, readout_axis, crop_corner, tol, max_iter,  # type: ignore[arg-type]
            image_format, kspace_format, input_format, image_key, target_key, kspace_key, mask_key, mask_input_key,
            allow_missing_keys,
        )  # fmt: skip

    def _make(self, *args: Any) -> RetrospectiveUndersample:
        return RandRetrospectiveUndersample(*args)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.undersample.set_random_state(state=self.R)  # type: ignore[attr-defined]
        return self

    def randomize(self, data: Any = None) -> None:
        self.undersample.randomize()  # type: ignore[attr-defined]

    def _run(self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None):
        return self.undersample(img, mask, randomize=False)  # type: ignore[call-arg]

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        self.randomize()
        return RetrospectiveUndersampled.__call__(self, data)


class _KspaceNoisedMixin:
    """Writes the noisy data back and, with ``recon_key``, the zero-filled image of the noisy k-space."""

    keys: tuple
    noise: Any
    mask_key: str | None
    recon_key: str | None
    recon_format: str

    def _setup_keys(self, mask_key: str | None, recon_key: str | None, recon_format: str) -> None:
        self.mask_key = mask_key
        self.recon_key = recon_key
        self.recon_format = _check_choice(recon_format, IMAGE_FORMATS, "recon_format")
        if recon_key is not None and len(self.keys) != 1:
            raise ValueError(f"recon_key needs exactly one k-space key, got keys={self.keys}.")
        if recon_key is not None and self.noise.domain != "kspace":
            raise ValueError("recon_key is only meaningful with domain='kspace'.")
        if self.noise.sampled_only and mask_key is None:
            raise ValueError("sampled_only=True needs mask_key (the key of the sampling mask).")

    def _mask(self, d: Mapping[Hashable, Any]) -> Any:
        if self.mask_key is None:
            return None
        if self.mask_key not in d:
            raise KeyError(f"mask_key {self.mask_key!r} is not in the data (keys {list(d)}).")
        return d[self.mask_key]

    def _write(self, d: dict, key: Hashable, out: NdarrayOrTensor) -> None:
        d[key] = out
        if self.recon_key is not None:
            recon = from_complex(kspace_to_image(to_complex(out, self.noise.input_format)), self.recon_format)
            like = d.get(self.recon_key, out)
            d[self.recon_key], *_ = convert_to_dst_type(recon, dst=like, dtype=recon.dtype)


class KspaceGaussianNoised(Randomizable, MapTransform, _KspaceNoisedMixin):
    """Dictionary version of :class:`~.array.KspaceGaussianNoise` (paper §4.4, Fig. 8-9).

    Args:
        keys: keys of k-space (``domain="kspace"``) or image (``domain="image"``) data.
        snr_db, sigma, sampled_only, domain, input_format: see :class:`~.array.KspaceGaussianNoise`.
        mask_key: key of the sampling mask (needed by ``sampled_only``).
        recon_key: with one k-space key, also write the zero-filled reconstruction of the noisy k-space here
            (e.g. "image" after :class:`RetrospectiveUndersampled`), in ``recon_format``.
        recon_format: ``"magnitude"``, ``"real_imag"`` or ``"complex"``.
    """

    backend = KspaceGaussianNoise.backend

    def __init__(
        self,
        keys: KeysCollection = "kspace",
        snr_db: float | None = None,
        sigma: float | None = None,
        sampled_only: bool = False,
        domain: str = "kspace",
        input_format: str = "real",
        mask_key: str | None = None,
        recon_key: str | None = None,
        recon_format: str = "magnitude",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.noise = KspaceGaussianNoise(snr_db, sigma, sampled_only, domain, input_format)
        self._setup_keys(mask_key, recon_key, recon_format)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.noise.set_random_state(state=self.R)
        return self

    def randomize(self, data: Any = None) -> None:
        self.noise.randomize(data)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        mask = self._mask(d)
        for key in self.key_iterator(d):
            self._write(d, key, self.noise(d[key], mask=mask, randomize=True))
        return d


class RandKspaceGaussianNoised(RandomizableTransform, MapTransform, _KspaceNoisedMixin):
    """Dictionary version of :class:`~.array.RandKspaceGaussianNoise`: with probability ``prob`` (one draw for all
    keys) noise at a level drawn from the ``snr_db`` / ``sigma`` range. Other arguments as
    :class:`KspaceGaussianNoised`."""

    backend = RandKspaceGaussianNoise.backend

    def __init__(
        self,
        keys: KeysCollection = "kspace",
        prob: float = 0.1,
        snr_db: float | Sequence[float] | None = None,
        sigma: float | Sequence[float] | None = None,
        sampled_only: bool = False,
        domain: str = "kspace",
        input_format: str = "real",
        mask_key: str | None = None,
        recon_key: str | None = None,
        recon_format: str = "magnitude",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, check_probability(prob))
        self.noise = RandKspaceGaussianNoise(1.0, snr_db, sigma, sampled_only, domain, input_format)
        self._setup_keys(mask_key, recon_key, recon_format)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.noise.set_random_state(state=self.R)
        return self

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        mask = self._mask(d)
        for key in self.key_iterator(d):
            self.noise.randomize(d[key])
            self._write(d, key, self.noise(d[key], mask=mask, randomize=False))
        return d


UndersamplingMaskD = UndersamplingMaskDict = UndersamplingMaskd
RandUndersamplingMaskD = RandUndersamplingMaskDict = RandUndersamplingMaskd
RetrospectiveUndersampleD = RetrospectiveUndersampleDict = RetrospectiveUndersampled
RandRetrospectiveUndersampleD = RandRetrospectiveUndersampleDict = RandRetrospectiveUndersampled
KspaceGaussianNoiseD = KspaceGaussianNoiseDict = KspaceGaussianNoised
RandKspaceGaussianNoiseD = RandKspaceGaussianNoiseDict = RandKspaceGaussianNoised
