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
* two execution paths with the same result: the dense kernel (an ordinary convolution) and the separable path
  (per-axis 1D Gaussian-derivative filters shared between basis filters as a tree, each a matrix product with a
  banded matrix, then one matrix product mixing them by alpha), far cheaper for large sigma in 3D.  ``path="auto"``
  times both once per input shape and kernel size and keeps the faster (:mod:`monai_implicit.layers.autotune`;
  the cost model :meth:`NJetConv.estimated_costs` decides when timing is off).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
from torch import nn

from monai_implicit.kernels.gaussian_derivatives import GaussianDerivativeBasis
from monai_implicit.kernels.hyper import conv_init_variance
from monai_implicit.layers import autotune
from monai_implicit.layers.implicit_conv import ImplicitConv
from monai_implicit.utils import check_int, check_number, check_option, is_real

__all__ = ["NJetConv", "NJET_PATHS", "sigmas", "njet_param_groups"]

NJET_PATHS = ("auto", "dense", "separable")
# time per multiply-add of the separable path (GEMMs with a short inner dimension, memory-bound mixing) over that of
# a dense oneDNN convolution: ~3 on 2 shared AVX-512 cores (64^3, 16 -> 16 channels, order 2, forward + backward).
# Only the fallback when the choice is not measured (see monai_implicit.layers.autotune).
_SEPARABLE_OVERHEAD = 3.0
# outputs per band matrix on long axes: bounds the multiply-adds spent on the band's zeros
_BLOCK = 16


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
        path: ``"auto"`` (the faster, measured once per configuration by :mod:`~monai_implicit.layers.autotune`,
            or by the cost model when measuring is off: ``MONAI_IMPLICIT_AUTOTUNE=0``,
            ``autotune.set_enabled(False)``, deterministic mode, TorchScript), ``"dense"`` or ``"separable"``; both
            give the same result to float rounding, and every padding mode, stride, dilation and groups runs on both.

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
                or not all(is_real(v) for v in sigma_range)):
            raise TypeError(f"sigma_range must be a pair (lo, hi) of numbers, got {sigma_range!r}.")
        lo, hi = float(sigma_range[0]), float(sigma_range[1])
        if not (0 < lo < init_sigma < hi < math.inf):
            raise ValueError(
                f"sigma_range must satisfy 0 < lo < init_sigma < hi, got sigma_range={tuple(sigma_range)} and "
                f"init_sigma={init_sigma}."
            )
        check_option(path, NJET_PATHS, "path")
        largest = basis.kernel_size(hi)
        if check_int(max_kernel_size, "max_kernel_size", allow_none=True) is None:
            max_kernel_size = max(largest)
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
    def estimated_costs(self, x: torch.Tensor, kernel_size: Sequence[int]) -> tuple[float, float]:
        """Cost model: multiply-adds of the dense path and of the separable path (times its overhead) for ``x``."""
        batch, c_in, spatial = x.shape[0], self.in_channels, list(x.shape[2:])
        pads = [left for left, _ in self.padding_for(kernel_size)]
        sizes = list(spatial)
        separable = 0.0
        for d in reversed(range(self.spatial_dims)):  # maps after axis d: prefixes of the remaining axes
            maps = math.comb(self.order + self.spatial_dims - d, self.spatial_dims - d)
            l_out, per_row = _axis_work(sizes[d], kernel_size[d], self.stride[d], self.dilation[d], pads[d])
            separable += batch * c_in * maps * per_row * math.prod(sizes[:d] + sizes[d + 1:])
            sizes[d] = l_out
        separable += batch * self.basis.num_filters * c_in * self.out_channels * math.prod(sizes)  # alpha mix
        dense = batch * self.out_channels * (c_in // self.groups) * math.prod(kernel_size) * math.prod(sizes)
        return float(dense), float(separable) * _SEPARABLE_OVERHEAD

    def use_separable(self, x: torch.Tensor) -> bool:
        """Whether the forward pass on ``x`` takes the separable path: ``path``, or for ``"auto"`` the faster path
        measured once per configuration (:func:`~monai_implicit.layers.autotune.choose`), or the cost model
        :meth:`estimated_costs` when measuring is off."""
        if self.path != "auto":
            return self.path == "separable"
        kernel_size = self.kernel_shape()
        dense, separable = self.estimated_costs(x, kernel_size)
        default = "separable" if separable < dense else "dense"
        if not autotune.can_measure():
            return default == "separable"
        xt = x.detach().requires_grad_(x.requires_grad)
        params = [p for p in self.parameters() if p.requires_grad]
        grad = torch.is_grad_enabled() and (xt.requires_grad or bool(params))
        key = (type(self).__name__, tuple(x.shape), str(x.dtype), str(x.device), self.out_channels, self.order,
               tuple(kernel_size), self.stride, self.dilation, self.groups, self.padding_mode, grad)
        candidates = {
            "dense": autotune.with_backward(lambda: ImplicitConv.conv_forward(self, xt), [xt, *params]),
            "separable": autotune.with_backward(lambda: self._separable_forward(xt), [xt, *params]),
        }
        work = min(dense, separable / _SEPARABLE_OVERHEAD)
        return autotune.choose(key, candidates, default, work=work, device=x.device) == "separable"

    def _separable_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Separable path: 1D Gaussian-derivative filters along every axis, shared like a tree, then the alpha mix.

        Basis filter ``(n_0, ..., n_{D-1})`` is the outer product of 1D derivatives (N-Jet paper, Eq. 3), so the
        response to every basis filter is obtained by filtering the last axis with all orders ``0..N``, then the
        previous axis of each of those maps with the orders that keep the total ``<= N``, and so on: ``F`` maps per
        input channel for ``sum_d (maps before axis d) * k_d`` multiply-adds per voxel instead of ``F prod(k)``.
        One matrix product then mixes the ``F * C_in`` maps into ``C_out`` channels with the alphas.

        Every axis filter is one matrix product with a banded matrix (:func:`_band_matrix`) whose rows hold the
        shifted 1D kernels of all orders: it writes the filtered axis, with the order, in front of the others, so
        the next axis is always the contiguous one and no step transposes its input.
        """
        d_total, n_max = self.spatial_dims, self.order
        tables = self.basis.factors(self.sigma.to(self.alpha.dtype))
        # zeros are left to the band matrices (N-Jet kernels are odd: the zero padding is symmetric)
        x, padding = self.pad_input(x, [t.shape[1] for t in tables])
        batch = x.shape[0]
        # one contiguous map per derivative prefix (orders of the axes filtered so far); the last axis is the next to
        # filter.  Start: (B, C_in, L_0, ..., L_{D-1}); after the step on axis d: (L_d', ..., L_{D-1}', B, C_in,
        # L_0, ..., L_{d-1}).  Separate maps (no concatenation) keep every product free of copies.
        maps: list[tuple[tuple[int, ...], torch.Tensor]] = [((), x)]
        for d in reversed(range(1, d_total)):
            maps = [
                ((n,) + prefix, piece)
                for prefix, m in maps
                for n, piece in enumerate(self._filter_axis(m, tables[d][: n_max - sum(prefix) + 1], d, padding))
            ]
        # first axis, then the alpha mix of every basis response straight into the output:
        # y (L_0' ... L_{D-1}' B, C_out) = sum_f response_f (..., C_in) @ mix_f (C_in, C_out)
        order_index = {c: i for i, c in enumerate(self.basis.orders)}
        mix = self._mixing_matrices()
        out: Optional[torch.Tensor] = None
        for prefix, m in maps:
            for n, piece in enumerate(self._filter_axis(m, tables[0][: n_max - sum(prefix) + 1], 0, padding)):
                weight = mix[order_index[(n,) + prefix]]
                piece = piece.reshape(-1, self.in_channels)
                out = piece @ weight if out is None else out.addmm_(piece, weight)
        assert out is not None
        spatial = [(s + 2 * p - (self.dilation[i] * (t.shape[1] - 1) + 1)) // self.stride[i] + 1
                   for i, (s, p, t) in enumerate(zip(x.shape[2:], padding, tables))]
        out = out.reshape(*spatial, batch, self.out_channels).movedim(-2, 0).movedim(-1, 1).contiguous()
        if self.bias is not None:
            out = out + self.bias.reshape(1, -1, *([1] * d_total))
        return out

    def _filter_axis(self, m: torch.Tensor, table: torch.Tensor, d: int, padding: Sequence[int]) -> list[torch.Tensor]:
        """Filter the last axis of ``m`` with every row of ``table`` (:func:`_axis_filter`): one map per row, of
        shape ``(L_d', *m.shape[:-1])``, contiguous."""
        out = _axis_filter(m.reshape(-1, m.shape[-1]), table, self.stride[d], self.dilation[d], padding[d])
        return [piece.reshape(piece.shape[0], *m.shape[:-1]) for piece in out]

    def _mixing_matrices(self) -> torch.Tensor:
        """``(F, C_in, C_out)``: the alphas of basis filter ``f`` as a matrix (block-diagonal over the groups)."""
        if self.groups == 1:
            return self.alpha.permute(2, 1, 0)
        g = self.groups
        alpha = self.alpha.reshape(g, self.out_channels // g, self.in_channels // g, -1)
        eye = torch.eye(g, dtype=alpha.dtype, device=alpha.device)
        return torch.einsum("gocf,gh->fgcho", alpha, eye).reshape(-1, self.in_channels, self.out_channels)

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


def _band_matrix(
    table: torch.Tensor, outputs: tuple[int, int], inputs: tuple[int, int], stride: int, dilation: int, pad: int
) -> torch.Tensor:
    """``(R, b, w)``: the matrices of a strided, dilated 1D cross-correlation with the ``R`` rows of ``table``.

    Entry ``[(r, j), i]`` is ``table[r, q]`` where input ``i`` feeds output ``j`` through tap ``q``
    (``i = j stride - pad + q dilation``), for outputs ``j`` in ``[j0, j1)`` and inputs ``i`` in ``[i0, i1)``:
    zero padding is the absence of the inputs outside the axis, so it costs no copy of the input.
    """
    k = table.shape[1]
    j = torch.arange(*outputs, device=table.device)[:, None]
    rel = torch.arange(*inputs, device=table.device)[None, :] - (j * stride - pad)
    tap = torch.div(rel, dilation, rounding_mode="floor")
    valid = (rel >= 0) & (rel % dilation == 0) & (tap < k)
    return table[:, tap.clamp(0, k - 1)] * valid.to(table.dtype)


def _blocks(length: int, k: int, stride: int, dilation: int, pad: int) -> list[tuple[int, int, int, int]]:
    """``(j0, j1, i0, i1)`` per band matrix of :func:`_axis_filter`: outputs ``[j0, j1)`` read inputs ``[i0, i1)``.

    Blocks of ``max(16, 2 span)`` outputs bound the multiply-adds spent on the band's zeros to a few times the ideal
    ``k`` per output; an axis of at most four blocks is one product (slicing costs more than those zeros).
    """
    span = dilation * (k - 1) + 1
    l_out = (length + 2 * pad - span) // stride + 1
    block = max(_BLOCK, 2 * span)
    block = l_out if l_out <= 4 * block else block
    out = []
    for j0 in range(0, l_out, block):
        j1 = min(j0 + block, l_out)
        out.append((j0, j1, max(j0 * stride - pad, 0), min((j1 - 1) * stride - pad + span, length)))
    return out


def _axis_work(length: int, k: int, stride: int, dilation: int, pad: int) -> tuple[int, int]:
    """``(L_out, multiply-adds per row of the table and per map)`` of :func:`_axis_filter` (the cost model)."""
    blocks = _blocks(length, k, stride, dilation, pad)
    return blocks[-1][1], sum((j1 - j0) * (i1 - i0) for j0, j1, i0, i1 in blocks)


def _axis_filter(
    x: torch.Tensor, table: torch.Tensor, stride: int, dilation: int, pad: int
) -> list[torch.Tensor]:
    """Correlate every row of ``x (Q, L)`` with every row of ``table (R, k)``: ``R`` contiguous ``(L_out, Q)``.

    One matrix product per row and block of outputs with the banded matrix of :func:`_band_matrix` (a GEMM, the
    most efficient primitive on CPU and GPU; a depthwise or single-channel ``conv*d`` runs one to two orders of
    magnitude below it per multiply-add), blocked by :func:`_blocks`.  The result has the filtered axis in front:
    ``x`` is read as its transpose, which BLAS does without a copy.
    """
    bands = []
    for j0, j1, i0, i1 in _blocks(x.shape[-1], table.shape[1], stride, dilation, pad):
        bands.append((_band_matrix(table, (j0, j1), (i0, i1), stride, dilation, pad), x[:, i0:i1].t()))
    rows = []
    for r in range(table.shape[0]):
        pieces = [band[r] @ xt for band, xt in bands]
        rows.append(torch.cat(pieces, 0) if len(pieces) > 1 else pieces[0])
    return rows


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
