"""N-Jet convolution: learned combination of Gaussian derivatives with a learned scale ("Resolution learning in deep
convolutional networks using scale-space theory", Pintea, Tomen et al., Sec. 3).

Every filter is ``sum_f alpha[c_out, c_in, f] * B_f(sigma)`` where ``B_f`` are the scale-normalised Gaussian
derivatives of total order ``<= order`` (:class:`~monai_implicit.kernels.gaussian_derivatives.
GaussianDerivativeBasis`).  One ``sigma`` per layer (shared by all filters, the paper's segmentation setting) is
learned with the alphas; the kernel size ``2 ceil(k sigma + 0.5) + 1`` follows sigma during training (the size is
re-derived from the current sigma at every forward; sigma is trained through the sampled Gaussian values).

Differences from the authors' 2D code, which matter for medical volumes:

* N-D (1, 2 and 3 spatial dimensions), optional anisotropic voxel ``spacing`` (sigma in millimetres);
* any order (general Hermite recursion; the authors' code stops at order 10);
* sigma stays inside ``sigma_range`` whatever the gradient step (sigmoid-mapped log-sigma), so the kernel
  never exceeds ``max_kernel_size`` and never collapses to a delta;
* alphas are initialised so the initial filters have the variance of a plain convolution of the same kernel size
  (the authors use N(0, 1) without fan-in scaling), and the layer has a bias;
* two execution paths with the same result, picked by estimated cost: the dense kernel (an ordinary
  convolution) and the separable path (per-axis 1D Gaussian-derivative convolutions shared between basis
  filters, then a 1x1 convolution mixing them by alpha), which is far cheaper for large sigma in 3D.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from monai_implicit.kernels.gaussian_derivatives import GaussianDerivativeBasis
from monai_implicit.kernels.hyper import conv_init_variance
from monai_implicit.layers.fft_conv import CONV_FUNCTIONS
from monai_implicit.layers.implicit_conv import ImplicitConv
from monai_implicit.utils import check_number, check_option

__all__ = ["NJetConv", "NJET_PATHS", "sigmas", "njet_param_groups"]

NJET_PATHS = ("auto", "dense", "separable")
# the separable path is memory-bound on CPU (block-Toeplitz GEMMs a few times the ideal multiply-adds, plus the
# reshuffling of F * C_in maps), while a dense convolution runs near peak: per ideal multiply-add it is ~10x slower
# (benchmarks/bench_njet.py, 64^3, 16 -> 16 channels, order 2, 2 idle CPU cores: separable 2.15x faster than dense
# at sigma 1 and 7.7x at sigma 2, against estimated multiply-add ratios of 22 and 73)
_SEPARABLE_OVERHEAD = 10.0


class NJetConv(ImplicitConv):
    """N-Jet convolution with a learned, bounded scale (Pintea, Tomen et al.; N-Jet paper, Sec. 3, Eq. 2-5).

    Filters ``w[o, i] = sum_f alpha[o, i, f] B_f(sigma)`` on a grid of size ``2 ceil(k sigma / spacing_d + 0.5) + 1``
    per axis; "same" padding and cross-correlation as every :class:`ImplicitConv`.  Parameters per layer:
    ``C_out * C_in / groups * C(order + D, D)`` alphas, one scale and ``C_out`` biases.

    Scale: ``sigma = init_sigma * exp((b - a) * (sigmoid(raw + c) - sigmoid(c)))`` with ``a = log(lo / init_sigma)``,
    ``b = log(hi / init_sigma)`` and ``sigmoid(c) = -a / (b - a)``: log-sigma is a sigmoid of the raw parameter
    mapped onto ``(log lo, log hi)``, so no gradient step can leave ``sigma_range``, and ``raw = 0`` gives exactly
    ``init_sigma`` (weight decay on ``raw_sigma`` therefore pulls sigma towards its initial value).

    Initialisation: ``alpha[o, i, f] ~ N(0, v_f)`` with ``v_f = V / (F ||B_f||^2)``, where ``B_f`` is the basis at
    ``init_sigma`` and ``V = K * conv_init_variance(C_in / groups * K)`` for the initial kernel of ``K`` taps: every
    basis filter contributes the same energy and the initial filters have, on average over their taps, the weight
    variance of a plain ``nn.Conv*d`` (``init="fan_in"``: PyTorch's default, ``1 / (3 fan_in)``; ``init="he"``:
    ``2 / fan_in``).

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        order: highest total derivative order of the basis (>= 0; 2-4 for segmentation, 3 for classification).
        init_sigma: initial scale (1.0 in the paper), in voxels (or in the unit of ``spacing``).
        k: grid extent in units of sigma (2 in the paper).
        learn_sigma: learn the scale (otherwise it stays at ``init_sigma``).
        sigma_range: open interval ``(lo, hi)`` that sigma can never leave; ``init_sigma`` must lie inside.
        max_kernel_size: largest admissible kernel size per axis; None: the size needed at ``sigma_range[1]``.  A
            value smaller than that raises a ValueError (sigma could otherwise outgrow it).
        stride, dilation, groups, bias, padding_mode: as in ``nn.Conv*d`` (see :class:`ImplicitConv`).
        spacing: optional physical voxel size (one value or one per axis); sigma is then in that unit and the
            kernel is anisotropic in voxels.
        init: ``"fan_in"`` or ``"he"``: the plain-convolution variance the initial filters match.
        path: ``"auto"`` (cheapest by estimated cost), ``"dense"`` or ``"separable"``; both give the same result.

    Shapes:
        ``(B, C_in, *spatial) -> (B, C_out, *ceil(spatial / stride))``; ``weight``: ``(C_out, C_in / groups, *k)``.
    """

    kernel_family = "njet"

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        order: int = 2,
        init_sigma: float = 1.0,
        k: float = 2.0,
        learn_sigma: bool = True,
        sigma_range: Sequence[float] = (0.5, 8.0),
        max_kernel_size: Optional[int] = None,
        stride: Union[int, Sequence[int]] = 1,
        dilation: Union[int, Sequence[int]] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        spacing: Optional[Union[float, Sequence[float]]] = None,
        init: str = "fan_in",
        path: str = "auto",
    ) -> None:
        basis = GaussianDerivativeBasis(spatial_dims, order, k=k, spacing=spacing)
        check_number(init_sigma, "init_sigma", low=0.0, low_open=True)
        if (not isinstance(sigma_range, Sequence) or len(sigma_range) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in sigma_range)):
            raise TypeError(f"sigma_range must be a pair (lo, hi) of numbers, got {sigma_range!r}.")
        lo, hi = float(sigma_range[0]), float(sigma_range[1])
        if not (0 < lo < init_sigma < hi < math.inf):
            raise ValueError(
                f"sigma_range must satisfy 0 < lo < init_sigma < hi, got sigma_range={tuple(sigma_range)} and "
                f"init_sigma={init_sigma}."
            )
        check_option(path, NJET_PATHS, "path")
        largest = basis.kernel_size(hi)
        if max_kernel_size is None:
            max_kernel_size = max(largest)
        elif isinstance(max_kernel_size, bool) or not isinstance(max_kernel_size, int) or max_kernel_size < 1:
            raise ValueError(f"max_kernel_size must be a positive int or None, got {max_kernel_size!r}.")
        elif max(largest) > max_kernel_size:
            raise ValueError(
                f"sigma_range upper bound {hi:g} needs kernels of size {largest} (k={basis.k:g}), larger than "
                f"max_kernel_size={max_kernel_size}; lower sigma_range[1] or raise max_kernel_size."
            )
        basis.max_kernel_size = max_kernel_size
        init_size = basis.kernel_size(init_sigma)
        super().__init__(
            spatial_dims, in_channels, out_channels, init_size, stride=stride, dilation=dilation, groups=groups,
            bias=bias, padding_mode=padding_mode,
        )
        self.basis = basis
        self.order = basis.order
        self.k = basis.k
        self.max_kernel_size = max_kernel_size
        self.init_sigma = float(init_sigma)
        self.sigma_range = (lo, hi)
        self.learn_sigma = bool(learn_sigma)
        self.path = path
        self._log_lo = math.log(lo / init_sigma)
        self._log_hi = math.log(hi / init_sigma)
        p = -self._log_lo / (self._log_hi - self._log_lo)
        self._offset = math.log(p / (1.0 - p))
        self.raw_sigma = nn.Parameter(torch.zeros(()), requires_grad=self.learn_sigma)
        self.alpha = nn.Parameter(torch.empty(out_channels, in_channels // groups, basis.num_filters))
        self.reset_alpha(init)

    # ------------------------------------------------------------------ scale
    @property
    def sigma(self) -> torch.Tensor:
        """The current scale, a differentiable 0-d tensor inside ``sigma_range``."""
        span = self._log_hi - self._log_lo
        # subtracting the same float32 value gives an exact 0 at raw=0, hence sigma == init_sigma exactly
        reference = torch.sigmoid(torch.zeros_like(self.raw_sigma) + self._offset)  # same dtype, same rounding
        log_ratio = span * (torch.sigmoid(self.raw_sigma + self._offset) - reference)
        sigma = self.init_sigma * torch.exp(log_ratio)
        return sigma.clamp(self.sigma_range[0], self.sigma_range[1])

    def kernel_shape(self) -> tuple[int, ...]:
        """The kernel-size hook: ``2 ceil(k sigma / spacing_d + 0.5) + 1`` per axis for the current sigma."""
        return self.basis.kernel_size(self.sigma)

    @property
    def kernel_size(self) -> tuple[int, ...]:
        """Kernel size per axis for the current sigma, :meth:`kernel_shape` (before the scale exists: the size at
        ``init_sigma`` that :class:`ImplicitConv` validated)."""
        if "raw_sigma" not in self._parameters:
            return self._initial_kernel_size
        return self.kernel_shape()

    @kernel_size.setter
    def kernel_size(self, value: tuple[int, ...]) -> None:
        self._initial_kernel_size = tuple(value)

    # ------------------------------------------------------------------ init
    def reset_alpha(self, init: str = "fan_in") -> None:
        """Draw alphas so the filters have the variance of a plain convolution (see the class docstring)."""
        with torch.no_grad():
            basis = self.basis(torch.tensor(self.init_sigma, dtype=torch.float64))
            taps = math.prod(basis.shape[1:])
            fan_in = (self.in_channels // self.groups) * taps
            energy = taps * conv_init_variance(fan_in, init)
            norms = basis.reshape(basis.shape[0], -1).pow(2).sum(1)
            std = torch.sqrt(energy / (basis.shape[0] * norms)).to(self.alpha)
            self.alpha.copy_(torch.randn_like(self.alpha) * std)

    # ---------------------------------------------------------------- kernel
    def sample_kernel(self) -> torch.Tensor:
        """The dense kernel ``(C_out, C_in / groups, *k)``: alphas times the basis at the current sigma."""
        basis = self.basis(self.sigma.to(self.alpha.dtype))
        return torch.einsum("oif,f...->oi...", self.alpha, basis)

    # ------------------------------------------------------------ execution
    def _cost(self, x: torch.Tensor, kernel_size: Sequence[int]) -> tuple[float, float]:
        """Estimated multiply-adds of the dense and of the separable path for input ``x``."""
        batch, spatial = x.shape[0], list(x.shape[2:])
        out = [math.ceil(s / st) for s, st in zip(spatial, self.stride)]
        c_in, c_out, groups, n = self.in_channels, self.out_channels, self.groups, self.order
        dense = batch * c_out * (c_in // groups) * math.prod(kernel_size) * math.prod(out)
        separable = 0.0
        sizes = list(spatial)
        for d in reversed(range(1, self.spatial_dims)):  # every axis but the first, on C_in maps per prefix
            sizes[d] = out[d]
            prefixes = math.comb(n + self.spatial_dims - d, self.spatial_dims - d)
            separable += batch * c_in * prefixes * kernel_size[d] * math.prod(sizes)
        separable += batch * c_out * (c_in // groups) * self.basis.num_filters * math.prod(sizes)  # alpha mix
        separable += batch * c_out * (n + 1) * kernel_size[0] * math.prod(out)  # first axis on C_out maps
        return float(dense), float(separable) * _SEPARABLE_OVERHEAD

    def use_separable(self, x: torch.Tensor) -> bool:
        """Whether the forward pass on ``x`` takes the separable path (``path`` or the cheaper estimate)."""
        if self.path != "auto":
            return self.path == "separable"
        dense, separable = self._cost(x, self.kernel_shape())
        return separable < dense

    def _separable_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Separable path: 1D filters on every axis but the first, alpha mix, then the first axis.

        Basis filter ``(n_0, ..., n_{D-1})`` is the outer product of 1D derivatives, so the 1D responses are
        shared between basis filters along a prefix tree.  Mixing by alpha *before* the first axis leaves
        ``(order + 1) * C_out`` maps to filter instead of ``F * C_in``:
        ``y_o = sum_{n_0} g_{n_0} * (sum_{c, rest} alpha[o, c, (n_0, rest)] y_{c, rest})``.
        """
        d_total, n_max = self.spatial_dims, self.order
        tables = self.basis.factors(self.sigma.to(self.alpha.dtype))
        # zeros are left to the per-axis filters (N-Jet kernels are odd: the zero padding is symmetric)
        x, padding = self.pad_input(x, [t.shape[1] for t in tables])
        pads = [(p, p) for p in padding]
        batch, c_in = x.shape[:2]
        # state (P, B * C_in, *S): one map per derivative prefix, prefixes sorted by total order.  Every step
        # filters the *last* spatial axis and writes it back as the *first*, so each step works on a contiguous
        # last axis and, once axes D-1..1 are done, the layout is (a_1, ..., a_{D-1}, a_0).
        state = x.reshape(1, batch * c_in, *x.shape[2:])
        prefixes: list[tuple[int, ...]] = [()]
        for d in reversed(range(1, d_total)):
            totals = [sum(p) for p in prefixes]
            pieces: dict[int, list[tuple[torch.Tensor, list[tuple[int, ...]]]]] = {}
            for t in sorted(set(totals)):
                first, last = totals.index(t), len(totals) - totals[::-1].index(t)
                n_sel = n_max - t + 1
                out = _axis_filter(state[first:last], tables[d][:n_sel], self.stride[d], self.dilation[d], pads[d])
                # unbind rather than out[n]: its backward is one stack, not one zero-filled tensor per slice
                for n, piece in enumerate(out.unbind(0)):  # out: (n_sel, G, M, L_out, *other axes)
                    pieces.setdefault(t + n, []).append((piece, [(n,) + p for p in prefixes[first:last]]))
            ordered = [piece for total in sorted(pieces) for piece in pieces[total]]
            state = torch.cat([piece for piece, _ in ordered], 0) if len(ordered) > 1 else ordered[0][0]
            prefixes = [name for _, names in ordered for name in names]
        order_index = {c: i for i, c in enumerate(self.basis.orders)}
        rest = state.shape[2:]
        ones = [1] * d_total
        per_group = c_in // self.groups
        mixed = []
        for n in range(n_max + 1):
            count = sum(1 for p in prefixes if sum(p) <= n_max - n)  # a leading slice: prefixes are sorted
            idx = torch.tensor([order_index[(n,) + p] for p in prefixes[:count]], device=self.alpha.device)
            y = state[:count].reshape(count, batch, c_in, *rest)
            if self.groups == 1:  # (B, P * C_in): a view when B == 1
                feats = y.movedim(1, 0).reshape(batch, count * c_in, *rest)
                w = self.alpha[:, :, idx].transpose(1, 2).reshape(self.out_channels, count * c_in, *ones)
            else:  # groups split the input channels, so C_in must be the major index
                feats = y.permute(1, 2, 0, *range(3, 3 + len(rest))).reshape(batch, c_in * count, *rest)
                w = self.alpha[:, :, idx].reshape(self.out_channels, per_group * count, *ones)
            mixed.append(CONV_FUNCTIONS[d_total](feats, w, None, 1, 0, 1, self.groups))
        z = torch.stack(mixed, 0).reshape(n_max + 1, batch * self.out_channels, *rest)
        out = _axis_filter(z, tables[0], self.stride[0], self.dilation[0], pads[0], reduce=True)
        out = out.reshape(batch, self.out_channels, *out.shape[1:])
        if self.bias is not None:
            out = out + self.bias.reshape(1, -1, *ones)
        return out

    def conv_forward(self, x: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The dense path (:meth:`ImplicitConv.conv_forward`) or, without an explicit ``weight`` and when
        :meth:`use_separable` says so, the separable path; both give the same result."""
        if weight is None and self.use_separable(x):
            return self._separable_forward(x)
        return super().conv_forward(x, weight)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        s += f", order={self.order}, sigma={float(self.sigma.detach()):.4g}, k={self.k:g}"
        if not self.learn_sigma:
            s += ", learn_sigma=False"
        if self.path != "auto":
            s += f", path={self.path!r}"
        return s


def _axis_filter(
    x: torch.Tensor, table: torch.Tensor, stride: int, dilation: int, pad: tuple[int, int], reduce: bool = False
) -> torch.Tensor:
    """Correlate the last axis of ``x`` with the rows of ``table`` (the separable N-Jet path).

    A strided cross-correlation along one axis is a product with a banded Toeplitz matrix; applied block-wise
    (``block`` outputs per GEMM row) it runs as one matrix multiplication, which on CPU is one to two orders of
    magnitude faster than ``conv*d`` with a single input channel.

    Shapes: ``reduce=False``: ``x (G, M, *A, L)``, ``table (R, k)`` -> ``(R, G, M, L_out, *A)``, every row applied
    to every map; ``reduce=True``: ``x (R, M, *A, L)`` -> ``(M, L_out, *A)``, ``sum_r table[r] * x[r]`` (the sum
    runs inside the GEMM).  The filtered axis moves to the front of the spatial axes.
    """
    rows, k = table.shape
    span = dilation * (k - 1) + 1
    length = x.shape[-1] + pad[0] + pad[1]
    l_out = (length - span) // stride + 1
    block = min(l_out, max(32, 2 * span))
    n_blocks = -(-l_out // block)
    window = (block - 1) * stride + span
    extra = (n_blocks - 1) * block * stride + window - length  # zeros that only feed the trimmed outputs
    x = F.pad(x, (pad[0], pad[1] + max(extra, 0)))
    windows = x.unfold(-1, window, block * stride)  # (G, M, *A, n_blocks, window)
    # toeplitz[r, i, j] = table[r, q] where input i feeds output j through tap q: i = j * stride + q * dilation
    rel = torch.arange(window, device=x.device)[:, None] - torch.arange(block, device=x.device)[None, :] * stride
    tap = torch.div(rel, dilation, rounding_mode="floor")
    valid = (rel >= 0) & (rel % dilation == 0) & (tap < k)
    toeplitz = table[:, tap.clamp(0, k - 1)] * valid.to(table.dtype)  # (R, window, block)
    if reduce:
        windows = windows.movedim(0, -2)  # (M, *A, n_blocks, R, window)
        out = windows.reshape(*windows.shape[:-2], rows * window) @ toeplitz.reshape(rows * window, block)
        out = out.reshape(*out.shape[:-2], n_blocks * block)[..., :l_out]
        return out.movedim(-1, 1)
    out = windows @ toeplitz.permute(1, 2, 0).reshape(window, block * rows)  # (G, M, *A, n_blocks, block * R)
    out = out.reshape(*out.shape[:-2], n_blocks * block, rows)[..., :l_out, :]
    return out.movedim(-1, 0).movedim(-1, 3)


def sigmas(net: nn.Module) -> list[tuple[str, float, tuple[int, ...]]]:
    """The learned-scale readout (N-Jet paper, Fig. 5b, Fig. 10): ``(layer name, sigma, kernel size)`` per N-Jet layer.

    Layers are listed in ``net.named_modules()`` order (input to output for the networks of this package);
    the kernel size is per axis.  ``net`` may itself be an :class:`NJetConv` (its name is then ``""``).
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"sigmas expects an nn.Module, got {type(net).__name__}.")
    out = []
    for name, module in net.named_modules():
        if isinstance(module, NJetConv):
            with torch.no_grad():
                sigma = float(module.sigma)
            out.append((name, sigma, module.basis.kernel_size(sigma)))
    return out



def njet_param_groups(
    net: nn.Module, lr: float, sigma_lr_factor: float = 1.0, sigma_weight_decay: float = 0.0
) -> list[dict]:
    """Optimizer parameter groups with the N-Jet scales apart from every other parameter.

    The scales usually want no weight decay (it would pull every sigma back to its initial value) and may want
    their own learning rate; the paper applies L2 regularisation to the alphas only (N-Jet paper, Sec. 4.1).

    Returns:
        ``[{"params": others, "lr": lr}, {"params": scales, "lr": sigma_lr_factor * lr,
        "weight_decay": sigma_weight_decay}]`` for ``torch.optim`` (frozen scales are left out).
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"njet_param_groups expects an nn.Module, got {type(net).__name__}.")
    if not lr > 0 or not sigma_lr_factor > 0:
        raise ValueError(f"lr and sigma_lr_factor must be positive, got {lr!r} and {sigma_lr_factor!r}.")
    scales = [m.raw_sigma for m in net.modules() if isinstance(m, NJetConv) and m.raw_sigma.requires_grad]
    ids = {id(p) for p in scales}
    others = [p for p in net.parameters() if id(p) not in ids]
    return [
        {"params": others, "lr": lr},
        {"params": scales, "lr": sigma_lr_factor * lr, "weight_decay": sigma_weight_decay},
    ]
