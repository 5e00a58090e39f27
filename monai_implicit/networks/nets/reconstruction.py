"""Reconstruction wrappers for MRI: a residual branch and the data-consistency step.

* :class:`ResidualReconstruction` wraps an image-to-image network as ``x + gain * network(x)`` with ``gain``
  starting at 0, so that training starts from the zero-filled input and only learns the aliasing artefact
  (residual learning, standard in CS-MRI networks; zero-initialised branch as in SkipInit / ReZero).
* :func:`data_consistency` and :class:`DataConsistency` implement the data-consistency step of cascaded CNNs
  ("A Deep Cascade of Convolutional Neural Networks for MR Image Reconstruction", Schlemper et al.) and variational
  networks ("Learning a Variational Network for Reconstruction of Accelerated MRI Data", Hammernik et al.): the
  network's image is transformed to k-space, the *measured* samples replace the network's where the mask is 1
  (noiseless case, hard data consistency) or are averaged with them, ``(k_net + lam * k_meas) / (1 + lam)``
  (noisy case, soft data consistency with a learnable ``lam >= 0``; ``lam -> inf`` is the hard replacement), and
  the result is transformed back.  A reconstruction with hard data consistency cannot contradict what was measured.

Conventions (those of :class:`monai_implicit.transforms.RetrospectiveUndersampled`, so the measured samples it
writes are matched exactly): k-space is *centred* (DC at index ``n // 2`` of every spatial axis) and the FFT is
orthonormal over every spatial axis (MONAI's ``fftn_centered_t`` / ``ifftn_centered_t``).
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from monai.networks.blocks.fft_utils_t import fftn_centered_t, ifftn_centered_t
from torch import nn

from monai_implicit.kernels.grids import check_spatial_dims
from monai_implicit.utils import check_ints, check_number, is_real

__all__ = ["ResidualReconstruction", "DataConsistency", "data_consistency"]


class ResidualReconstruction(nn.Module):
    """``y = x + gain * network(x)`` with a learnable scalar ``gain`` initialised to ``init_gain`` (0 by default).

    With ``gain = 0`` the initial output is exactly the zero-filled input, so the untrained model already scores the
    zero-filled PSNR and every optimizer step that lowers the MSE improves on it (zero-initialised residual branch,
    as in SkipInit / ReZero).  The wrapped network (e.g. a HyperUNet or its PlainUNet twin) is unchanged, so
    :func:`monai_implicit.networks.utils.bake` and TorchScript export work through the wrapper.

    Args:
        network: an image-to-image network with as many output channels as input channels.
        init_gain: initial value of ``gain``.

    Shapes: ``(B, C, *S) -> (B, C, *S)``.
    """

    def __init__(self, network: nn.Module, init_gain: float = 0.0) -> None:
        super().__init__()
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}.")
        self.network = network
        self.gain = nn.Parameter(torch.tensor(check_number(init_gain, "init_gain")))
        self.spatial_dims: int = int(getattr(network, "spatial_dims", 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.network(x)
        if out.shape != x.shape:
            raise ValueError(f"the residual branch must keep the input shape {list(x.shape)}, got {list(out.shape)}.")
        return x + self.gain * out


def _work_dtype(image: torch.Tensor) -> torch.dtype:
    """The real dtype the FFTs run in: float64 for double inputs, float32 otherwise (half precision has no FFT of
    arbitrary size, and AMP outputs are float16)."""
    real = image.real if image.is_complex() else image
    return torch.float64 if real.dtype == torch.float64 else torch.float32


def _measured_kspace(kspace: torch.Tensor, shape: List[int], dtype: torch.dtype) -> torch.Tensor:
    """``kspace`` as a complex tensor of ``shape``: complex dtype ``(B, C, *S)`` or real ``(B, C, *S, 2)``."""
    if kspace.is_complex():
        if list(kspace.shape) != shape:
            raise ValueError(
                f"kspace must have the shape of the image {shape} (B, C, *spatial; complex dtype), got "
                f"{list(kspace.shape)}."
            )
        return kspace.to(torch.complex128 if dtype == torch.float64 else torch.complex64)
    if list(kspace.shape) != shape + [2]:
        raise ValueError(
            f"kspace must be a complex tensor of the image's shape {shape} or a real tensor {shape + [2]} with real "
            f"and imaginary parts in the last axis; got a real tensor of shape {list(kspace.shape)}."
        )
    return torch.view_as_complex(kspace.to(dtype).contiguous())


def _sampled(mask: torch.Tensor, shape: List[int]) -> torch.Tensor:
    """``mask`` as a boolean tensor broadcastable to ``shape`` (``(B or 1, C or 1, *S)``), values checked."""
    if mask.is_complex():
        raise TypeError("mask must be a real 0/1 (or boolean) tensor, got a complex tensor.")
    ok = mask.ndim == len(shape) and list(mask.shape[2:]) == shape[2:]
    if ok:
        ok = (mask.shape[0] == 1 or mask.shape[0] == shape[0]) and (mask.shape[1] == 1 or mask.shape[1] == shape[1])
    if not ok:
        raise ValueError(
            f"mask must have shape (B or 1, C or 1, *spatial) matching the image {shape}, got {list(mask.shape)}."
        )
    if mask.dtype == torch.bool:
        return mask
    if bool(((mask != 0) & (mask != 1)).any()):
        raise ValueError("mask must hold only 0 (not sampled) and 1 (sampled); got other values.")
    return mask != 0


def data_consistency(
    image: torch.Tensor, kspace: torch.Tensor, mask: torch.Tensor, lam: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """The data-consistency step: the image whose k-space keeps the measured samples.

    ``k = F(image)``; where ``mask`` is 1, ``k = kspace`` (``lam=None``, hard) or
    ``k = (F(image) + lam * kspace) / (1 + lam)`` (soft, ``lam >= 0``); elsewhere ``k = F(image)``; returns
    ``F^-1(k)``.  ``F`` is MONAI's centred orthonormal FFT over every spatial axis (the convention of
    :class:`~monai_implicit.transforms.RetrospectiveUndersampled`).

    Args:
        image: ``(B, C, *S)`` real (an image of zero phase, e.g. a magnitude estimate) or complex.
        kspace: the measured centred k-space, complex ``(B, C, *S)`` or real ``(B, C, *S, 2)`` (real and imaginary
            parts last, MONAI's ``is_complex`` layout); its values where ``mask`` is 0 are ignored.
        mask: 0/1 or boolean ``(B or 1, C or 1, *S)``, 1 where a sample was measured.
        lam: None (hard replacement) or a non-negative real scalar tensor (soft weighting).

    Returns:
        The complex image ``(B, C, *S)`` (complex64, complex128 for double inputs).

    Raises:
        ValueError: ``kspace`` or ``mask`` do not match the image's shape, or ``mask`` holds values other than 0/1
            (each message names the argument).
    """
    spatial_dims = image.ndim - 2
    if spatial_dims < 1:
        raise ValueError(f"image must be (B, C, *spatial), got shape {list(image.shape)}.")
    shape = list(image.shape)
    dtype = _work_dtype(image)
    measured = _measured_kspace(kspace, shape, dtype)
    sampled = _sampled(mask, shape)
    if image.is_complex():
        k_net = fftn_centered_t(torch.view_as_real(image.to(measured.dtype)), spatial_dims=spatial_dims)
    else:
        k_net = fftn_centered_t(image.to(dtype), spatial_dims=spatial_dims, is_complex=False)
    k_net_c = torch.view_as_complex(k_net)
    if lam is None:
        k = torch.where(sampled, measured, k_net_c)
    else:
        k = torch.where(sampled, (k_net_c + lam * measured) / (1.0 + lam), k_net_c)
    return torch.view_as_complex(ifftn_centered_t(torch.view_as_real(k), spatial_dims=spatial_dims))


class DataConsistency(nn.Module):
    """Any image-to-image reconstruction network followed by the data-consistency step (:func:`data_consistency`).

    ``forward(x, kspace, mask)`` runs ``network`` on ``x`` (zero-padded to a multiple of ``divisible_k`` per spatial
    axis, the output cropped back, so the network may need sizes divisible by ``2**depth`` while the measured
    samples stay on their own grid), replaces the measured k-space samples (hard) or averages them in (soft), and
    returns the **magnitude** of the data-consistent image (the training targets are magnitude images).
    :meth:`forward_complex` returns the complex data-consistent image itself, whose k-space equals ``kspace`` at every
    measured sample (hard mode; up to float rounding of the FFT pair).

    In a MONAI engine the k-space and mask come from the batch through
    ``prepare_batch=monai.engines.PrepareBatchExtraInput({"kspace": "kspace", "mask": "mask"})`` (keys written by
    :class:`~monai_implicit.transforms.RetrospectiveUndersampled`); MONAI inferers forward them to the network.

    Without ``kspace`` and ``mask`` there is nothing to be consistent with, and silently returning the network's
    output would look like a data-consistent reconstruction while it is not: ``forward`` then raises a ValueError.
    Call ``.network`` directly for the reconstruction without data consistency.

    The network's output is an image estimate of zero phase when it is real (the magnitude networks of this package:
    exact for the magnitude images they are trained on) or a complex image.  For acquired k-space of an object with
    a non-trivial phase, the measured samples are kept exactly and the unmeasured ones come from the zero-phase
    estimate.

    Args:
        network: image-to-image network ``(B, C_in, *S) -> (B, C, *S)`` (e.g. a
            :class:`ResidualReconstruction`); real or complex output.
        lam: None for hard data consistency (measured samples replace the network's), or the initial value of the
            soft weighting ``lam > 0`` (for noisy measurements).
        learn_lam: with ``lam`` given, learn it (parametrised as ``log lam`` so it stays positive); otherwise fixed.
        divisible_k: pad the network's input to a multiple of this per spatial axis (int or one per axis;
            ``2**depth`` for a U-Net of that depth), symmetric zero padding as MONAI's ``DivisiblePad``; None or 1
            for none.
        spatial_dims: 1, 2 or 3; default the network's ``spatial_dims`` attribute.

    Shapes:
        ``x`` ``(B, C_in, *S)``; ``kspace`` complex ``(B, C, *S)`` (or real ``(B, C, *S, 2)``); ``mask``
        ``(B or 1, C or 1, *S)`` of 0/1; output ``(B, C, *S)`` real (``forward``) or complex
        (``forward_complex``; complex64, complex128 for double inputs), ``S`` any size.

    Raises (from ``forward``):
        ValueError: ``kspace`` or ``mask`` missing; ``x``, ``kspace`` or ``mask`` of the wrong shape; ``mask`` not 0/1
            (each message names the argument).
    """

    __jit_unused_properties__ = ["lam"]

    def __init__(
        self,
        network: nn.Module,
        lam: Optional[float] = None,
        learn_lam: bool = True,
        divisible_k: Union[int, Sequence[int], None] = None,
        spatial_dims: Optional[int] = None,
    ) -> None:
        super().__init__()
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}.")
        # default: the network's spatial_dims attribute
        dims = check_spatial_dims(spatial_dims if spatial_dims is not None else getattr(network, "spatial_dims", None))
        self.network = network
        self.spatial_dims: int = dims
        self.hard: bool = lam is None
        if lam is not None and (not is_real(lam) or not 0 < lam < math.inf):
            raise ValueError(f"lam must be None (hard data consistency) or a finite number > 0, got {lam!r}.")
        log_lam = torch.tensor(math.log(lam) if lam is not None else 0.0)
        if lam is not None and learn_lam:
            self.log_lam = nn.Parameter(log_lam)
        else:  # configuration, not state: a fixed or unused weight is not saved in checkpoints
            self.register_buffer("log_lam", log_lam, persistent=False)
        self.divisible_k: List[int] = list(check_ints(1 if divisible_k is None else divisible_k, "divisible_k", dims))

    @property
    def lam(self) -> Optional[torch.Tensor]:
        """The soft weighting ``lam`` (None for hard data consistency)."""
        return None if self.hard else self.log_lam.exp()

    def extra_repr(self) -> str:
        mode = "hard" if self.hard else f"soft, lam={float(self.log_lam.detach().exp()):.4g}"
        learn = ", learned" if isinstance(self.log_lam, nn.Parameter) else ""
        return f"spatial_dims={self.spatial_dims}, {mode}{learn}, divisible_k={tuple(self.divisible_k)}"

    def _pad(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[int]]:
        """Symmetric zero padding to a multiple of ``divisible_k`` (MONAI ``DivisiblePad(method="symmetric")``);
        returns the padded tensor and the offset of the original data along each spatial axis."""
        starts: List[int] = []
        pads: List[int] = []
        for i in range(self.spatial_dims):
            n = x.shape[2 + i]
            k = self.divisible_k[i]
            diff = (n + k - 1) // k * k - n
            starts.append(diff // 2)
            pads = [diff // 2, diff - diff // 2] + pads  # F.pad lists the last axis first
        if sum(pads) == 0:
            return x, starts
        return nn.functional.pad(x, pads), starts

    def estimate(self, x: torch.Tensor) -> torch.Tensor:
        """The network's image estimate on the grid of ``x`` (before data consistency), ``(B, C, *S)``."""
        if x.ndim != self.spatial_dims + 2:
            raise ValueError(
                f"x must be (B, C, *spatial) with {self.spatial_dims} spatial dims, got shape {list(x.shape)}."
            )
        padded, starts = self._pad(x)
        out = self.network(padded)
        if out.ndim != padded.ndim or list(out.shape[2:]) != list(padded.shape[2:]):
            raise ValueError(
                f"the network must keep the spatial shape {list(padded.shape[2:])} of its input, got output "
                f"shape {list(out.shape)}."
            )
        for i in range(self.spatial_dims):
            out = out.narrow(2 + i, starts[i], x.shape[2 + i])
        return out

    def forward_complex(
        self, x: torch.Tensor, kspace: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """The complex data-consistent image ``(B, C, *S)``; arguments as :meth:`forward`."""
        if kspace is None or mask is None:
            raise ValueError(
                "DataConsistency needs the measured k-space and the sampling mask: forward(x, kspace, mask) (in a "
                "MONAI engine: prepare_batch=PrepareBatchExtraInput({'kspace': 'kspace', 'mask': 'mask'})); got "
                f"kspace={'None' if kspace is None else 'a tensor'}, mask={'None' if mask is None else 'a tensor'}. "
                "Call .network for the reconstruction without data consistency."
            )
        out = self.estimate(x)
        lam: Optional[torch.Tensor] = None
        if not self.hard:
            lam = self.log_lam.exp()
        return data_consistency(out, kspace, mask, lam)

    def forward(
        self, x: torch.Tensor, kspace: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Magnitude of the data-consistent image.

        Args:
            x: network input ``(B, C_in, *S)`` (e.g. the zero-filled magnitude image).
            kspace: measured centred k-space, complex ``(B, C, *S)`` or real ``(B, C, *S, 2)``.
            mask: sampling mask ``(B or 1, C or 1, *S)``, 1 where measured.
        """
        return self.forward_complex(x, kspace, mask).abs()
