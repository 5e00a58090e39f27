"""Analytic alias-free regulariser of MAGNet kernels ("FlexConv: Continuous Kernel Convolutions with Differentiable
Kernel Sizes", Romero, Bruintjes et al., Sec. 3.3, Appx. A.1-A.2, Eqs. 21-27).

A MAGNet is a linear combination of products of Gabor filters, so its highest frequency along axis ``d`` is bounded
by the sum over its ``L' = L + 1`` Gabor filters of ``max_i (|W_{g,l,i,d}| + sigma_cut gamma_{l,i,d}) / 2 pi``
(sine frequency plus the spread of its Gaussian envelope, cut at ``sigma_cut`` standard deviations); FlexConv's mask
of width ``s_d`` adds ``sigma_cut / (2 pi s_d)``.  The kernel is sampled at ``(k_d - 1) / 2`` samples per unit, so
its Nyquist frequency is ``(k_d - 1) / 4``.  The "together" regulariser (Eq. 26-27, the variant the paper's
experiments use) spreads the mask term and the Nyquist budget evenly over the Gabor filters and penalises each
filter separately:

``penalty = sum_layers sum_l sum_d relu(f_{l,d} + mask_d / L' - nyq_d / L')^2``,
``f_{l,d} = max_i (|W_{g,l,i,d}| + sigma_cut |gamma_{l,i,d}|) / (2 pi)``, ``mask_d = sigma_cut / (2 pi s_d)``,
``nyq_d = (k_d - 1) / 4``.

For 1D kernels this is exactly the authors' ``regularize_gabornet(..., target="gabor+mask", method="together")``.
In N-D it is taken per axis (each axis of an anisotropic kernel has its own Nyquist frequency), where the authors
take the maximum over both axes of a square 2D kernel.  The paper weights the penalty by 0.1 in the loss.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from monai_implicit.kernels.magnet import MAGNetKernel
from monai_implicit.layers.ckconv import ContinuousKernelConv
from monai_implicit.layers.flexconv import FlexConv
from monai_implicit.utils import check_number

__all__ = ["alias_free_penalty", "magnet_max_frequencies"]


def magnet_max_frequencies(kernel_net: MAGNetKernel, sigma_cut: float = 2.0) -> torch.Tensor:
    """Per-filter, per-axis maximum frequency ``f_{l,d}`` (Hz, cycles per grid unit) of a MAGNet, Eq. 21 / Appx. A.1.

    Returns:
        ``(L + 1, D)`` differentiable tensor.
    """
    rows = []
    for gabor in kernel_net.filters:
        combined = (gabor.linear.weight.abs() + sigma_cut * gabor.gamma.abs()) / (2.0 * math.pi)  # (H, D)
        rows.append(combined.amax(dim=0))
    return torch.stack(rows)


def alias_free_penalty(net: nn.Module, sigma_cut: float = 2.0, include_mask: bool = True) -> torch.Tensor:
    """The alias-free regulariser summed over every continuous-kernel layer of ``net`` with a MAGNet kernel.

    Use as an extra loss term: ``loss = task_loss + 0.1 * alias_free_penalty(net)`` (the paper's weight).

    Args:
        net: a module containing :class:`~monai_implicit.layers.flexconv.FlexConv` layers (or CKConv layers with a
            MAGNet kernel, which have no mask term).
        sigma_cut: number of standard deviations at which a Gaussian spectrum is cut (2 in the paper).
        include_mask: add the FlexConv mask's spread ``sigma_cut / (2 pi s_d)`` (the paper's ``f+_FlexConv``; without
            it, ``f+_MAGNet``, Sec. 4.3).

    Returns:
        A differentiable scalar tensor ``>= 0`` (zero when every kernel is below its Nyquist frequency).

    Raises:
        ValueError: if ``net`` has no continuous-kernel layer with a MAGNet kernel (a silent zero would hide a
            misconfigured model), or a FlexConv uses another kernel family (no analytic frequency bound exists for
            SIRENs, FlexConv paper Sec. 3.3).
    """
    sigma_cut = check_number(sigma_cut, "sigma_cut", low=0.0, low_open=True)
    terms = []
    for name, module in net.named_modules():
        if not isinstance(module, ContinuousKernelConv):
            continue
        if not isinstance(module.kernel_net, MAGNetKernel):
            if isinstance(module, FlexConv):
                raise ValueError(
                    f"alias_free_penalty needs MAGNet kernels; FlexConv {name!r} uses {module.kernel_family!r}."
                )
            continue
        freqs = magnet_max_frequencies(module.kernel_net, sigma_cut)  # (L', D)
        n_filters = freqs.shape[0]
        nyquist = torch.tensor([(k - 1) / 4.0 for k in module.kernel_size], dtype=freqs.dtype, device=freqs.device)
        if include_mask and isinstance(module, FlexConv):
            freqs = freqs + sigma_cut / (2.0 * math.pi * module.mask_sigma) / n_filters
        terms.append(torch.relu(freqs - nyquist / n_filters).pow(2).sum())
    if not terms:
        raise ValueError(
            f"alias_free_penalty found no FlexConv/CKConv layer with a MAGNet kernel in {type(net).__name__}."
        )
    return torch.stack(terms).sum()
