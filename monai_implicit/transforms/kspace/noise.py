"""Complex Gaussian noise in k-space (array transforms).

Implements the robustness test of the CS-MRI experiment of "Hyper-Convolutions via Implicit Kernels for Medical
Imaging" (Ma, Wang, Dalca, Sabuncu), Sec. 4.4, Fig. 8-9: complex Gaussian noise added to the acquired k-space at a
given SNR. :class:`RandKspaceGaussianNoise` follows MONAI's ``Rand*(prob=...)`` pattern; :class:`KspaceGaussianNoise`
is its fixed-level twin (a single level, applied to every sample).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms.transform import RandomizableTransform

from monai_implicit.transforms.noise.array import NoiseTransform, as_range, draw_level
from monai_implicit.transforms.utils import ensure_tracked, plain_tensor, restore_container
from monai_implicit.utils import check_option, check_probability

from .fft import INPUT_FORMATS, check_spatial, from_complex, image_to_kspace, kspace_to_image, mask_tensor, to_complex

__all__ = ["KspaceGaussianNoise", "RandKspaceGaussianNoise"]


def _check_level(snr_db: Any, sigma: Any) -> tuple[str, tuple[float, float]]:
    """``("snr_db" | "sigma", (low, high))`` from the one of the two levels that is given."""
    if (snr_db is None) == (sigma is None):
        raise ValueError(f"give exactly one of snr_db and sigma, got snr_db={snr_db!r}, sigma={sigma!r}.")
    if snr_db is not None:
        return "snr_db", as_range(snr_db, "snr_db", -math.inf, math.inf)
    return "sigma", as_range(sigma, "sigma", 0.0, math.inf)


class RandKspaceGaussianNoise(NoiseTransform):
    """Complex Gaussian noise in k-space with probability ``prob``, the level drawn uniformly from a range
    ("Hyper-Convolutions via Implicit Kernels for Medical Imaging", Sec. 4.4, Fig. 8-9).

    Real and imaginary parts get independent ``N(0, sigma^2)`` noise. With ``snr_db`` the per-component sigma is
    ``sqrt(P / (2 * 10^(snr_db / 10)))`` where ``P`` is the mean ``|k|^2`` of the sample (all channels; only the
    sampled locations when ``sampled_only``), so ``10 log10(P / E|n|^2) = snr_db``. Because the FFT is orthonormal,
    the same sigma is the image-domain noise level.

    Args:
        prob: probability of adding noise.
        snr_db: SNR in dB, a number or a ``(low, high)`` range (exclusive with ``sigma``).
        sigma: per-component standard deviation, a number or a ``(low, high)`` range (exclusive with ``snr_db``).
        sampled_only: add noise only where ``mask != 0`` (noise of an undersampled acquisition); then the mask
            must be passed at call time and the SNR refers to the sampled locations.
        domain: ``"kspace"``: the input is centred k-space (complex dtype or ``real_imag`` channels), returned in
            the same representation. ``"image"``: the input is an image; it is transformed to k-space, noised and
            transformed back; real images (``input_format="real"``) are returned as the magnitude of the noisy
            image (Rician statistics, like MR magnitude images), ``real_imag`` / complex in their own format.
        input_format: how real inputs are read, see :func:`~.fft.to_complex`.

    ``__call__(data, mask=None, randomize=True)``: data ``(C, *spatial)`` with 1-3 spatial axes; mask
    ``(*spatial)`` / ``(1, *spatial)`` / ``(C', *spatial)``. The noise comes from ``self.R`` (``set_random_state``).
    """

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
        self.sampled_only = bool(sampled_only)
        self.domain = check_option(domain, ("kspace", "image"), "domain")
        self.input_format = check_option(input_format, INPUT_FORMATS, "input_format")
        self.noise: torch.Tensor | None = None
        self.level: float | None = None

    def _draw_noise(self, data: NdarrayOrTensor) -> None:
        x = to_complex(data, self.input_format)
        self.level = draw_level(self.R, self.range)
        noise = self.R.standard_normal((2, *x.shape))
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

    def _apply(self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None = None, **kwargs: Any) -> NdarrayOrTensor:
        if self.noise is None or self.level is None:
            raise RuntimeError("call randomize() first.")
        data = ensure_tracked(img)
        is_complex = plain_tensor(data).is_complex()
        x = to_complex(data, self.input_format)
        if self.domain == "kspace" and not is_complex and self.input_format == "real":
            raise TypeError(
                "domain='kspace' needs complex k-space: a complex dtype tensor or input_format='real_imag' channels."
            )
        check_spatial(x, (1, 2, 3), "data")
        if tuple(self.noise.shape) != tuple(x.shape):
            raise ValueError(f"noise was drawn for shape {tuple(self.noise.shape)}, data is {tuple(x.shape)}.")
        k = image_to_kspace(x) if self.domain == "image" else x
        where = None
        if self.sampled_only:
            if mask is None:
                raise ValueError("sampled_only=True needs the sampling mask (mask=...).")
            where = mask_tensor(mask, tuple(x.shape[1:]), x.shape[0], x) != 0
        sigma = self.sigma_for(k, self.level, where) if self.kind == "snr_db" else self.level
        noise = self.noise.to(k.device) * sigma
        if where is not None:
            noise = noise * where
        k = k + noise
        if self.domain == "image":
            # real data is read as a magnitude image, so the noisy image is the magnitude (Rician, as in MRI)
            fmt = "complex" if is_complex else ("magnitude" if self.input_format == "real" else "real_imag")
            out = from_complex(kspace_to_image(k), fmt)
        else:
            out = k if is_complex else from_complex(k, "real_imag")
        return restore_container(out, data)

    def __call__(  # type: ignore[override]
        self, data: NdarrayOrTensor, mask: NdarrayOrTensor | None = None, randomize: bool = True
    ) -> NdarrayOrTensor:
        return self._noised(data, randomize, mask=mask)


class KspaceGaussianNoise(RandKspaceGaussianNoise):
    """Complex Gaussian noise in k-space at a fixed SNR or sigma (a single number), applied to every sample:
    :class:`RandKspaceGaussianNoise` with ``prob=1`` and a fixed level (same arguments but ``prob``)."""

    fixed = True

    def __init__(
        self,
        snr_db: float | None = None,
        sigma: float | None = None,
        sampled_only: bool = False,
        domain: str = "kspace",
        input_format: str = "real",
    ) -> None:
        low, high = _check_level(snr_db, sigma)[1]
        if low != high:
            raise ValueError("KspaceGaussianNoise takes a single level; use RandKspaceGaussianNoise for a range.")
        super().__init__(1.0, snr_db, sigma, sampled_only, domain, input_format)
