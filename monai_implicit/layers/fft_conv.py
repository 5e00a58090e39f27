"""N-D convolution through real FFTs, with the semantics of ``torch.nn.functional.conv{1,2,3}d``, and the
functional pieces every implicit convolution uses: "same" padding, padding by any mode, direct-or-FFT choice.

Continuous-kernel layers sample kernels as large as the input ("FlexConv: Continuous Kernel Convolutions with
Differentiable Kernel Sizes", Romero, Bruintjes et al., Sec. 3.1 and Appx. D: FFT convolution for large kernels;
CKConv for ultrasound RF lines with kernels of 65-2111 samples, "Continuous representation of kernels used in
convolutional neural networks", Jonker, Sec. 3.3.2).  A direct convolution costs ``O(prod(k))`` per output voxel, an
FFT convolution ``O(log N)``, so above a kernel size the FFT wins.  :func:`fft_conv` is a drop-in for
``F.conv{1,2,3}d``; :func:`select_method` picks the cheaper of the two by :func:`fft_is_faster`, a flop model
calibrated on CPU (see ``benchmarks/bench_continuous.py``), for :func:`conv_nd` and for
:class:`~monai_implicit.layers.implicit_conv.ImplicitConv`.

Memory (the CKConv authors' FFT convolution ran out of 24 GB of GPU memory, Jonker, Sec. 4.2):

* real FFTs (``rfftn``/``irfftn``): half the spectrum of a complex FFT, no complex copy of the real input;
* the FFT size is the padded input size (rounded up to a fast length), not ``input + kernel - 1``: only the
  "valid" outputs are kept, and those never see the circular wrap-around;
* the channel contraction is one complex ``einsum`` (a batched matmul over frequencies) instead of a broadcast
  product ``(B, C_out, C_in, *freq)``;
* autograd runs through ``torch.fft``; the only tensors saved for backward are the two spectra the product needs.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from scipy.fft import next_fast_len

from monai_implicit.layers import autotune
from monai_implicit.utils import check_option, check_positive_int, is_integer

__all__ = [
    "fft_conv",
    "conv_nd",
    "fft_is_faster",
    "select_method",
    "choose_method",
    "same_padding",
    "pad_for_conv",
    "padded_conv",
    "FFT_EFFICIENCY",
    "CONV_METHODS",
    "CONV_FUNCTIONS",
    "PADDING_MODES",
]

#: ``method`` values accepted by :func:`conv_nd` and the continuous-kernel layers
CONV_METHODS = ("auto", "direct", "fft")
#: ``padding_mode`` values of every implicit convolution (those of ``nn.Conv*d``)
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

#: How many direct-convolution flops one FFT-model flop costs in time (PyTorch 2.13 CPU, float32, forward), measured
#: with ``benchmarks/bench_continuous.py`` on 2 cores: the time ratio direct/FFT crosses 1 at k ~ 131 for 1D
#: (B=4, C=22, L=4096), k ~ 17 for 2D (B=2, C=16, 128x128) and k ~ 9 for 3D (B=1, C=8, 48^3); the flop ratio of the
#: model at those crossovers is 9-17, and 10 reproduces all three (65 direct / 131 FFT; 9 / 17; 7 / 9).  GPUs
#: (cuDNN vs cuFFT) have a different constant: pass ``efficiency`` to :func:`fft_is_faster` or force ``method``.
FFT_EFFICIENCY = 10.0

#: the direct convolution of each number of spatial dims (the per-forward fast path of the layers)
CONV_FUNCTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def same_padding(kernel_size: Sequence[int], dilation: Sequence[int]) -> list[tuple[int, int]]:
    """(left, right) padding per axis that keeps the spatial size at stride 1, as ``padding="same"`` in PyTorch.

    For even kernels the extra voxel goes to the right, exactly like ``torch.nn.Conv*d(padding="same")``.
    """
    pads = []
    for k, d in zip(kernel_size, dilation):
        total = d * (k - 1)
        pads.append((total // 2, total - total // 2))
    return pads


def _tuple(value: Union[int, Sequence[int]], n: int, name: str) -> tuple[int, ...]:
    """``value`` as ``n`` ints: TypeError for anything but ints, ValueError for a sequence of the wrong length."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) not in (1, n):
            raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}.")
        values = tuple(value) * (n if len(value) == 1 else 1)
    else:
        values = (value,) * n
    if not all(is_integer(v) for v in values):
        raise TypeError(f"{name} must be an int or a sequence of {n} ints, got {value!r}.")
    return tuple(int(v) for v in values)


def _check(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], groups: int) -> int:
    if not isinstance(x, torch.Tensor) or not isinstance(weight, torch.Tensor):
        raise TypeError(f"input and weight must be tensors, got {type(x).__name__} and {type(weight).__name__}.")
    dims = weight.ndim - 2
    if dims not in (1, 2, 3):
        raise ValueError(f"weight must be (C_out, C_in // groups, *k) with 1-3 spatial dims, got {tuple(weight.shape)}")
    if x.ndim != weight.ndim:
        raise ValueError(
            f"input must be (B, C_in, *spatial) with {dims} spatial dims to match weight {tuple(weight.shape)}, "
            f"got {tuple(x.shape)}."
        )
    check_positive_int(groups, "groups")
    if x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise ValueError(
            f"input has {x.shape[1]} channels; weight {tuple(weight.shape)} with groups={groups} expects "
            f"{weight.shape[1] * groups} and C_out divisible by groups."
        )
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != weight.shape[0]):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}.")
    return dims


def _resolve_padding(
    padding: Union[str, int, Sequence[int]], kernel: Sequence[int], dilation: Sequence[int], stride: Sequence[int]
) -> list[tuple[int, int]]:
    dims = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * dims
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"padding='same' is not supported for strided convolutions (stride={tuple(stride)}).")
            return same_padding(kernel, dilation)
        raise ValueError(f"padding must be 'same', 'valid', an int or a sequence of ints, got {padding!r}.")
    pads = _tuple(padding, dims, "padding")
    if any(p < 0 for p in pads):
        raise ValueError(f"padding must be non-negative, got {padding!r}.")
    return [(p, p) for p in pads]


def _dilate(weight: torch.Tensor, dilation: Sequence[int]) -> torch.Tensor:
    """Insert ``d - 1`` zeros between taps: a dilated kernel is an ordinary kernel of size ``d (k - 1) + 1``."""
    if all(d == 1 for d in dilation):
        return weight
    k = weight.shape[2:]
    out = weight.new_zeros(*weight.shape[:2], *(d * (s - 1) + 1 for s, d in zip(k, dilation)))
    out[(slice(None), slice(None), *(slice(None, None, d) for d in dilation))] = weight
    return out


def _channel_product(x_f: torch.Tensor, w_f: torch.Tensor, groups: int) -> torch.Tensor:
    """``y[b, o] = sum_i x[b, i] w[o, i]`` per frequency: one batched complex matmul over (group, frequency).

    ``x_f``: ``(B, C_in, *freq)``; ``w_f``: ``(C_out, C_in // G, *freq)``; returns ``(B, C_out, *freq)``.  The
    frequency axes become the contiguous matmul batch; ``torch.einsum`` or a strided batch fall back to one small
    matmul (and one copy) per frequency, two orders of magnitude slower on CPU for these shapes.
    """
    b, c_in, *freq = x_f.shape
    c_out = w_f.shape[0]
    n_freq = math.prod(freq)
    dims = len(freq)
    spatial = tuple(range(3, 3 + dims))
    # (B, G, Ci, *F) -> (G, *F, B, Ci)
    xg = x_f.reshape(b, groups, c_in // groups, *freq).permute(1, *spatial, 0, 2)
    xg = xg.reshape(groups * n_freq, b, c_in // groups).contiguous()
    # (G, Co, Ci, *F) -> (G, *F, Ci, Co)
    wg = w_f.reshape(groups, c_out // groups, c_in // groups, *freq).permute(0, *spatial, 2, 1)
    wg = wg.reshape(groups * n_freq, c_in // groups, c_out // groups).contiguous()
    yg = torch.bmm(xg, wg).reshape(groups, *freq, b, c_out // groups)
    # (G, *F, B, Co) -> (B, G, Co, *F)
    return yg.permute(dims + 1, 0, dims + 2, *range(1, dims + 1)).reshape(b, c_out, *freq)


def fft_conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    stride: Union[int, Sequence[int]] = 1,
    padding: Union[str, int, Sequence[int]] = 0,
    dilation: Union[int, Sequence[int]] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """Cross-correlation computed with real FFTs; same arguments and result as ``F.conv{1,2,3}d``.

    The zero-padded input of size ``n`` is transformed at ``next_fast_len(n)`` (a 5-smooth size, scipy); the kernel
    is conjugated in frequency (correlation, not convolution); only the ``n - d (k - 1)`` valid outputs, which the
    circular wrap-around never reaches, are kept; a stride subsamples them; a dilation inserts zeros into the kernel.
    Half-precision inputs are computed in float32 (CPU FFTs have no half kernels) and cast back.

    Args:
        input: ``(B, C_in, *spatial)`` with 1, 2 or 3 spatial dims.
        weight: ``(C_out, C_in // groups, *k)``; any sizes, odd or even.
        bias: optional ``(C_out,)``.
        stride: int or one per axis.
        padding: ``"valid"``, ``"same"`` (stride 1; the extra voxel of an even kernel on the right, as PyTorch), an
            int or one int per axis (zeros on both sides).
        dilation: int or one per axis.
        groups: as in ``F.conv*d``; the channel product is done per group, so groups cost nothing extra.

    Returns:
        ``(B, C_out, *out)`` with ``out = floor((n + 2 p - d (k - 1) - 1) / s) + 1``, as ``F.conv*d``.

    Raises:
        ValueError: inconsistent shapes, or a kernel larger than the padded input (as ``F.conv*d``, but a ValueError
            that names both sizes).
    """
    dims = _check(input, weight, bias, groups)
    stride_t = _tuple(stride, dims, "stride")
    dilation_t = _tuple(dilation, dims, "dilation")
    if any(s < 1 for s in stride_t) or any(d < 1 for d in dilation_t):
        raise ValueError(f"stride and dilation must be positive, got stride={stride!r}, dilation={dilation!r}.")
    pads = _resolve_padding(padding, weight.shape[2:], dilation_t, stride_t)
    out_dtype = input.dtype
    compute_dtype = torch.float32 if out_dtype in (torch.float16, torch.bfloat16) else out_dtype
    x = input.to(compute_dtype)
    w = _dilate(weight.to(compute_dtype), dilation_t)
    if any(p for pair in pads for p in pair):
        x = F.pad(x, [p for pair in reversed(pads) for p in pair])
    n = x.shape[2:]
    k = w.shape[2:]
    if any(ki > ni for ki, ni in zip(k, n)):
        raise ValueError(
            f"kernel extent {tuple(k)} (after dilation) is larger than the padded input {tuple(n)}; "
            "use padding='same' or a larger input."
        )
    # a 5-smooth length on every axis; the last (halved) axis of rfftn must be even to stay fast
    sizes = [next_fast_len(int(s), real=True) for s in n]
    axes = tuple(range(2, 2 + dims))
    # correlation = convolution with the flipped kernel: no conjugated copy of the kernel spectrum is needed
    x_f = torch.fft.rfftn(x, s=sizes, dim=axes)
    w_f = torch.fft.rfftn(w.flip(axes), s=sizes, dim=axes)
    y_f = _channel_product(x_f, w_f, groups)
    y = torch.fft.irfftn(y_f, s=sizes, dim=axes)
    # circular-convolution indices k-1 .. n-1 never wrap around: they are the "valid" correlation outputs
    valid = tuple(slice(ki - 1, ni, s) for ni, ki, s in zip(n, k, stride_t))
    y = y[(slice(None), slice(None), *valid)]
    if bias is not None:
        y = y + bias.to(compute_dtype).view(1, -1, *([1] * dims))
    return y.to(out_dtype).contiguous()


def fft_is_faster(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    groups: int = 1,
    stride: Union[int, Sequence[int]] = 1,
    efficiency: float = FFT_EFFICIENCY,
) -> bool:
    """Whether :func:`fft_conv` is estimated to be faster than the direct convolution.

    Flop model (padded input ``n``, kernel ``k`` after dilation, ``N = prod(next_fast_len(n))``, ``F`` its number
    of rfft frequencies, ``G`` groups):

    * direct: ``2 B C_out (C_in / G) prod(k) prod(ceil(valid / s))``
    * FFT: ``2.5 N log2(N) (B C_in + C_out C_in / G + B C_out)`` (real forward/inverse FFTs) ``+ 8 B C_out (C_in/G) F``
      (complex multiply-adds)

    and FFT is chosen when ``efficiency * fft < direct``; ``efficiency`` (:data:`FFT_EFFICIENCY`) is the measured
    time ratio of an FFT-model flop and a direct-convolution flop.

    Args:
        input_shape: ``(B, C_in, *n)`` of the already padded input.
        weight_shape: ``(C_out, C_in // groups, *k)`` (dilation already applied).
        groups: convolution groups.
        stride: convolution stride.
        efficiency: cost of one FFT-model flop in direct-convolution flops.
    """
    b, c_in, *n = (int(v) for v in input_shape)
    c_out, c_in_g, *k = (int(v) for v in weight_shape)
    stride_t = _tuple(stride, len(n), "stride")
    valid = [max(ni - ki + 1, 0) for ni, ki in zip(n, k)]
    direct = 2.0 * b * c_out * c_in_g * math.prod(k) * math.prod(-(-v // s) for v, s in zip(valid, stride_t))
    sizes = [next_fast_len(ni, real=True) for ni in n]
    total = math.prod(sizes)
    freqs = total // sizes[-1] * (sizes[-1] // 2 + 1)
    transforms = b * c_in + c_out * c_in_g + b * c_out
    fft = 2.5 * total * math.log2(max(total, 2)) * transforms + 8.0 * b * c_out * c_in_g * freqs
    return efficiency * fft < direct


def conv_nd(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    stride: Union[int, Sequence[int]] = 1,
    padding: Union[str, int, Sequence[int]] = 0,
    dilation: Union[int, Sequence[int]] = 1,
    groups: int = 1,
    method: str = "auto",
) -> torch.Tensor:
    """``F.conv{1,2,3}d`` or :func:`fft_conv`, whichever is faster (:func:`choose_method`).

    Args:
        input, weight, bias, stride, padding, dilation, groups: as :func:`fft_conv`.
        method: ``"auto"`` (measured once per configuration, or the cost model :func:`fft_is_faster` when
            :mod:`~monai_implicit.layers.autotune` does not measure), ``"direct"`` (``F.conv*d``) or ``"fft"``.

    Returns:
        ``(B, C_out, *out)``, identical (to float rounding) whichever method runs.
    """
    check_option(method, CONV_METHODS, "method")
    dims = _check(input, weight, bias, groups)
    stride_t = _tuple(stride, dims, "stride")
    dilation_t = _tuple(dilation, dims, "dilation")
    pads = _resolve_padding(padding, weight.shape[2:], dilation_t, stride_t)
    n = [s + left + right for s, (left, right) in zip(input.shape[2:], pads)]
    k = [d * (s - 1) + 1 for s, d in zip(weight.shape[2:], dilation_t)]
    if any(ki > ni for ki, ni in zip(k, n)):
        raise ValueError(
            f"kernel extent {tuple(k)} (after dilation) is larger than the padded input {tuple(n)}; "
            "use padding='same' or a larger input."
        )
    padding_t = tuple(left for left, _ in pads) if all(left == right for left, right in pads) else padding
    if choose_method(method, input, weight, stride_t, padding_t, dilation_t, groups) == "fft":
        return fft_conv(input, weight, bias, stride_t, padding, dilation_t, groups)
    return CONV_FUNCTIONS[dims](input, weight, bias, stride_t, padding, dilation_t, groups)


def select_method(
    method: str,
    padded_shape: Sequence[int],
    weight_shape: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    groups: int = 1,
) -> str:
    """``"direct"`` or ``"fft"``: ``method`` itself unless it is ``"auto"``, then the verdict of :func:`fft_is_faster`.

    The one place where the convolution path is chosen (:func:`conv_nd` and ``ImplicitConv.conv_forward``).

    Args:
        method: ``"auto"``, ``"direct"`` or ``"fft"`` (already validated).
        padded_shape: ``(B, C_in, *n)`` of the input after padding.
        weight_shape: ``(C_out, C_in // groups, *k)`` before dilation.
        stride, dilation: one int per axis.
        groups: convolution groups.
    """
    if method != "auto":
        return method
    k = [d * (s - 1) + 1 for s, d in zip(weight_shape[2:], dilation)]
    return "fft" if fft_is_faster(padded_shape, (*weight_shape[:2], *k), groups, stride) else "direct"


def choose_method(
    method: str,
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: Sequence[int],
    padding: Union[str, Sequence[int]],
    dilation: Sequence[int],
    groups: int = 1,
) -> str:
    """``"direct"`` or ``"fft"`` for correlating ``x`` with ``weight``: ``method`` itself unless it is ``"auto"``,
    then the faster of the two measured on these tensors (:func:`~monai_implicit.layers.autotune.choose`, forward and
    backward when a gradient is needed, cached per shapes, dtype, device and arguments), or the cost model
    :func:`select_method` when measuring is off.

    Args:
        method: ``"auto"``, ``"direct"`` or ``"fft"`` (already validated).
        x: ``(B, C_in, *n)``, before the convolution's own ``padding``.
        weight: ``(C_out, C_in // groups, *k)``.
        stride, dilation: one int per axis.
        padding: the zero padding both paths apply (one int per axis, or ``"same"``/``"valid"``).
        groups: convolution groups.
    """
    pads = _resolve_padding(padding, weight.shape[2:], dilation, stride)
    padded = (*x.shape[:2], *(s + left + right for s, (left, right) in zip(x.shape[2:], pads)))
    modelled = select_method(method, padded, weight.shape, stride, dilation, groups)
    if method != "auto" or not autotune.can_measure():
        return modelled
    k = [d * (s - 1) + 1 for s, d in zip(weight.shape[2:], dilation)]
    valid = [max(n - kk + 1, 0) for n, kk in zip(padded[2:], k)]
    work = padded[0] * weight.shape[0] * weight.shape[1] * math.prod(weight.shape[2:]) * math.prod(
        -(-v // s) for v, s in zip(valid, stride)
    )
    direct = CONV_FUNCTIONS[weight.ndim - 2]
    xt = x.detach().requires_grad_(x.requires_grad)
    wt = weight.detach().requires_grad_(weight.requires_grad)
    grad = torch.is_grad_enabled() and (xt.requires_grad or wt.requires_grad)
    key = ("conv", tuple(x.shape), tuple(weight.shape), tuple(stride), tuple(pads), tuple(dilation), groups,
           str(x.dtype), str(x.device), grad)
    candidates = {
        "direct": autotune.with_backward(lambda: direct(xt, wt, None, stride, padding, dilation, groups), [xt, wt]),
        "fft": autotune.with_backward(lambda: fft_conv(xt, wt, None, stride, padding, dilation, groups), [xt, wt]),
    }
    return autotune.choose(key, candidates, modelled, work=work, device=x.device)


def pad_for_conv(
    x: torch.Tensor, pads: Sequence[tuple[int, int]], padding_mode: str = "zeros"
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Pad ``x`` by ``pads`` for a convolution: ``(x', padding)`` such that ``conv(x', w, padding=padding)`` is the
    convolution of ``x`` padded by ``pads`` with ``padding_mode``.

    Zeros on both sides by the same amount are left to the convolution's own ``padding`` argument (no padded copy
    of the input); other modes and asymmetric pads (even kernels) go through ``F.pad`` and ``padding`` is 0.
    Kernels can be as large as the input, so the padding is checked up front: reflection needs ``pad < n`` on every
    axis (the thesis' CKCNN pads RF lines by reflection, Jonker, Sec. 3.4.2), circular needs ``pad <= n``.

    Args:
        x: ``(B, C, *spatial)``.
        pads: ``(left, right)`` per spatial axis.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.

    Returns:
        The input (padded unless the convolution can pad it) and the symmetric ``padding`` per axis for the
        convolution.
    """
    if padding_mode == "zeros" and all(left == right for left, right in pads):
        return x, tuple(left for left, _ in pads)
    spatial = x.shape[2:]
    if padding_mode in ("reflect", "circular"):
        limit_ok = [max(p) < n if padding_mode == "reflect" else max(p) <= n for p, n in zip(pads, spatial)]
        if not all(limit_ok):
            raise ValueError(
                f"padding_mode={padding_mode!r} needs padding {'<' if padding_mode == 'reflect' else '<='} the "
                f"input size on every axis: the kernel needs padding {list(pads)} but the input is {tuple(spatial)}. "
                "Use a smaller kernel, a larger input or padding_mode='zeros'."
            )
    flat = [p for pair in reversed(pads) for p in pair]
    x = F.pad(x, flat, mode="constant" if padding_mode == "zeros" else padding_mode)
    return x, (0,) * len(pads)


def padded_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    pads: Sequence[tuple[int, int]],
    padding_mode: str = "zeros",
    stride: Union[int, Sequence[int]] = 1,
    dilation: Union[int, Sequence[int]] = 1,
    groups: int = 1,
    method: str = "auto",
) -> torch.Tensor:
    """Pad ``x`` by ``pads`` with ``padding_mode`` (:func:`pad_for_conv`) and correlate with ``weight`` by
    :func:`conv_nd`: the functional form of ``ImplicitConv.conv_forward``.

    Args:
        x: ``(B, C_in, *spatial)``.
        weight: ``(C_out, C_in // groups, *k)``.
        bias: optional ``(C_out,)``.
        pads: ``(left, right)`` per spatial axis.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
        stride, dilation, groups, method: see :func:`conv_nd`.
    """
    x, padding = pad_for_conv(x, pads, padding_mode)
    return conv_nd(x, weight, bias, stride, padding, dilation, groups, method=method)
