"""Image-domain noise for robustness studies (Hyper-Convolution paper, seed 000, §4.4 and Fig. 6).

The paper trains on clean images and evaluates on images corrupted by salt-and-pepper, Gaussian and speckle noise
(segmentation) and by Gaussian noise in k-space (reconstruction). Which transform to use for what:

======================  ============================================================================================
noise                   transform
======================  ============================================================================================
salt and pepper         :class:`SaltPepperNoise` / :class:`RandSaltPepperNoise` (this module): impulse noise, a
                        fraction ``amount`` of voxels set to the image max (salt) or min (pepper).
speckle                 :class:`SpeckleNoise` / :class:`RandSpeckleNoise` (this module): multiplicative
                        ``img + img * n``, ``n ~ N(mean, std^2)`` (ultrasound / coherent imaging).
additive Gaussian       MONAI ``RandGaussianNoise(prob=1.0, std=s, sample_std=False)`` for an exact ``std``
                        (its default ``sample_std=True`` draws the std uniformly in ``[0, s]``). Note
                        ``skimage.util.random_noise`` takes a *variance*: ``std = sqrt(var)``.
MR magnitude (Rician)   MONAI ``RandRicianNoise(prob=1.0, std=s, sample_std=False)``: ``|img + n1 + i n2|``, the
                        noise of magnitude MR images at low SNR.
k-space Gaussian        :class:`~monai_implicit.transforms.kspace.array.KspaceGaussianNoise`: complex noise at a
                        target SNR in dB, optionally on the sampled k-space locations only (paper Fig. 8-9).
======================  ============================================================================================

Semantics follow ``skimage.util.random_noise`` (REFERENCE §7); randomness comes from each transform's own
``numpy.random.RandomState`` (``set_random_state``), never from global random states. Inputs are channel-first
arrays of any spatial dimensionality; numpy in -> numpy out, torch in -> torch out, MetaTensor meta data is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.config.type_definitions import NdarrayOrTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms.transform import Randomizable, RandomizableTransform, Transform
from monai.utils.enums import TransformBackends
from monai.utils.type_conversion import convert_to_dst_type, convert_to_tensor

from monai_implicit.utils import check_probability

__all__ = ["SaltPepperNoise", "RandSaltPepperNoise", "SpeckleNoise", "RandSpeckleNoise"]


def _as_range(value: Any, name: str, low: float, high: float) -> tuple[float, float]:
    """A number (fixed) or a ``(low, high)`` pair (uniform range), validated against ``[low, high]``."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        rng = (float(value), float(value))
    elif (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in value)
    ):
        rng = (float(value[0]), float(value[1]))
    else:
        raise TypeError(f"{name} must be a number or a (low, high) pair, got {value!r}.")
    if not all(math.isfinite(v) for v in rng) or rng[0] > rng[1] or rng[0] < low or rng[1] > high:
        raise ValueError(f"{name} must lie in [{low}, {high}] with low <= high, got {value!r}.")
    return rng


def _as_number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, Sequence) and not isinstance(value, str):
        raise TypeError(f"{name} must be a single number here (the Rand* variant takes ranges), got {value!r}.")
    return _as_range(value, name, low, high)[0]


def _check_image(img: NdarrayOrTensor) -> tuple[NdarrayOrTensor, torch.Tensor]:
    img = convert_to_tensor(img, track_meta=get_track_meta()) if isinstance(img, torch.Tensor) else img
    t = convert_to_tensor(img, track_meta=False)
    if not isinstance(t, torch.Tensor) or t.ndim < 2:
        raise ValueError(
            f"expected a channel-first image (C, *spatial) with at least one spatial axis, got "
            f"{type(img).__name__} of shape {tuple(getattr(img, 'shape', ()))}."
        )
    if t.is_complex():
        raise TypeError("image noise expects a real-valued image; for complex data use KspaceGaussianNoise.")
    return img, t


def _draw(R: np.random.RandomState, rng: tuple[float, float]) -> float:
    return float(R.uniform(*rng)) if rng[0] < rng[1] else rng[0]


class _SaltPepper:
    def _setup(self, salt: float | None, pepper: float | None) -> None:
        for name, v in (("salt", salt), ("pepper", pepper)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise TypeError(f"{name} must be None or a finite number, got {v!r}.")
        self.salt = salt
        self.pepper = pepper
        self._u: np.ndarray | None = None
        self._amount: float | None = None
        self._svp: float | None = None

    def _check_representable(self, dtype: torch.dtype) -> None:
        """Refuse a ``salt`` / ``pepper`` value that the image dtype cannot hold.

        The output keeps the input dtype, and casting an out-of-range value wraps around (``salt=300`` on a uint8
        image becomes 44) or truncates (``0.5`` becomes 0): the noise would silently not be what was asked for.  The
        value is refused rather than clipped, since a clipped salt is a different noise model.
        """
        if dtype == torch.bool:
            return
        if dtype.is_floating_point:
            info_f = torch.finfo(dtype)
            low, high, integral = float(info_f.min), float(info_f.max), False
        else:
            info_i = torch.iinfo(dtype)
            low, high, integral = float(info_i.min), float(info_i.max), True
        for name, value in (("salt", self.salt), ("pepper", self.pepper)):
            if value is None:
                continue
            if not low <= value <= high or (integral and float(value) != math.floor(value)):
                kind = "integers" if integral else "values"
                raise ValueError(
                    f"{name}={value!r} cannot be stored in a {str(dtype).replace('torch.', '')} image ({kind} in "
                    f"[{low:g}, {high:g}]); pass a representable {name}, None (the channel's "
                    f"{'maximum' if name == 'salt' else 'minimum'}), or convert the image to float first."
                )

    def _apply(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        if self._u is None or self._amount is None or self._svp is None:
            raise RuntimeError("call randomize() first.")
        img, t = _check_image(img)
        if tuple(self._u.shape) != tuple(t.shape):
            raise ValueError(f"noise was drawn for shape {tuple(self._u.shape)}, image is {tuple(t.shape)}.")
        u = torch.as_tensor(self._u, device=t.device)
        # one uniform draw per voxel: u < amount * svp -> salt, amount * svp <= u < amount -> pepper, so a voxel
        # is replaced with probability `amount` and is salt with probability `salt_vs_pepper` given replacement
        salt_sel = u < self._amount * self._svp
        pepper_sel = (u < self._amount) & ~salt_sel
        self._check_representable(t.dtype)
        reduce_dims = tuple(range(1, t.ndim))
        view = (-1,) + (1,) * (t.ndim - 1)
        hi = torch.amax(t, dim=reduce_dims).view(view) if self.salt is None else torch.tensor(self.salt)
        lo = torch.amin(t, dim=reduce_dims).view(view) if self.pepper is None else torch.tensor(self.pepper)
        out = torch.where(salt_sel, hi.to(t), torch.where(pepper_sel, lo.to(t), t))
        restored, *_ = convert_to_dst_type(out, dst=img, dtype=out.dtype)
        return restored


class SaltPepperNoise(Randomizable, Transform, _SaltPepper):
    """Salt-and-pepper (impulse) noise at a fixed amount, applied to every image (paper §4.4, Fig. 6).

    Each element of ``img`` (every channel independently, as ``skimage.util.random_noise(mode="s&p")``) is replaced
    with probability ``amount``; a replaced element becomes ``salt`` with probability ``salt_vs_pepper`` and
    ``pepper`` otherwise.

    Args:
        amount: expected fraction of replaced elements, in [0, 1].
        salt_vs_pepper: fraction of replaced elements set to ``salt``, in [0, 1].
        salt: value of salt; None (default) uses the maximum of each channel (not 1, which is only right for
            images scaled to [0, 1]).  The output keeps the image dtype, so a value that dtype cannot hold (e.g.
            300 or 0.5 for uint8) raises a ValueError when the image is noised: it is refused, not clipped.
        pepper: value of pepper; None uses the minimum of each channel (same dtype rule as ``salt``).

    ``__call__(img, randomize=True)``: ``img`` ``(C, *spatial)`` real; returns the same shape, dtype and container.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self, amount: float = 0.05, salt_vs_pepper: float = 0.5, salt: float | None = None, pepper: float | None = None
    ) -> None:
        self.amount = _as_number(amount, "amount", 0.0, 1.0)
        self.salt_vs_pepper = _as_number(salt_vs_pepper, "salt_vs_pepper", 0.0, 1.0)
        self._setup(salt, pepper)

    def randomize(self, data: NdarrayOrTensor) -> None:
        self._u = self.R.random_sample(tuple(data.shape))
        self._amount, self._svp = self.amount, self.salt_vs_pepper

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        if randomize:
            self.randomize(img)
        return self._apply(img)


class RandSaltPepperNoise(RandomizableTransform, _SaltPepper):
    """Salt-and-pepper noise with probability ``prob``; ``amount`` and ``salt_vs_pepper`` are numbers or
    ``(low, high)`` ranges drawn uniformly per call. Other arguments as :class:`SaltPepperNoise`."""

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        prob: float = 0.1,
        amount: float | Sequence[float] = (0.0, 0.05),
        salt_vs_pepper: float | Sequence[float] = 0.5,
        salt: float | None = None,
        pepper: float | None = None,
    ) -> None:
        RandomizableTransform.__init__(self, check_probability(prob))
        self.amount = _as_range(amount, "amount", 0.0, 1.0)
        self.salt_vs_pepper = _as_range(salt_vs_pepper, "salt_vs_pepper", 0.0, 1.0)
        self._setup(salt, pepper)

    def randomize(self, data: NdarrayOrTensor) -> None:
        super().randomize(None)
        if self._do_transform:
            self._amount, self._svp = _draw(self.R, self.amount), _draw(self.R, self.salt_vs_pepper)
            self._u = self.R.random_sample(tuple(data.shape))

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        if randomize:
            self.randomize(img)
        if not self._do_transform:
            return convert_to_tensor(img, track_meta=get_track_meta()) if isinstance(img, torch.Tensor) else img
        return self._apply(img)


class _Speckle:
    def _setup(self) -> None:
        self._n: np.ndarray | None = None

    def _apply(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        if self._n is None:
            raise RuntimeError("call randomize() first.")
        img, t = _check_image(img)
        if tuple(self._n.shape) != tuple(t.shape):
            raise ValueError(f"noise was drawn for shape {tuple(self._n.shape)}, image is {tuple(t.shape)}.")
        if not t.is_floating_point():
            t = t.to(torch.float32)
        n = torch.as_tensor(self._n, device=t.device, dtype=t.dtype)
        out = t + t * n
        restored, *_ = convert_to_dst_type(out, dst=img, dtype=out.dtype)
        return restored


class SpeckleNoise(Randomizable, Transform, _Speckle):
    """Multiplicative speckle noise ``img + img * n``, ``n ~ N(mean, std^2)`` i.i.d. per element, applied to every
    image (paper §4.4, Fig. 6; ``skimage.util.random_noise(mode="speckle", var=std**2)``).

    Args:
        std: standard deviation of ``n`` (>= 0), i.e. the relative standard deviation of the noisy intensities.
        mean: mean of ``n``.

    ``__call__(img, randomize=True)``: ``img`` ``(C, *spatial)`` real (integers are promoted to float32).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, std: float = 0.1, mean: float = 0.0) -> None:
        self.std = _as_number(std, "std", 0.0, math.inf)
        self.mean = _as_number(mean, "mean", -math.inf, math.inf)
        self._setup()

    def randomize(self, data: NdarrayOrTensor) -> None:
        self._n = self.R.normal(self.mean, self.std, size=tuple(data.shape))

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        if randomize:
            self.randomize(img)
        return self._apply(img)


class RandSpeckleNoise(RandomizableTransform, _Speckle):
    """Speckle noise with probability ``prob``; ``std`` is a number or a ``(low, high)`` range drawn uniformly per
    call. Other arguments as :class:`SpeckleNoise`."""

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, prob: float = 0.1, std: float | Sequence[float] = (0.0, 0.1), mean: float = 0.0) -> None:
        RandomizableTransform.__init__(self, check_probability(prob))
        self.std = _as_range(std, "std", 0.0, math.inf)
        self.mean = _as_number(mean, "mean", -math.inf, math.inf)
        self._setup()

    def randomize(self, data: NdarrayOrTensor) -> None:
        super().randomize(None)
        if self._do_transform:
            std = _draw(self.R, self.std)
            self._n = self.R.normal(self.mean, std, size=tuple(data.shape))

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        if randomize:
            self.randomize(img)
        if not self._do_transform:
            return convert_to_tensor(img, track_meta=get_track_meta()) if isinstance(img, torch.Tensor) else img
        return self._apply(img)
