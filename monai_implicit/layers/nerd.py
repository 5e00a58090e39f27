"""NeRD: neural representation of the feature distribution ("NeRD: Neural Representation of Distribution for
Medical Image Segmentation", Zhang et al.; Sec. 2).

Padding and pooling make the features of a segmentation network depend on where a voxel sits in the network
input (near a border, near the centre).  NeRD replaces the final pixel-wise classifier of the network by one whose
parameters are a function of the position: a small MLP maps the position vector of each voxel either to the
per-channel statistics of the feature distribution (**NeRDm**, Eq. 4/5) or to a per-position linear classifier
(**NeRDc**, Sec. 2.2).

Position vector (Sec. 2.1, generalised to N-D).  For a voxel with index ``i_d`` on axis ``d`` of an input with
``n_d`` voxels, the distances to the low and the high border, normalised by the size, are::

    low_d  = (i_d + 0.5) / n_d
    high_d = (n_d - i_d - 0.5) / n_d  = 1 - low_d

i.e. the distance from the voxel *centre* to the edge of the field of view (which lies half a voxel beyond the
outermost centre).  We use this rather than ``i / (n - 1)`` because it is the geometric distance to the border,
it is defined for axes of size 1 (a single slice through a 3D network), it matches the ``align_corners=False``
convention of ``F.interpolate``/``grid_sample``, and it composes exactly: a window at origin ``o`` of an image of
size ``N`` has ``low_d = (o_d + i_d + 0.5) / N_d``, which is the patch encoding when the window is the image.
The channel order is ``(low_0, ..., low_{D-1}, high_0, ..., high_{D-1})``; in 2D (axis 0 = rows) this is the
paper's ``(d_t, d_r, d_b, d_l)`` reordered as ``(d_t, d_l, d_b, d_r)``, a permutation the MLP absorbs.

Patch vs global positions.  Padding artefacts arise at the borders of the *network input* (NeRD paper, Sec. 2);
with patch training and sliding-window inference the input is the patch, so the default ``"patch"`` mode encodes
positions relative to the input itself: it needs no extra information, and a training patch and an inference window
of the same size see exactly the same position map.  ``"global"`` mode encodes positions relative to the whole
image from the window origin (e.g. the slices that ``sliding_window_inference(..., with_coord=True)`` passes) and
the whole image size; use it when the position effect to be modelled is anatomical rather than an artefact of the
input borders.  Both modes coincide when the input is the whole image, so a head trained on whole images can be
switched to ``"global"`` for sliding-window inference without retraining.
"""

from __future__ import annotations

import math
from typing import Any, Callable, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from monai.networks.layers.factories import Conv
from monai.networks.layers.utils import get_act_layer
from torch import nn

from monai_implicit.kernels.grids import check_spatial_dims
from monai_implicit.layers.cache import ParameterCache
from monai_implicit.utils import check_ints, check_option, check_positive_int

__all__ = [
    "POSITION_MODES",
    "position_encoding",
    "window_origins",
    "PositionEncoding",
    "NeRDHead",
    "NeRDm",
    "NeRDc",
]

POSITION_MODES = ("patch", "global")
# softplus^{-1}(1): the NeRDm scale 1/sigma starts at exactly 1
_SOFTPLUS_INV_ONE = math.log(math.e - 1.0)


def position_encoding(
    spatial_shape: List[int],
    origin: Optional[torch.Tensor] = None,
    image_size: Optional[List[int]] = None,
    dtype: Optional[torch.dtype] = None,
    device: Optional[torch.device] = None,
) -> torch.Tensor:
    """Normalised distances of every voxel centre to the ``2 * D`` borders (NeRD paper, Sec. 2.1, N-D).

    Args:
        spatial_shape: ``S = (n_0, ..., n_{D-1})``, the spatial size of the network input (the patch).
        origin: optional ``(B, D)`` or ``(D,)`` index of the patch's first voxel in the whole image (global
            positions); zeros when omitted.
        image_size: ``(N_0, ..., N_{D-1})`` of the whole image the origins refer to; ``spatial_shape`` when omitted.
        dtype: floating dtype of the result (default ``torch.get_default_dtype()``).
        device: device of the result (default: the origin's device, else CPU).

    Returns:
        ``(B, 2 * D, *S)`` (``B = 1`` without a batched origin), channels ``(low_0..low_{D-1}, high_0..high_{D-1})``
        with ``low_d = (origin_d + i_d + 0.5) / N_d`` and ``high_d = 1 - low_d``.

    Raises:
        ValueError: if the origin has the wrong shape or the patch does not lie inside the image.
    """
    ndim = len(spatial_shape)
    if dtype is None:
        dtype = torch.float32
        if not torch.jit.is_scripting():
            dtype = torch.get_default_dtype()
    if device is None and origin is not None:
        device = origin.device
    if image_size is None:
        image_size = spatial_shape
    if len(image_size) != ndim:
        raise ValueError(f"image_size must have {ndim} entries (one per spatial axis), got {image_size}.")
    for d in range(ndim):
        if spatial_shape[d] < 1 or image_size[d] < 1:
            raise ValueError(f"sizes must be positive, got spatial_shape {spatial_shape}, image_size {image_size}.")
    if origin is None:
        origin_t = torch.zeros(1, ndim, dtype=dtype, device=device)
    else:
        origin_t = origin.to(dtype=dtype, device=device)
        if origin_t.dim() == 1:
            origin_t = origin_t.unsqueeze(0)
        if origin_t.dim() != 2 or origin_t.shape[1] != ndim:
            raise ValueError(f"origin must have shape (B, {ndim}) or ({ndim},), got {list(origin.shape)}.")
        for d in range(ndim):
            if bool((origin_t[:, d] < 0).any()) or bool((origin_t[:, d] + spatial_shape[d] > image_size[d]).any()):
                lo, hi = int(origin_t[:, d].min()), int(origin_t[:, d].max())
                raise ValueError(
                    f"a window (size {spatial_shape[d]}, origins {lo}..{hi}) leaves the image "
                    f"(size {image_size[d]}) on spatial axis {d}. sliding_window_inference pads images smaller "
                    "than roi_size before slicing: pad the image to at least roi_size yourself, or pass the padded "
                    "size max(image, roi_size) as image_size."
                )
    batch = origin_t.shape[0]
    lows: List[torch.Tensor] = []
    for d in range(ndim):
        centres = torch.arange(spatial_shape[d], dtype=dtype, device=device) + 0.5
        low = (origin_t[:, d : d + 1] + centres.unsqueeze(0)) / float(image_size[d])  # (B, n_d)
        view = [batch] + [1] * ndim
        view[d + 1] = spatial_shape[d]
        lows.append(low.reshape(view).expand([batch] + spatial_shape))
    low_map = torch.stack(lows, dim=1)
    return torch.cat([low_map, 1.0 - low_map], dim=1)


def window_origins(coords: Any, spatial_shape: Sequence[int], batch_size: Optional[int] = None) -> torch.Tensor:
    """The ``(B, D)`` origins of the windows described by ``coords``.

    Accepts what ``monai.inferers.sliding_window_inference(..., with_coord=True)`` passes to the predictor (a list
    with one entry per window of the batch, each a list of slices ``[batch, channel, axis_0, ..., axis_{D-1}]``;
    entries of only the ``D`` spatial slices work too), a ``(B, D)``/``(D,)`` tensor of origins, or nested integer
    sequences of that shape.

    Args:
        coords: the window coordinates, see above.
        spatial_shape: the spatial size of the windows (checked against the slices' extents).
        batch_size: the number of windows in the batch, checked when given.

    Raises:
        TypeError/ValueError: for any other structure, a slice extent that differs from ``spatial_shape`` or a
            number of windows that differs from ``batch_size``.
    """
    ndim = len(spatial_shape)
    if isinstance(coords, torch.Tensor):
        origins = coords.long() if not coords.is_floating_point() else coords
    elif isinstance(coords, (list, tuple)) and len(coords) > 0:
        windows = [coords] if isinstance(coords[0], slice) else list(coords)
        if all(isinstance(w, (list, tuple)) and len(w) > 0 and isinstance(w[0], slice) for w in windows):
            rows = []
            for w in windows:
                spatial = list(w)[-ndim:] if len(w) in (ndim, ndim + 2) else None
                if spatial is None:
                    raise ValueError(
                        f"each window must have {ndim} spatial slices (or {ndim + 2} with batch and channel), "
                        f"got {len(w)}: {w}."
                    )
                row = []
                for d, s in enumerate(spatial):
                    if s.start is None or s.stop is None or s.step not in (None, 1):
                        raise ValueError(f"window slices need explicit start and stop and step 1, got {s}.")
                    if int(s.stop) - int(s.start) != spatial_shape[d]:
                        raise ValueError(
                            f"window slice {s} on spatial axis {d} does not match the input size {spatial_shape[d]}."
                        )
                    row.append(int(s.start))
                rows.append(row)
            origins = torch.tensor(rows, dtype=torch.long)
        else:
            try:
                origins = torch.as_tensor(coords)
            except (TypeError, ValueError, RuntimeError) as e:
                raise TypeError(
                    "coords must be sliding_window_inference's window slices, a (B, D) tensor or nested ints, "
                    f"got {coords!r}."
                ) from e
    else:
        raise TypeError(
            f"coords must be sliding_window_inference's window slices, a (B, D) tensor or nested ints, got {coords!r}."
        )
    if origins.dim() == 1:
        origins = origins.unsqueeze(0)
    if origins.dim() != 2 or origins.shape[1] != ndim:
        raise ValueError(f"window origins must have shape (B, {ndim}), got {list(origins.shape)}.")
    if batch_size is not None and origins.shape[0] not in (1, batch_size):
        raise ValueError(f"got {origins.shape[0]} window origins for a batch of {batch_size}.")
    return origins


class PositionEncoding(nn.Module):
    """The position map of NeRD (NeRD paper, Sec. 2.1) for the input ``x``; see :func:`position_encoding`.

    Args:
        spatial_dims: 1, 2 or 3.
        mode: ``"patch"`` (positions relative to the network input; default, see the module docstring for why) or
            ``"global"`` (relative to the whole image; ``origin`` and ``image_size`` are then required).

    Shapes:
        ``x (B, C, *S) -> (1, 2 * D, *S)`` in patch mode, ``(B, 2 * D, *S)`` (or ``(1, ...)`` for a single origin)
        in global mode.  Holds no parameters; the map has the dtype and device of ``x``.
    """

    def __init__(self, spatial_dims: int, mode: str = "patch") -> None:
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.mode: str = check_option(mode, POSITION_MODES, "position mode")

    @property
    def channels(self) -> int:
        """Number of position channels, ``2 * spatial_dims``."""
        return 2 * self.spatial_dims

    def forward(
        self, x: torch.Tensor, origin: Optional[torch.Tensor] = None, image_size: Optional[List[int]] = None
    ) -> torch.Tensor:
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(f"expected (B, C, *spatial) with {self.spatial_dims} spatial dims, got {list(x.shape)}.")
        shape = list(x.shape[2:])
        if self.mode == "patch":
            return position_encoding(shape, None, None, x.dtype, x.device)
        if self.mode != "global":
            raise ValueError(f"position mode must be 'patch' or 'global', got {self.mode}.")
        if origin is None or image_size is None:
            raise ValueError(
                "global positions need the window origin and the whole image size: call the network as "
                "net(x, coords, image_size=...) (sliding_window_inference(..., with_coord=True, image_size=...) "
                "does this), pass zeros and the input size for a whole-image input, or use mode='patch'."
            )
        if origin.dim() == 2 and origin.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"got {origin.shape[0]} window origins for a batch of {x.shape[0]}.")
        return position_encoding(shape, origin, image_size, x.dtype, x.device)

    def extra_repr(self) -> str:
        return f"spatial_dims={self.spatial_dims}, mode={self.mode!r}"


class NeRDHead(nn.Module):
    """Base class of the NeRD heads: position map -> MLP (1x1 convolutions) -> head parameters -> logits.

    A subclass sets :attr:`n_params` (the MLP's output channels per position), initialises the last MLP layer in
    :meth:`init_last_layer`, turns the raw MLP output into head parameters in :meth:`head_parameters` and applies them
    in :meth:`classify`.  The position MLP depends only on the position, so it is evaluated once per forward on a
    batch of one in patch mode and broadcast over the batch; in eval mode without gradients its output is cached per
    (spatial size, dtype, device) and recomputed when a parameter changes (optimizer step, ``load_state_dict``: the
    key includes every MLP parameter's autograd version counter, as for ``ImplicitConv``).  Global-mode windows all
    have different positions and are not cached.  The paper does not give the MLP's widths or activation; the
    defaults here (two hidden layers of 32, LeakyReLU(0.1) so that no unit dies on the low-dimensional position
    input) cost about 2.2k multiply-adds per voxel, negligible next to the U-Net.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: feature channels ``C`` of the last decoder layer.
        out_channels: number of classes ``K`` (logits).
        hidden: hidden widths of the position MLP (``()`` gives a linear map of the position).
        act: MONAI activation name/tuple between the MLP layers.
        position: ``"patch"`` or ``"global"``, see :class:`PositionEncoding`.
        cache: cache the position-dependent parameters in eval mode (set False to save memory on large inputs).

    Shapes:
        ``x (B, C, *S) -> (B, K, *S)``; optional ``origin (B, D)`` and ``image_size (D,)`` for global positions.
    """

    __jit_unused_properties__ = ["position"]

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        n_params: int,
        hidden: Sequence[int] = (32, 32),
        act: Union[str, tuple] = ("leakyrelu", {"negative_slope": 0.1}),
        position: str = "patch",
        cache: bool = True,
    ) -> None:
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        check_positive_int(in_channels, "in_channels")
        check_positive_int(out_channels, "out_channels")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.n_params = n_params
        self.hidden = check_ints(hidden, "hidden")
        self.use_cache: bool = bool(cache)
        self.encoding = PositionEncoding(spatial_dims, position)
        conv = Conv[Conv.CONV, spatial_dims]
        layers: List[nn.Module] = []
        prev = self.encoding.channels
        for width in self.hidden:
            layers += [conv(prev, width, kernel_size=1), get_act_layer(act)]
            prev = width
        self.last = conv(prev, n_params, kernel_size=1)
        self.mlp = nn.Sequential(*layers, self.last)
        self._params_cache = ParameterCache()

    # ------------------------------------------------------------------ position mode
    @property
    def position(self) -> str:
        """``"patch"`` or ``"global"``; settable (the parameters do not depend on it)."""
        return self.encoding.mode

    @position.setter
    def position(self, mode: str) -> None:
        self.encoding.mode = check_option(mode, POSITION_MODES, "position mode")
        self.invalidate_cache()

    # ------------------------------------------------------------------ subclass interface
    def head_parameters(self, raw: torch.Tensor) -> torch.Tensor:
        """Map the raw MLP output ``(B', n_params, *S)`` to the parameters :meth:`classify` uses."""
        return raw

    def classify(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """``x (B, C, *S)``, ``params (B' in {1, B}, n_params, *S) -> (B, K, *S)``; implemented by subclasses."""
        raise NotImplementedError(f"{type(self).__name__} must implement classify().")

    # ------------------------------------------------------------------ position-dependent parameters
    def position_parameters(
        self, x: torch.Tensor, origin: Optional[torch.Tensor] = None, image_size: Optional[List[int]] = None
    ) -> torch.Tensor:
        """The head parameters at every position of ``x``: ``(1 or B, n_params, *S)`` (cached, see class doc)."""
        if not torch.jit.is_scripting():
            if self._cacheable():
                return self._cached_parameters(x)
        return self.head_parameters(self.mlp(self.encoding(x, origin, image_size)))

    @torch.jit.unused
    def _cached_parameters(self, x: torch.Tensor) -> torch.Tensor:
        return self._params_cache.get(
            self.mlp.parameters(),
            lambda: self.head_parameters(self.mlp(self.encoding(x))),
            (tuple(x.shape[2:]), x.dtype, x.device),
        )

    @torch.jit.unused
    def _cacheable(self) -> bool:
        if not self.use_cache or self.encoding.mode != "patch" or torch.jit.is_tracing():
            return False
        return ParameterCache.applies(self, self.mlp.parameters())

    def invalidate_cache(self) -> None:
        """Drop the eval-time cache (only needed after writing to ``param.data`` by hand)."""
        self._params_cache.invalidate()

    def train(self, mode: bool = True) -> NeRDHead:
        self.invalidate_cache()
        return super().train(mode)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], *args: Any, **kwargs: Any) -> NeRDHead:
        self.invalidate_cache()  # .to()/.half()/.cuda(): a cached map would keep the old device/dtype alive
        return super()._apply(fn, *args, **kwargs)

    # ------------------------------------------------------------------ forward
    def forward(
        self, x: torch.Tensor, origin: Optional[torch.Tensor] = None, image_size: Optional[List[int]] = None
    ) -> torch.Tensor:
        if x.dim() != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"NeRD head expects features (B, {self.in_channels}, *spatial) with {self.spatial_dims} spatial dims, "
                f"got shape {list(x.shape)}."
            )
        return self.classify(x, self.position_parameters(x, origin, image_size))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, hidden={self.hidden}, position={self.position!r}"


class NeRDm(NeRDHead):
    """NeRDm: position -> feature distribution, then the bias-free classifier of Eq. 5 (NeRD paper, Sec. 2.1).

    The MLP predicts, per position ``v`` and feature channel, ``1/sigma_v`` and ``-mu_v/sigma_v`` (the paper's
    numerically stable parameterisation: nothing is divided by a predicted quantity), and

        ``s_v = w^T (x_v * (1/sigma_v) + (-mu_v/sigma_v))``,  with ``w`` a ``(K, C)`` matrix and no bias (Eq. 5).

    With ``positive_scale=True`` (default) ``1/sigma = softplus(a)`` keeps the scale positive, so ``sigma`` remains
    a standard deviation and the sign of a feature cannot flip with position; softplus is smooth and cannot overflow
    (``positive_scale=False`` uses the raw MLP output).  The last MLP layer starts with zero weights and biases
    giving ``1/sigma = 1, -mu/sigma = 0``, so the head starts as the ordinary bias-free 1x1 classifier ``w`` and
    learns the position dependence from there.  A position MLP with constant output makes the head exactly the 1x1
    convolution with weight ``w * (1/sigma)`` and bias ``w (-mu/sigma)``.

    Args:
        spatial_dims, in_channels, out_channels, hidden, act, position, cache: see :class:`NeRDHead`.
        positive_scale: constrain ``1/sigma > 0`` through a softplus.

    Shapes: ``x (B, C, *S) -> (B, K, *S)``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        hidden: Sequence[int] = (32, 32),
        act: Union[str, tuple] = ("leakyrelu", {"negative_slope": 0.1}),
        position: str = "patch",
        cache: bool = True,
        positive_scale: bool = True,
    ) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, 2 * in_channels, hidden, act, position, cache)
        self.positive_scale: bool = bool(positive_scale)
        self.classifier = Conv[Conv.CONV, spatial_dims](in_channels, out_channels, kernel_size=1, bias=False)
        with torch.no_grad():
            self.last.weight.zero_()
            self.last.bias.zero_()
            self.last.bias[:in_channels] = _SOFTPLUS_INV_ONE if self.positive_scale else 1.0

    def head_parameters(self, raw: torch.Tensor) -> torch.Tensor:
        """``(B', 2C, *S)`` raw -> ``(B', 2C, *S)`` = ``[1/sigma (C channels), -mu/sigma (C channels)]``."""
        scale, shift = raw[:, : self.in_channels], raw[:, self.in_channels :]
        if self.positive_scale:
            scale = F.softplus(scale)
        return torch.cat([scale, shift], dim=1)

    def classify(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        scale, shift = params[:, : self.in_channels], params[:, self.in_channels :]
        return self.classifier(torch.addcmul(shift, x, scale))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", positive_scale={self.positive_scale}"


class NeRDc(NeRDHead):
    """NeRDc: position -> a per-position linear classifier, ``s_v = x_v^T w_v`` (NeRD paper, Sec. 2.2).

    The MLP predicts ``w_v`` (``C x K`` numbers; laid out as a ``(K, C)`` matrix like a 1x1 convolution weight) and,
    with ``bias=True``, a per-position bias ``b_v`` (the paper's classifier has none).  The last MLP layer starts with
    zero weights and a bias drawn like the default ``nn.Conv`` initialisation of a 1x1 classifier, so the head
    starts as an ordinary 1x1 classifier; a position MLP with constant output is exactly that 1x1 convolution.
    The contraction over ``C`` is done class by class, which needs no ``(B, K, C, *S)`` temporary.

    Args:
        spatial_dims, in_channels, out_channels, hidden, act, position, cache: see :class:`NeRDHead`.
        bias: also predict a per-position bias ``b_v``, ``s_v = x_v^T w_v + b_v``.

    Shapes: ``x (B, C, *S) -> (B, K, *S)``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        hidden: Sequence[int] = (32, 32),
        act: Union[str, tuple] = ("leakyrelu", {"negative_slope": 0.1}),
        position: str = "patch",
        cache: bool = True,
        bias: bool = False,
    ) -> None:
        n_params = in_channels * out_channels + (out_channels if bias else 0)
        super().__init__(spatial_dims, in_channels, out_channels, n_params, hidden, act, position, cache)
        self.bias: bool = bool(bias)
        reference = Conv[Conv.CONV, spatial_dims](in_channels, out_channels, kernel_size=1, bias=bias)
        with torch.no_grad():
            self.last.weight.zero_()
            self.last.bias[: in_channels * out_channels] = reference.weight.reshape(-1)
            if bias:
                self.last.bias[in_channels * out_channels :] = reference.bias

    def classify(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        c = self.in_channels
        logits: List[torch.Tensor] = []
        for k in range(self.out_channels):
            s = (x * params[:, k * c : (k + 1) * c]).sum(dim=1)
            if self.bias:
                s = s + params[:, self.out_channels * c + k]
            logits.append(s)
        return torch.stack(logits, dim=1)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", bias={self.bias}"
