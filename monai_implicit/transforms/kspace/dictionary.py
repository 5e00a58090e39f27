"""Dictionary transforms for retrospective k-space undersampling and k-space noise ("Hyper-Convolutions via Implicit
Kernels for Medical Imaging", Ma, Wang, Dalca, Sabuncu, Sec. 4.3-4.4).

Typical CS-MRI pipeline (bundle JSON friendly; every argument is a plain number, string or list)::

    Compose([
        LoadImaged("image"), EnsureChannelFirstd("image"), ScaleIntensityd("image"),
        RetrospectiveUndersampled("image", kind="poisson", accel=8, calib=24, seed=0),
        # -> "image": zero-filled magnitude input, "target": fully sampled image,
        #    "kspace": undersampled complex k-space, "mask": (1, H, W) sampling mask
    ])

For the k-space noise robustness test (the paper's Fig. 8-9), add
``KspaceGaussianNoised("kspace", snr_db=20, sampled_only=True, mask_key="mask", recon_key="image")``: noise on
the acquired samples, then the zero-filled input is recomputed from the noisy k-space.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms.transform import MapTransform

from monai_implicit.transforms.noise.dictionary import NoiseMapTransform
from monai_implicit.transforms.utils import SharedRandomState, restore_container
from monai_implicit.utils import check_option

from .fft import IMAGE_FORMATS, from_complex, kspace_to_image, to_complex
from .noise import KspaceGaussianNoise, RandKspaceGaussianNoise
from .undersample import (
    RandRetrospectiveUndersample,
    RandUndersamplingMask,
    RetrospectiveUndersample,
    UndersamplingMask,
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


def _single_key(transform: MapTransform) -> Hashable:
    if len(transform.keys) != 1:
        name = type(transform).__name__
        raise ValueError(f"{name} reads exactly one key (its outputs have fixed names), got keys={transform.keys}.")
    return transform.keys[0]


class _RandomPerCall(SharedRandomState):
    """A dictionary transform whose inner array transform (``self.<inner>``) draws its randomness once per call,
    here, and then runs on the data with ``randomize=False``."""

    inner_call_args: Mapping[str, Any] = {"randomize": False}

    def randomize(self, data: Any = None) -> None:
        getattr(self, self.inner).randomize()

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        self.randomize()
        return super().__call__(data)  # type: ignore[misc]


class UndersamplingMaskd(MapTransform):
    """Dictionary version of :class:`~.undersample.UndersamplingMask`: writes a fixed mask ``(1, *spatial)`` for the
    spatial grid of ``d[key]`` to ``d[mask_key]`` (Hyper-Convolution paper, Sec. 4.3).

    Args:
        keys: the single key whose spatial shape (and meta data) the mask takes.
        mask_key: where the mask is written.
        mask_args: keywords of :class:`~.undersample.UndersamplingMask`: ``seed``, ``dtype`` and the pattern of
            :class:`~.masks.MaskSpec` (``kind``, ``accel``, ``calib``, ``readout_axis``, ``crop_corner``, ``tol``,
            ``max_iter``).
    """

    backend = UndersamplingMask.backend
    masker_class: type[UndersamplingMask] = UndersamplingMask
    inner_call_args: Mapping[str, Any] = {}

    def __init__(
        self, keys: KeysCollection, mask_key: str = "mask", *, allow_missing_keys: bool = False, **mask_args: Any
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        _single_key(self)
        self.mask_key = mask_key
        self.masker = self.masker_class(**mask_args)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[self.mask_key] = self.masker(d[key], **self.inner_call_args)
        return d


class RandUndersamplingMaskd(_RandomPerCall, UndersamplingMaskd):
    """Dictionary version of :class:`~.undersample.RandUndersamplingMask`: a new mask per sample (``num_masks``
    limits the seeds to a cached pool). Arguments as in :class:`UndersamplingMaskd` with ``num_masks`` instead of
    ``seed``."""

    masker_class = RandUndersamplingMask
    inner = "masker"


class RetrospectiveUndersampled(MapTransform):
    """Dictionary version of :class:`~.undersample.RetrospectiveUndersample` (Hyper-Convolution paper, Sec. 4.3).

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
        undersample_args: keywords of :class:`~.undersample.RetrospectiveUndersample`: ``image_format``,
            ``kspace_format``, ``input_format``, ``seed`` and the mask pattern of :class:`~.masks.MaskSpec`.
    """

    backend = RetrospectiveUndersample.backend
    undersample_class: type[RetrospectiveUndersample] = RetrospectiveUndersample
    inner_call_args: Mapping[str, Any] = {}

    def __init__(
        self,
        keys: KeysCollection = "image",
        *,
        image_key: str | None = None,
        target_key: str | None = "target",
        kspace_key: str | None = "kspace",
        mask_key: str | None = "mask",
        mask_input_key: str | None = None,
        allow_missing_keys: bool = False,
        **undersample_args: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        _single_key(self)
        self.undersample = self.undersample_class(**undersample_args)
        self.image_key = image_key
        self.target_key = target_key
        self.kspace_key = kspace_key
        self.mask_key = mask_key
        self.mask_input_key = mask_input_key

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            mask = None
            if self.mask_input_key is not None:
                if self.mask_input_key not in d:
                    raise KeyError(f"mask_input_key {self.mask_input_key!r} is not in the data (keys {list(d)}).")
                mask = d[self.mask_input_key]
            out = self.undersample(d[key], mask, **self.inner_call_args)
            if self.target_key is not None:
                d[self.target_key] = out.target
            if self.kspace_key is not None:
                d[self.kspace_key] = out.kspace
            if self.mask_key is not None:
                d[self.mask_key] = out.mask
            d[key if self.image_key is None else self.image_key] = out.image
        return d


class RandRetrospectiveUndersampled(_RandomPerCall, RetrospectiveUndersampled):
    """Dictionary version of :class:`~.undersample.RandRetrospectiveUndersample`: a new mask per sample. Arguments
    as :class:`RetrospectiveUndersampled`, with ``num_masks`` (optional cached pool of mask seeds) instead of
    ``seed``."""

    undersample_class = RandRetrospectiveUndersample
    inner = "undersample"


class RandKspaceGaussianNoised(NoiseMapTransform):
    """Dictionary version of :class:`~.noise.RandKspaceGaussianNoise`: with probability ``prob`` (one draw for all
    keys) noise at a level drawn from the ``snr_db`` / ``sigma`` range (Hyper-Convolution paper, Sec. 4.4,
    Fig. 8-9).

    Args:
        keys: keys of k-space (``domain="kspace"``) or image (``domain="image"``) data.
        prob, snr_db, sigma, sampled_only, domain, input_format: see :class:`~.noise.RandKspaceGaussianNoise`.
        mask_key: key of the sampling mask (needed by ``sampled_only``).
        recon_key: with one k-space key, also write the zero-filled reconstruction of the noisy k-space here
            (e.g. "image" after :class:`RetrospectiveUndersampled`), in ``recon_format``.
        recon_format: ``"magnitude"``, ``"real_imag"`` or ``"complex"``.
    """

    backend = RandKspaceGaussianNoise.backend
    noise_class = RandKspaceGaussianNoise
    noise: RandKspaceGaussianNoise

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
        super().__init__(keys, prob, allow_missing_keys, snr_db, sigma, sampled_only, domain, input_format)
        self.mask_key = mask_key
        self.recon_key = recon_key
        self.recon_format = check_option(recon_format, IMAGE_FORMATS, "recon_format")
        if recon_key is not None and len(self.keys) != 1:
            raise ValueError(f"recon_key needs exactly one k-space key, got keys={self.keys}.")
        if recon_key is not None and self.noise.domain != "kspace":
            raise ValueError("recon_key is only meaningful with domain='kspace'.")
        if self.noise.sampled_only and mask_key is None:
            raise ValueError("sampled_only=True needs mask_key (the key of the sampling mask).")
        self._mask: Any = None

    def _prepare(self, d: dict) -> None:
        if self.mask_key is not None and self.mask_key not in d:
            raise KeyError(f"mask_key {self.mask_key!r} is not in the data (keys {list(d)}).")
        self._mask = None if self.mask_key is None else d[self.mask_key]

    def _noise_key(self, d: dict, key: Hashable) -> None:
        out = d[key] = self.noise(d[key], mask=self._mask)
        if self.recon_key is not None:
            recon = from_complex(kspace_to_image(to_complex(out, self.noise.input_format)), self.recon_format)
            d[self.recon_key] = restore_container(recon, d.get(self.recon_key, out))


class KspaceGaussianNoised(RandKspaceGaussianNoised):
    """Dictionary version of :class:`~.noise.KspaceGaussianNoise`: noise at a single level on every sample
    (Hyper-Convolution paper, Sec. 4.4, Fig. 8-9). Arguments as :class:`RandKspaceGaussianNoised` but ``prob``."""

    backend = KspaceGaussianNoise.backend
    noise_class = KspaceGaussianNoise
    fixed = True

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
        super().__init__(
            keys, 1.0, snr_db, sigma, sampled_only, domain, input_format, mask_key, recon_key, recon_format,
            allow_missing_keys,
        )  # fmt: skip


UndersamplingMaskD = UndersamplingMaskDict = UndersamplingMaskd
RandUndersamplingMaskD = RandUndersamplingMaskDict = RandUndersamplingMaskd
RetrospectiveUndersampleD = RetrospectiveUndersampleDict = RetrospectiveUndersampled
RandRetrospectiveUndersampleD = RandRetrospectiveUndersampleDict = RandRetrospectiveUndersampled
KspaceGaussianNoiseD = KspaceGaussianNoiseDict = KspaceGaussianNoised
RandKspaceGaussianNoiseD = RandKspaceGaussianNoiseDict = RandKspaceGaussianNoised
