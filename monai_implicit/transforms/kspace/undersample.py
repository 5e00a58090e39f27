"""Undersampling-mask transforms and retrospective k-space undersampling (array transforms).

Implements the data preparation of the CS-MRI experiment of "Hyper-Convolutions via Implicit Kernels for Medical
Imaging" (Ma, Wang, Dalca, Sabuncu), Sec. 4.3: the zero-filled reconstruction of 8x Poisson-disk undersampled k-space
is the network input, the fully sampled image the target. The FFT and data conventions are those of :mod:`.fft`.

Every transform here takes the mask pattern as the keyword arguments of :class:`~.masks.MaskSpec` (``kind``,
``accel``, ``calib``, ``readout_axis``, ``crop_corner``, ``tol``, ``max_iter``), validated once there, plus ``seed``
(a fixed mask) or ``num_masks`` (``Rand*``: a new mask per sample).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms.transform import Randomizable, Transform
from monai.utils.enums import TransformBackends

from monai_implicit.transforms.utils import SharedRandomState, ensure_tracked, plain_tensor, restore_container
from monai_implicit.utils import check_option, check_positive_int, is_integer

from .fft import (
    IMAGE_FORMATS,
    INPUT_FORMATS,
    KSPACE_FORMATS,
    check_spatial,
    from_complex,
    image_to_kspace,
    kspace_to_image,
    mask_tensor,
    to_complex,
)
from .masks import _MAX_SEED, MaskSpec

__all__ = [
    "UndersamplingMask",
    "RandUndersamplingMask",
    "UndersampledImage",
    "RetrospectiveUndersample",
    "RandRetrospectiveUndersample",
]


class UndersamplingMask(Transform):
    """A fixed undersampling mask for the spatial grid of a channel-first image (Hyper-Convolution paper, Sec. 4.3).

    The same mask is returned for every input of a given spatial shape (masks are built once per shape and
    cached). See :func:`~.masks.undersampling_mask` for how 3D volumes are handled.

    Args:
        seed: seed of the mask (a fixed mask needs a seed; it never touches global random states).
        dtype: dtype of the returned 0/1 mask.
        mask_options: the mask pattern, keywords of :class:`~.masks.MaskSpec`: ``kind`` (``"poisson"``,
            ``"random_lines"``, ``"equispaced_lines"``), ``accel`` (> 1; 8 in the paper), ``calib``,
            ``readout_axis``, ``crop_corner``, ``tol``, ``max_iter``.

    Input ``(C, *spatial)`` with 2 or 3 spatial axes; output ``(1, *spatial)`` 0/1 mask (same container type as
    the input; MetaTensor inputs give a MetaTensor with the input's meta data).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, *, seed: int = 0, dtype: torch.dtype = torch.float32, **mask_options: Any) -> None:
        # validated here, not only when the first mask is built, so a bad config fails when it is parsed
        self.spec = MaskSpec(**mask_options)
        if not is_integer(seed) or seed < 0:
            raise TypeError(
                f"seed must be a non-negative int (a fixed mask; use RandUndersamplingMask for a new mask per sample), "
                f"got {seed!r}."
            )
        self.seed = seed
        self.dtype = dtype
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    def _mask_seed(self) -> int | None:
        return self.seed

    def _cacheable(self) -> bool:
        return True

    def spatial_mask(self, spatial_shape: Sequence[int]) -> np.ndarray:
        """Boolean mask over ``spatial_shape`` (no channel axis); a copy the caller may modify."""
        seed = self._mask_seed()
        key = (*tuple(int(s) for s in spatial_shape), -1 if seed is None else seed)
        mask = self._cache.get(key) if seed is not None else None
        if mask is None:
            mask = self.spec.sample(spatial_shape, seed)
            if seed is not None and self._cacheable():
                mask.flags.writeable = False
                self._cache[key] = mask
        return mask.copy()

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        img = ensure_tracked(img)
        x = plain_tensor(img)
        check_spatial(x, (2, 3), "image")
        mask = torch.from_numpy(self.spatial_mask(tuple(x.shape[1:]))).to(device=x.device, dtype=self.dtype)[None]
        return restore_container(mask, img)


class RandUndersamplingMask(Randomizable, UndersamplingMask):
    """A new undersampling mask for every sample (mask pattern as in :class:`UndersamplingMask`).

    Mask seeds are drawn from this transform's random state (``set_random_state``), so a pipeline is
    reproducible. With ``num_masks`` the seeds come from ``range(num_masks)``: training then cycles through a
    finite pool of masks, which are cached (a 256x256 Poisson-disc mask costs a fraction of a second to build).
    There is no ``prob``: every sample needs a mask.
    """

    def __init__(
        self, *, num_masks: int | None = None, dtype: torch.dtype = torch.float32, **mask_options: Any
    ) -> None:
        UndersamplingMask.__init__(self, seed=0, dtype=dtype, **mask_options)
        self.num_masks = None if num_masks is None else check_positive_int(num_masks, "num_masks")
        self._seed: int | None = None

    def randomize(self, data: Any = None) -> None:
        self._seed = int(self.R.randint(self.num_masks if self.num_masks is not None else _MAX_SEED))

    def _mask_seed(self) -> int | None:
        if self._seed is None:
            self.randomize()
        return self._seed

    def _cacheable(self) -> bool:
        return self.num_masks is not None

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:  # type: ignore[override]
        if randomize:
            self.randomize()
        return UndersamplingMask.__call__(self, img)


class UndersampledImage(NamedTuple):
    """Outputs of :class:`RetrospectiveUndersample` (shapes for an input ``(C, *spatial)``, C' complex channels)."""

    image: NdarrayOrTensor  #: zero-filled reconstruction, in ``image_format``
    target: NdarrayOrTensor  #: fully sampled image, in ``image_format``
    kspace: NdarrayOrTensor  #: undersampled centred k-space (C', *spatial) complex, or (2C', *spatial) real_imag
    mask: NdarrayOrTensor  #: (1, *spatial) (or the mask given at call time) sampling mask


class RetrospectiveUndersample(Transform):
    """Retrospective k-space undersampling of a fully sampled image (Hyper-Convolution paper, Sec. 4.3).

    ``target = image``; ``kspace = F(image) * mask``; ``image = F^-1(kspace)`` (the zero-filled reconstruction),
    with ``F`` MONAI's orthonormal centred FFT over every spatial axis. A mask of all ones returns the target.

    Args:
        image_format: representation of the zero-filled image and the target: ``"magnitude"`` ``(C', *spatial)``
            (paper), ``"real_imag"`` ``(2C', *spatial)`` or ``"complex"``.
        kspace_format: ``"complex"`` ``(C', *spatial)`` complex dtype or ``"real_imag"`` ``(2C', *spatial)``.
        input_format: ``"real"`` (each channel is a real/magnitude image) or ``"real_imag"`` (channels
            ``[real..., imag...]``); complex dtype inputs are always read as complex.
        mask_args: the mask, keywords of :class:`UndersamplingMask`: ``seed`` and the pattern of
            :class:`~.masks.MaskSpec` (``kind``, ``accel``, ``calib``, ``readout_axis``, ``crop_corner``, ``tol``,
            ``max_iter``); a fixed mask for every sample (use :class:`RandRetrospectiveUndersample` for a new mask per
            sample).

    ``__call__(img, mask=None)`` takes ``(C, *spatial)`` with 2 or 3 spatial axes (numpy, torch or MetaTensor) and
    an optional mask ``(*spatial)``, ``(1, *spatial)`` or ``(C', *spatial)`` overriding the built-in one; it returns
    an :class:`UndersampledImage` whose members have the input's container type and meta data.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]
    masker_class: type[UndersamplingMask] = UndersamplingMask

    def __init__(
        self,
        *,
        image_format: str = "magnitude",
        kspace_format: str = "complex",
        input_format: str = "real",
        **mask_args: Any,
    ) -> None:
        self.image_format = check_option(image_format, IMAGE_FORMATS, "image_format")
        self.kspace_format = check_option(kspace_format, KSPACE_FORMATS, "kspace_format")
        self.input_format = check_option(input_format, INPUT_FORMATS, "input_format")
        self.masker = self.masker_class(**mask_args)

    def __call__(self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None = None) -> UndersampledImage:
        img = ensure_tracked(img)
        plain = plain_tensor(img)
        if not plain.is_complex() and self.input_format == "real":
            # a real image is transformed as is (MONAI's real-input FFT) instead of being promoted to complex
            ref = plain.to(torch.float64 if plain.dtype == torch.float64 else torch.float32)
        else:
            ref = to_complex(plain, self.input_format)
        check_spatial(ref, (2, 3), "image")
        spatial = tuple(ref.shape[1:])
        if mask is None:
            m = torch.from_numpy(self.masker.spatial_mask(spatial)).to(device=ref.device, dtype=ref.real.dtype)[None]
        else:
            m = mask_tensor(mask, spatial, ref.shape[0], ref)
        kspace = image_to_kspace(ref) * m
        zero_filled = kspace_to_image(kspace)
        kspace_out = kspace if self.kspace_format == "complex" else from_complex(kspace, "real_imag")
        if not ref.is_complex() and self.image_format == "magnitude":
            target = ref.abs()
        else:
            target = from_complex(
                ref if ref.is_complex() else torch.complex(ref, torch.zeros_like(ref)), self.image_format
            )
        return UndersampledImage(
            image=restore_container(from_complex(zero_filled, self.image_format), img),
            target=restore_container(target, img),
            kspace=restore_container(kspace_out, img),
            mask=restore_container(m, img),
        )


class RandRetrospectiveUndersample(SharedRandomState, RetrospectiveUndersample):
    """:class:`RetrospectiveUndersample` with a new mask per sample (the Hyper-Convolution paper, Sec. 4.3, trains
    with one fixed pattern; varying it is a common augmentation). Mask seeds come from ``set_random_state``;
    ``num_masks`` (instead of ``seed``) limits them to a cached pool, see :class:`RandUndersamplingMask`. Other
    arguments as in :class:`RetrospectiveUndersample`."""

    masker_class = RandUndersamplingMask
    inner = "masker"

    def randomize(self, data: Any = None) -> None:
        self.masker.randomize()  # type: ignore[attr-defined]

    def __call__(  # type: ignore[override]
        self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None = None, randomize: bool = True
    ) -> UndersampledImage:
        if randomize and mask is None:
            self.randomize()
        return RetrospectiveUndersample.__call__(self, img, mask)
