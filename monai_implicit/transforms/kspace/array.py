"""Array transforms for retrospective k-space undersampling and k-space noise.

Implements the data preparation of the Hyper-Convolution paper's CS-MRI experiment (Ma et al., seed 000, §4.3:
zero-filled reconstruction of 8x Poisson-disk undersampled k-space as input, fully sampled image as target) and its
robustness test (§4.4, Fig. 8-9: complex Gaussian noise added in k-space).

Conventions (shared with :mod:`monai.data.fft_utils`, which does every transform here):

* images are channel-first ``(C, *spatial)`` with 2 or 3 spatial axes;
* k-space is *centred* (DC at index ``n // 2`` of each axis) and the FFT is orthonormal, so
  ``sum |image|^2 == sum |kspace|^2`` and SNRs are the same in both domains;
* complex data is either a complex dtype tensor or, with ``"real_imag"``, real channels
  ``[real_0, ..., real_{C-1}, imag_0, ..., imag_{C-1}]`` (``torch.cat([x.real, x.imag], 0)``);
* MetaTensor in -> MetaTensor out with the input's meta data; numpy in -> numpy out; torch in -> torch out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from monai.config.type_definitions import NdarrayOrTensor
from monai.data.fft_utils import fftn_centered, ifftn_centered
from monai.data.meta_obj import get_track_meta
from monai.transforms.transform import Randomizable, RandomizableTransform, Transform
from monai.utils.enums import TransformBackends
from monai.utils.type_conversion import convert_to_dst_type, convert_to_tensor

from monai_implicit.utils import check_number, check_probability

from .masks import _MAX_SEED, MASK_KINDS, undersampling_mask

__all__ = [
    "IMAGE_FORMATS",
    "KSPACE_FORMATS",
    "INPUT_FORMATS",
    "to_complex",
    "from_complex",
    "image_to_kspace",
    "kspace_to_image",
    "UndersamplingMask",
    "RandUndersamplingMask",
    "UndersampledImage",
    "RetrospectiveUndersample",
    "RandRetrospectiveUndersample",
    "KspaceGaussianNoise",
    "RandKspaceGaussianNoise",
]

IMAGE_FORMATS = ("magnitude", "real_imag", "complex")
KSPACE_FORMATS = ("complex", "real_imag")
INPUT_FORMATS = ("real", "real_imag")


def _check_choice(value: str, choices: Sequence[str], name: str) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}.")
    return value


def _plain(x: NdarrayOrTensor) -> torch.Tensor:
    """A plain torch tensor view of numpy / torch / MetaTensor data (meta data is restored by the caller)."""
    t = convert_to_tensor(x, track_meta=False)
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"expected a numpy array or torch tensor, got {type(x).__name__}.")
    return t


def _check_spatial(x: torch.Tensor, spatial_dims: Sequence[int], what: str) -> int:
    d = x.ndim - 1
    if d not in spatial_dims:
        raise ValueError(
            f"{what} must be channel-first with {' or '.join(map(str, spatial_dims))} spatial dims, i.e. "
            f"{' or '.join(str(s + 1) for s in spatial_dims)} dims in total; got shape {tuple(x.shape)}."
        )
    return d


def to_complex(data: NdarrayOrTensor, input_format: str = "real") -> torch.Tensor:
    """Channel-first data as a complex tensor ``(C', *spatial)``.

    Args:
        data: ``(C, *spatial)`` complex dtype (used as is), or real with ``input_format`` "real" (every channel
            is a real-valued image, C' = C) or "real_imag" (C even, channels ``[real..., imag...]``, C' = C / 2).
        input_format: how to read real data, one of :data:`INPUT_FORMATS`.
    """
    _check_choice(input_format, INPUT_FORMATS, "input_format")
    x = _plain(data)
    if x.is_complex():
        if input_format == "real_imag":
            raise ValueError("input_format='real_imag' expects real channels, got a complex dtype tensor.")
        return x
    if x.dtype != torch.float64:  # integers and half precision are computed in float32
        x = x.to(torch.float32)
    if input_format == "real":
        return torch.complex(x, torch.zeros_like(x))
    if x.ndim < 1 or x.shape[0] % 2:
        raise ValueError(
            f"input_format='real_imag' needs an even number of channels [real..., imag...], got shape {tuple(x.shape)}."
        )
    half = x.shape[0] // 2
    return torch.complex(x[:half].contiguous(), x[half:].contiguous())


def from_complex(x: torch.Tensor, fmt: str = "magnitude") -> torch.Tensor:
    """Complex ``(C, *spatial)`` as ``"magnitude"`` ``(C, *spatial)``, ``"real_imag"`` ``(2C, *spatial)`` or
    ``"complex"`` (unchanged)."""
    _check_choice(fmt, IMAGE_FORMATS, "format")
    if fmt == "magnitude":
        return x.abs()
    if fmt == "real_imag":
        return torch.cat([x.real, x.imag], dim=0)
    return x


def image_to_kspace(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal centred FFT over all spatial axes of a real or complex ``(C, *spatial)`` tensor (MONAI's
    fftn_centered); returns complex ``(C, *spatial)``."""
    d = x.ndim - 1
    if x.is_complex():
        out = fftn_centered(torch.view_as_real(x.contiguous()), spatial_dims=d, is_complex=True)
    else:
        out = fftn_centered(x, spatial_dims=d, is_complex=False)
    return torch.view_as_complex(out.contiguous())


def kspace_to_image(k: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`image_to_kspace` (MONAI's ifftn_centered): the zero-filled reconstruction of ``k``."""
    d = k.ndim - 1
    out = ifftn_centered(torch.view_as_real(k.contiguous()), spatial_dims=d, is_complex=True)
    return torch.view_as_complex(out.contiguous())


def _restore(out: torch.Tensor, like: NdarrayOrTensor) -> NdarrayOrTensor:
    """Back to the container type of ``like`` (numpy / torch / MetaTensor with its meta data), keeping out's dtype."""
    restored, *_ = convert_to_dst_type(out, dst=like, dtype=out.dtype)
    return restored


def _mask_as_tensor(mask: NdarrayOrTensor, spatial: tuple[int, ...], channels: int, like: torch.Tensor) -> torch.Tensor:
    m = _plain(mask)
    if m.is_complex():
        raise TypeError("mask must be real-valued (0/1 or sampling weights), got a complex tensor.")
    if m.ndim == len(spatial):
        m = m[None]
    if m.ndim != len(spatial) + 1 or tuple(m.shape[1:]) != spatial or m.shape[0] not in (1, channels):
        raise ValueError(
            f"mask must have shape {spatial}, (1, *{spatial}) or ({channels}, *{spatial}) to match the data; "
            f"got {tuple(m.shape)}."
        )
    return m.to(device=like.device, dtype=like.real.dtype)


class UndersamplingMask(Transform):
    """A fixed undersampling mask for the spatial grid of a channel-first image (paper §4.3).

    The same mask is returned for every input of a given spatial shape (masks are built once per shape and
    cached). Kinds: ``"poisson"`` (variable-density Poisson-disc, :func:`~.masks.poisson_disk_mask`),
    ``"random_lines"`` and ``"equispaced_lines"`` (MONAI's Cartesian line masks); see
    :func:`~.masks.undersampling_mask` for how 3D volumes are handled.

    Args:
        kind: one of ``"poisson"``, ``"random_lines"``, ``"equispaced_lines"``.
        accel: acceleration factor > 1 (8 in the paper).
        calib: calibration size (Poisson: box side or pair over the phase-encode axes; lines: number of lines).
        seed: seed of the mask (a fixed mask needs a seed; it never touches global random states).
        readout_axis: spatial axis (0-based, negative allowed) that is fully sampled in 3D (and by line masks).
        crop_corner, tol, max_iter: Poisson-disc options, see :func:`~.masks.poisson_disk_mask`.
        dtype: dtype of the returned 0/1 mask.

    Input ``(C, *spatial)`` with 2 or 3 spatial axes; output ``(1, *spatial)`` 0/1 mask (same container type as
    the input; MetaTensor inputs give a MetaTensor with the input's meta data).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        kind: str = "poisson",
        accel: float = 8.0,
        calib: int | Sequence[int] = 24,
        seed: int = 0,
        readout_axis: int = 0,
        crop_corner: bool = True,
        tol: float = 0.1,
        max_iter: int = 30,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        _check_choice(kind, MASK_KINDS, "kind")
        accel = check_number(accel, "accel", low=1.0, low_open=True)
        # checked here, not only when the first mask is built, so a bad config fails when it is parsed
        tol = check_number(tol, "tol", low=0.0, high=accel, low_open=True, high_open=True)
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"max_iter must be a positive int, got {max_iter!r}.")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise TypeError(
                f"seed must be a non-negative int (a fixed mask; use RandUndersamplingMask for a new mask per sample), "
                f"got {seed!r}."
            )
        self.kind = kind
        self.accel = float(accel)
        self.calib = tuple(calib) if isinstance(calib, Sequence) else calib
        self.seed = seed
        self.readout_axis = readout_axis
        self.crop_corner = crop_corner
        self.tol = tol
        self.max_iter = max_iter
        self.dtype = dtype
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    def _mask_seed(self) -> int | None:
        return self.seed

    def spatial_mask(self, spatial_shape: Sequence[int]) -> np.ndarray:
        """Boolean mask over ``spatial_shape`` (no channel axis); a copy the caller may modify."""
        return self._spatial_mask(spatial_shape).copy()

    def _spatial_mask(self, spatial_shape: Sequence[int]) -> np.ndarray:
        seed = self._mask_seed()
        key = (*tuple(int(s) for s in spatial_shape), -1 if seed is None else seed)
        mask = self._cache.get(key) if seed is not None else None
        if mask is None:
            mask = undersampling_mask(
                self.kind,
                tuple(int(s) for s in spatial_shape),
                self.accel,
                self.calib,  # type: ignore[arg-type]
                seed,
                self.readout_axis,
                self.crop_corner,
                self.tol,
                self.max_iter,
            )
            if seed is not None and self._cacheable():
                mask.flags.writeable = False
                self._cache[key] = mask
        return mask

    def _cacheable(self) -> bool:
        return True

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        img = convert_to_tensor(img, track_meta=get_track_meta()) if isinstance(img, torch.Tensor) else img
        x = _plain(img)
        _check_spatial(x, (2, 3), "image")
        mask = torch.from_numpy(self.spatial_mask(tuple(x.shape[1:]))).to(device=x.device, dtype=self.dtype)[None]
        return _restore(mask, img)


class RandUndersamplingMask(Randomizable, UndersamplingMask):
    """A new undersampling mask for every sample (same arguments as :class:`UndersamplingMask`).

    Mask seeds are drawn from this transform's random state (``set_random_state``), so a pipeline is
    reproducible. With ``num_masks`` the seeds come from ``range(num_masks)``: training then cycles through a
    finite pool of masks, which are cached (a 256x256 Poisson-disc mask costs a fraction of a second to build).
    There is no ``prob``: every sample needs a mask.
    """

    def __init__(
        self,
        kind: str = "poisson",
        accel: float = 8.0,
        calib: int | Sequence[int] = 24,
        num_masks: int | None = None,
        readout_axis: int = 0,
        crop_corner: bool = True,
        tol: float = 0.1,
        max_iter: int = 30,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        UndersamplingMask.__init__(self, kind, accel, calib, 0, readout_axis, crop_corner, tol, max_iter, dtype)
        if num_masks is not None and (isinstance(num_masks, bool) or not isinstance(num_masks, int) or num_masks < 1):
            raise ValueError(f"num_masks must be None or a positive int, got {num_masks!r}.")
        self.num_masks = num_masks
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
    """Retrospective k-space undersampling of a fully sampled image (paper §4.3).

    ``target = image``; ``kspace = F(image) * mask``; ``image = F^-1(kspace)`` (the zero-filled reconstruction),
    with ``F`` MONAI's orthonormal centred FFT over every spatial axis. A mask of all ones returns the target.

    Args:
        kind, accel, calib, seed, readout_axis, crop_corner, tol, max_iter: the mask, see :class:`UndersamplingMask`
            (a fixed mask for every sample; use :class:`RandRetrospectiveUndersample` for a new mask per sample).
        image_format: representation of the zero-filled image and the target: ``"magnitude"`` ``(C', *spatial)``
            (paper), ``"real_imag"`` ``(2C', *spatial)`` or ``"complex"``.
        kspace_format: ``"complex"`` ``(C', *spatial)`` complex dtype or ``"real_imag"`` ``(2C', *spatial)``.
        input_format: ``"real"`` (each channel is a real/magnitude image) or ``"real_imag"`` (channels
            ``[real..., imag...]``); complex dtype inputs are always read as complex.

    ``__call__(img, mask=None)`` takes ``(C, *spatial)`` with 2 or 3 spatial axes (numpy, torch or MetaTensor) and
    an optional mask ``(*spatial)``, ``(1, *spatial)`` or ``(C', *spatial)`` overriding the built-in one; it returns
    an :class:`UndersampledImage` whose members have the input's container type and meta data.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
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
    ) -> None:
        self.image_format = _check_choice(image_format, IMAGE_FORMATS, "image_format")
        self.kspace_format = _check_choice(kspace_format, KSPACE_FORMATS, "kspace_format")
        self.input_format = _check_choice(input_format, INPUT_FORMATS, "input_format")
        self.masker: UndersamplingMask = UndersamplingMask(
            kind, accel, calib, seed, readout_axis, crop_corner, tol, max_iter
        )

    def __call__(self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None = None) -> UndersampledImage:
        img = convert_to_tensor(img, track_meta=get_track_meta()) if isinstance(img, torch.Tensor) else img
        plain = _plain(img)
        if not plain.is_complex() and self.input_format == "real":
            # a real image is transformed as is (MONAI's real-input FFT) instead of being promoted to complex
            ref = plain.to(torch.float64 if plain.dtype == torch.float64 else torch.float32)
        else:
            ref = to_complex(plain, self.input_format)
        _check_spatial(ref, (2, 3), "image")
        spatial = tuple(ref.shape[1:])
        if mask is None:
            m = torch.from_numpy(self.masker.spatial_mask(spatial)).to(device=ref.device, dtype=ref.real.dtype)[None]
        else:
            m = _mask_as_tensor(mask, spatial, ref.shape[0], ref)
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
            image=_restore(from_complex(zero_filled, self.image_format), img),
            target=_restore(target, img),
            kspace=_restore(kspace_out, img),
            mask=_restore(m, img),
        )


class RandRetrospectiveUndersample(Randomizable, RetrospectiveUndersample):
    """:class:`RetrospectiveUndersample` with a new mask per sample (paper §4.3 trains with one fixed pattern;
    varying it is a common augmentation). Mask seeds come from ``set_random_state``; ``num_masks`` limits them to a
    cached pool, see :class:`RandUndersamplingMask`. Other arguments as in :class:`RetrospectiveUndersample`."""

    def __init__(
        self,
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
    ) -> None:
        RetrospectiveUndersample.__init__(
            self,
            kind,
            accel,
            calib,
            0,
            readout_axis,
            crop_corner,
            tol,
            max_iter,
            image_format,
            kspace_format,
            input_format,
        )
        self.masker = RandUndersamplingMask(kind, accel, calib, num_masks, readout_axis, crop_corner, tol, max_iter)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.masker.set_random_state(state=self.R)
        return self

    def randomize(self, data: Any = None) -> None:
        self.masker.randomize()  # type: ignore[attr-defined]

    def __call__(  # type: ignore[override]
        self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None = None, randomize: bool = True
    ) -> UndersampledImage:
        if randomize and mask is None:
            self.randomize()
        return RetrospectiveUndersample.__call__(self, img, mask)


# --------------------------------------------------------------------------------------------------------------------
# k-space noise
# --------------------------------------------------------------------------------------------------------------------
def _check_level(snr_db: Any, sigma: Any) -> tuple[str, tuple[float, float]]:
    if (snr_db is None) == (sigma is None):
        raise ValueError(f"give exactly one of snr_db and sigma, got snr_db={snr_db!r}, sigma={sigma!r}.")
    name, value = ("snr_db", snr_db) if snr_db is not None else ("sigma", sigma)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        rng = (float(value), float(value))
    elif isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        rng = (float(value[0]), float(value[1]))
    else:
        raise TypeError(f"{name} must be a number or a (low, high) pair, got {value!r}.")
    if not all(math.isfinite(v) for v in rng) or rng[0] > rng[1]:
        raise ValueError(f"{name} must be finite with low <= high, got {value!r}.")
    if name == "sigma" and rng[0] < 0:
        raise ValueError(f"sigma must be non-negative, got {value!r}.")
    return name, rng


class _KspaceNoise:
    """Shared implementation of complex Gaussian k-space noise (paper §4.4, Fig. 8-9)."""

    def _setup(self, sampled_only: bool, domain: str, input_format: str) -> None:
        self.sampled_only = bool(sampled_only)
        self.domain = _check_choice(domain, ("kspace", "image"), "domain")
        self.input_format = _check_choice(input_format, INPUT_FORMATS, "input_format")
        self.noise: torch.Tensor | None = None
        self.level: float | None = None

    def _draw(self, R: np.random.RandomState, data: NdarrayOrTensor, kind: str, rng: tuple[float, float]) -> None:
        x = to_complex(data, self.input_format)
        self.level = float(R.uniform(rng[0], rng[1])) if rng[0] < rng[1] else rng[0]
        noise = R.standard_normal((2, *x.shape))
        self.noise = torch.complex(
            torch.as_tensor(noise[0], dtype=x.real.dtype), torch.as_tensor(noise[1], dtype=x.real.dtype)
        )

    def sigma_for(self, k: torch.Tensor, snr_db: float, where: torch.Tensor | None = None) -> float:
        """Per-component sigma giving ``snr_db``: ``sqrt(mean|k|^2 / (2 * 10^(snr_db / 10)))`` over ``where``."""
        power = k.abs().square()
        if where is not None:
            power = power[where.expand_as(k)]
        if power.numel() == 0:
            raise ValueError("the mask selects no k-space locations; cannot define a signal power.")
        return math.sqrt(float(power.double().mean()) / (2.0 * 10.0 ** (snr_db / 10.0)))

    def _apply(self, data: NdarrayOrTensor, kind: str, mask: NdarrayOrTensor | None) -> NdarrayOrTensor:
        if self.noise is None or self.level is None:
            raise RuntimeError("call randomize() first.")
        data = convert_to_tensor(data, track_meta=get_track_meta()) if isinstance(data, torch.Tensor) else data
        x = to_complex(data, self.input_format)
        if self.domain == "kspace" and not _plain(data).is_complex() and self.input_format == "real":
            raise TypeError(
                "domain='kspace' needs complex k-space: a complex dtype tensor or input_format='real_imag' channels."
            )
        _check_spatial(x, (1, 2, 3), "data")
        if tuple(self.noise.shape) != tuple(x.shape):
            raise ValueError(f"noise was drawn for shape {tuple(self.noise.shape)}, data is {tuple(x.shape)}.")
        k = image_to_kspace(x) if self.domain == "image" else x
        where = None
        if self.sampled_only:
            if mask is None:
                raise ValueError("sampled_only=True needs the sampling mask (mask=...).")
            where = _mask_as_tensor(mask, tuple(x.shape[1:]), x.shape[0], x) != 0
        sigma = self.sigma_for(k, self.level, where) if kind == "snr_db" else self.level
        noise = self.noise.to(k.device) * sigma
        if where is not None:
            noise = noise * where
        k = k + noise
        if self.domain == "image":
            out = kspace_to_image(k)
            # real data is read as a magnitude image, so the noisy image is the magnitude (Rician, as in MRI)
            fmt = (
                "complex"
                if _plain(data).is_complex()
                else ("magnitude" if self.input_format == "real" else "real_imag")
            )
            out = from_complex(out, fmt)
        else:
            out = k if _plain(data).is_complex() else from_complex(k, "real_imag")
        return _restore(out, data)


class KspaceGaussianNoise(Randomizable, Transform, _KspaceNoise):
    """Complex Gaussian noise in k-space at a fixed SNR or sigma, applied to every sample (paper §4.4, Fig. 8-9).

    Real and imaginary parts get independent ``N(0, sigma^2)`` noise. With ``snr_db`` the per-component sigma is
    ``sqrt(P / (2 * 10^(snr_db / 10)))`` where ``P`` is the mean ``|k|^2`` of the sample (all channels; only the
    sampled locations when ``sampled_only``), so ``10 log10(P / E|n|^2) = snr_db`` (REFERENCE §7). Because the FFT is
    orthonormal, the same sigma is the image-domain noise level.

    Args:
        snr_db: target SNR in dB (exclusive with ``sigma``).
        sigma: per-component noise standard deviation (exclusive with ``snr_db``).
        sampled_only: add noise only where ``mask != 0`` (noise of an undersampled acquisition); then the mask
            must be passed at call time and the SNR refers to the sampled locations.
        domain: ``"kspace"``: the input is centred k-space (complex dtype or ``real_imag`` channels), returned in
            the same representation. ``"image"``: the input is an image; it is transformed to k-space, noised and
            transformed back; real images (``input_format="real"``) are returned as the magnitude of the noisy
            image (Rician statistics, like MR magnitude images), ``real_imag`` / complex in their own format.
        input_format: how real inputs are read, see :func:`to_complex`.

    ``__call__(data, mask=None, randomize=True)``: data ``(C, *spatial)`` with 1-3 spatial axes; mask
    ``(*spatial)`` / ``(1, *spatial)`` / ``(C', *spatial)``. The noise comes from ``self.R`` (``set_random_state``).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        snr_db: float | None = None,
        sigma: float | None = None,
        sampled_only: bool = False,
        domain: str = "kspace",
        input_format: str = "real",
    ) -> None:
        self.kind, rng = _check_level(snr_db, sigma)
        if rng[0] != rng[1]:
            raise ValueError("KspaceGaussianNoise takes a single level; use RandKspaceGaussianNoise for a range.")
        self.range = rng
        self._setup(sampled_only, domain, input_format)

    def randomize(self, data: NdarrayOrTensor) -> None:
        self._draw(self.R, data, self.kind, self.range)

    def __call__(
        self, data: NdarrayOrTensor, mask: NdarrayOrTensor | None = None, randomize: bool = True
    ) -> NdarrayOrTensor:
        if randomize:
            self.randomize(data)
        return self._apply(data, self.kind, mask)


class RandKspaceGaussianNoise(RandomizableTransform, _KspaceNoise):
    """:class:`KspaceGaussianNoise` applied with probability ``prob``, the level drawn uniformly from a range.

    Args:
        prob: probability of adding noise.
        snr_db: SNR in dB, a number or a ``(low, high)`` range (exclusive with ``sigma``).
        sigma: per-component standard deviation, a number or a ``(low, high)`` range.
        sampled_only, domain, input_format: see :class:`KspaceGaussianNoise`.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        prob: float = 0.1,
        snr_db: float | Sequence[float] | None = None,
        sigma: float | Sequence[float] | None = None,
        sampled_only: bool = False,
        domain: str = "kspace",
        input_format: str = "real",
    ) -> None:
        RandomizableTransform.__init__(self, check_probability(prob))
        self.kind, self.range = _check_level(snr_db, sigma)
        self._setup(sampled_only, domain, input_format)

    def randomize(self, data: NdarrayOrTensor) -> None:
        super().randomize(None)
        if self._do_transform:
            self._draw(self.R, data, self.kind, self.range)

    def __call__(
        self, data: NdarrayOrTensor, mask: NdarrayOrTensor | None = None, randomize: bool = True
    ) -> NdarrayOrTensor:
        if randomize:
            self.randomize(data)
        if not self._do_transform:
            return convert_to_tensor(data, track_meta=get_track_meta()) if isinstance(data, torch.Tensor) else data
        return self._apply(data, self.kind, mask)
