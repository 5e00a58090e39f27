"""Image-domain noise for robustness studies ("Hyper-Convolutions via Implicit Kernels for Medical Imaging", Sec. 4.4
and Fig. 6).

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
k-space Gaussian        :class:`~monai_implicit.transforms.kspace.noise.KspaceGaussianNoise`: complex noise at a
                        target SNR in dB, optionally on the sampled k-space locations only (paper Fig. 8-9).
======================  ============================================================================================

Semantics follow ``skimage.util.random_noise``; randomness comes from each transform's own
``numpy.random.RandomState`` (``set_random_state``), never from global random states. Inputs are channel-first
arrays of any spatial dimensionality; numpy in -> numpy out, torch in -> torch out, MetaTensor meta data is kept.

Every transform follows MONAI's ``Rand*(prob=...)`` pattern (:class:`NoiseTransform`); the fixed-level classes
(``SaltPepperNoise``, ``SpeckleNoise``, and ``KspaceGaussianNoise``) are their ``Rand*`` twin with a single level,
applied to every input: they draw no ``prob`` decision, only the noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms.transform import RandomizableTransform
from monai.utils.enums import TransformBackends

from monai_implicit.transforms.utils import ensure_tracked, plain_tensor, restore_container
from monai_implicit.utils import check_probability, is_real

__all__ = ["SaltPepperNoise", "RandSaltPepperNoise", "SpeckleNoise", "RandSpeckleNoise"]


def as_range(value: Any, name: str, low: float, high: float) -> tuple[float, float]:
    """A number (fixed) or a ``(low, high)`` pair (uniform range), validated against ``[low, high]``."""
    if is_real(value):
        rng = (float(value), float(value))
    elif (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(is_real(v) for v in value)
    ):
        rng = (float(value[0]), float(value[1]))
    else:
        raise TypeError(f"{name} must be a number or a (low, high) pair, got {value!r}.")
    if not all(math.isfinite(v) for v in rng) or rng[0] > rng[1] or rng[0] < low or rng[1] > high:
        raise ValueError(f"{name} must be finite and lie in [{low}, {high}] with low <= high, got {value!r}.")
    return rng


def as_number(value: Any, name: str, low: float, high: float) -> float:
    """A single number in ``[low, high]``: the level of a fixed-level transform (its ``Rand*`` twin takes ranges)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        raise TypeError(f"{name} must be a single number here (the Rand* variant takes ranges), got {value!r}.")
    return as_range(value, name, low, high)[0]


def draw_level(R: np.random.RandomState, rng: tuple[float, float]) -> float:
    """A level drawn uniformly from ``rng``; a fixed level (``low == high``) draws nothing from ``R``."""
    return float(R.uniform(*rng)) if rng[0] < rng[1] else rng[0]


def _check_image(img: NdarrayOrTensor) -> tuple[NdarrayOrTensor, torch.Tensor]:
    img = ensure_tracked(img)
    t = plain_tensor(img)
    if t.ndim < 2:
        raise ValueError(
            f"expected a channel-first image (C, *spatial) with at least one spatial axis, got "
            f"{type(img).__name__} of shape {tuple(getattr(img, 'shape', ()))}."
        )
    if t.is_complex():
        raise TypeError("image noise expects a real-valued image; for complex data use KspaceGaussianNoise.")
    return img, t


class NoiseTransform(RandomizableTransform):
    """MONAI's ``Rand*(prob=...)`` pattern for the noise transforms of this package.

    ``randomize(data)`` decides with probability ``prob`` whether to add noise and, if so, draws it for ``data``
    (:meth:`_draw_noise`); ``__call__`` then applies it (:meth:`_apply`) or returns the input unchanged.

    A fixed-level twin (``SaltPepperNoise`` for ``RandSaltPepperNoise``...) is the same class with a single level
    and ``fixed = True``: it is applied to every input and draws no ``prob`` decision from the random state, so a
    given seed gives the same noise as a transform that never had a ``prob``.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]
    fixed: bool = False

    def _draw_noise(self, data: NdarrayOrTensor) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _draw_noise().")

    def _apply(self, img: NdarrayOrTensor, **kwargs: Any) -> NdarrayOrTensor:
        raise NotImplementedError(f"{type(self).__name__} must implement _apply().")

    def randomize(self, data: NdarrayOrTensor) -> None:
        if self.fixed:
            self._do_transform = True
        else:
            super().randomize(None)
        if self._do_transform:
            self._draw_noise(data)

    def _noised(self, img: NdarrayOrTensor, randomize: bool, **kwargs: Any) -> NdarrayOrTensor:
        if randomize:
            self.randomize(img)
        if not self._do_transform:
            return ensure_tracked(img)
        return self._apply(img, **kwargs)

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        return self._noised(img, randomize)


class RandSaltPepperNoise(NoiseTransform):
    """Salt-and-pepper (impulse) noise with probability ``prob`` ("Hyper-Convolutions via Implicit Kernels for
    Medical Imaging", Sec. 4.4, Fig. 6).

    Each element of ``img`` (every channel independently, as ``skimage.util.random_noise(mode="s&p")``) is replaced
    with probability ``amount``; a replaced element becomes ``salt`` with probability ``salt_vs_pepper`` and
    ``pepper`` otherwise.

    Args:
        prob: probability of adding noise.
        amount: expected fraction of replaced elements, in [0, 1]: a number or a ``(low, high)`` range drawn
            uniformly per call.
        salt_vs_pepper: fraction of replaced elements set to ``salt``, in [0, 1]: a number or a range.
        salt: value of salt; None (default) uses the maximum of each channel (not 1, which is only right for
            images scaled to [0, 1]).  The output keeps the image dtype, so a value that dtype cannot hold (e.g.
            300 or 0.5 for uint8) raises a ValueError when the image is noised: it is refused, not clipped.
        pepper: value of pepper; None uses the minimum of each channel (same dtype rule as ``salt``).

    ``__call__(img, randomize=True)``: ``img`` ``(C, *spatial)`` real; returns the same shape, dtype and container.
    """

    def __init__(
        self,
        prob: float = 0.1,
        amount: float | Sequence[float] = (0.0, 0.05),
        salt_vs_pepper: float | Sequence[float] = 0.5,
        salt: float | None = None,
        pepper: float | None = None,
    ) -> None:
        RandomizableTransform.__init__(self, check_probability(prob))
        self.amount = as_range(amount, "amount", 0.0, 1.0)
        self.salt_vs_pepper = as_range(salt_vs_pepper, "salt_vs_pepper", 0.0, 1.0)
        for name, v in (("salt", salt), ("pepper", pepper)):
            if v is not None and (not is_real(v) or not math.isfinite(v)):
                raise TypeError(f"{name} must be None or a finite number, got {v!r}.")
        self.salt = salt
        self.pepper = pepper
        self._u: np.ndarray | None = None
        self._amount: float | None = None
        self._svp: float | None = None

    def _draw_noise(self, data: NdarrayOrTensor) -> None:
        self._amount, self._svp = draw_level(self.R, self.amount), draw_level(self.R, self.salt_vs_pepper)
        self._u = self.R.random_sample(tuple(data.shape))

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

    def _apply(self, img: NdarrayOrTensor, **kwargs: Any) -> NdarrayOrTensor:
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
        return restore_container(out, img)


class SaltPepperNoise(RandSaltPepperNoise):
    """Salt-and-pepper noise at a fixed ``amount`` and ``salt_vs_pepper`` (single numbers), applied to every image:
    :class:`RandSaltPepperNoise` with ``prob=1`` and fixed levels. Other arguments as there."""

    fixed = True

    def __init__(
        self, amount: float = 0.05, salt_vs_pepper: float = 0.5, salt: float | None = None, pepper: float | None = None
    ) -> None:
        super().__init__(
            1.0, as_number(amount, "amount", 0.0, 1.0), as_number(salt_vs_pepper, "salt_vs_pepper", 0.0, 1.0),
            salt, pepper,
        )  # fmt: skip


class RandSpeckleNoise(NoiseTransform):
    """Multiplicative speckle noise ``img + img * n``, ``n ~ N(mean, std^2)`` i.i.d. per element, with probability
    ``prob`` ("Hyper-Convolutions via Implicit Kernels for Medical Imaging", Sec. 4.4, Fig. 6;
    ``skimage.util.random_noise(mode="speckle", var=std**2)``).

    Args:
        prob: probability of adding noise.
        std: standard deviation of ``n`` (>= 0), i.e. the relative standard deviation of the noisy intensities: a
            number or a ``(low, high)`` range drawn uniformly per call.
        mean: mean of ``n``.

    ``__call__(img, randomize=True)``: ``img`` ``(C, *spatial)`` real (integers are promoted to float32).
    """

    def __init__(self, prob: float = 0.1, std: float | Sequence[float] = (0.0, 0.1), mean: float = 0.0) -> None:
        RandomizableTransform.__init__(self, check_probability(prob))
        self.std = as_range(std, "std", 0.0, math.inf)
        self.mean = as_number(mean, "mean", -math.inf, math.inf)
        self._n: np.ndarray | None = None

    def _draw_noise(self, data: NdarrayOrTensor) -> None:
        self._n = self.R.normal(self.mean, draw_level(self.R, self.std), size=tuple(data.shape))

    def _apply(self, img: NdarrayOrTensor, **kwargs: Any) -> NdarrayOrTensor:
        if self._n is None:
            raise RuntimeError("call randomize() first.")
        img, t = _check_image(img)
        if tuple(self._n.shape) != tuple(t.shape):
            raise ValueError(f"noise was drawn for shape {tuple(self._n.shape)}, image is {tuple(t.shape)}.")
        if not t.is_floating_point():
            t = t.to(torch.float32)
        n = torch.as_tensor(self._n, device=t.device, dtype=t.dtype)
        return restore_container(t + t * n, img)


class SpeckleNoise(RandSpeckleNoise):
    """Speckle noise at a fixed ``std`` (a single number), applied to every image: :class:`RandSpeckleNoise` with
    ``prob=1`` and a fixed level. Other arguments as there."""

    fixed = True

    def __init__(self, std: float = 0.1, mean: float = 0.0) -> None:
        super().__init__(1.0, as_number(std, "std", 0.0, math.inf), mean)
