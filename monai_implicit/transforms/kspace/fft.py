"""Complex data representations and the centred orthonormal FFT that every k-space transform uses.

Conventions (shared with :mod:`monai.data.fft_utils`, which does every transform here):

* images are channel-first ``(C, *spatial)``;
* k-space is *centred* (DC at index ``n // 2`` of each axis) and the FFT is orthonormal, so
  ``sum |image|^2 == sum |kspace|^2`` and SNRs are the same in both domains;
* complex data is either a complex dtype tensor or, with ``"real_imag"``, real channels
  ``[real_0, ..., real_{C-1}, imag_0, ..., imag_{C-1}]`` (``torch.cat([x.real, x.imag], 0)``).

These are the data conventions of the CS-MRI experiment of "Hyper-Convolutions via Implicit Kernels for Medical
Imaging" (Ma, Wang, Dalca, Sabuncu), Sec. 4.3.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.config.type_definitions import NdarrayOrTensor
from monai.data.fft_utils import fftn_centered, ifftn_centered

from monai_implicit.transforms.utils import plain_tensor
from monai_implicit.utils import check_option

__all__ = [
    "IMAGE_FORMATS",
    "KSPACE_FORMATS",
    "INPUT_FORMATS",
    "to_complex",
    "from_complex",
    "image_to_kspace",
    "kspace_to_image",
]

IMAGE_FORMATS = ("magnitude", "real_imag", "complex")
KSPACE_FORMATS = ("complex", "real_imag")
INPUT_FORMATS = ("real", "real_imag")


def check_spatial(x: torch.Tensor, spatial_dims: Sequence[int], what: str) -> int:
    """Number of spatial axes of a channel-first ``x``, or a ValueError saying which counts are accepted."""
    d = x.ndim - 1
    if d not in spatial_dims:
        raise ValueError(
            f"{what} must be channel-first with {' or '.join(map(str, spatial_dims))} spatial dims, i.e. "
            f"{' or '.join(str(s + 1) for s in spatial_dims)} dims in total; got shape {tuple(x.shape)}."
        )
    return d


def mask_tensor(mask: NdarrayOrTensor, spatial: tuple[int, ...], channels: int, like: torch.Tensor) -> torch.Tensor:
    """A sampling mask ``(*spatial)``, ``(1, *spatial)`` or ``(channels, *spatial)`` as a channel-first real tensor
    on the device and in the real dtype of ``like``."""
    m = plain_tensor(mask)
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


def to_complex(data: NdarrayOrTensor, input_format: str = "real") -> torch.Tensor:
    """Channel-first data as a complex tensor ``(C', *spatial)``.

    Args:
        data: ``(C, *spatial)`` complex dtype (used as is), or real with ``input_format`` "real" (every channel
            is a real-valued image, C' = C) or "real_imag" (C even, channels ``[real..., imag...]``, C' = C / 2).
        input_format: how to read real data, one of :data:`INPUT_FORMATS`.
    """
    input_format = check_option(input_format, INPUT_FORMATS, "input_format")
    x = plain_tensor(data)
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
    fmt = check_option(fmt, IMAGE_FORMATS, "format")
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
