"""NJetUNet: the shared U-Net skeleton with N-Jet convolutions ("Resolution learning in deep convolutional networks
using scale-space theory", Pintea, Tömen et al., Sec. 4.2, Exp. 1(B))."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from monai_implicit.layers.njet import NJetConv
from monai_implicit.networks.nets.unet import ConvFactory, ConvUNet, HeadFactory, conv_factory

__all__ = ["njet_conv", "NJetUNet"]


def njet_conv(*args: Any, **kwargs: Any) -> ConvFactory:
    """A :data:`~monai_implicit.networks.nets.unet.ConvFactory` of :class:`NJetConv` layers.

    Arguments as :class:`NJetConv` after ``(spatial_dims, in_channels, out_channels)``: ``order`` (2),
    ``init_sigma`` (1.0), ``k`` (2.0), ``learn_sigma``, ``sigma_range``, ``max_kernel_size``, ``padding_mode``,
    ``spacing``, ``init``, ``path``.  Every layer built by the factory has its own sigma, shared by all its filters
    (Exp. 1(B) of the N-Jet paper).
    """
    return conv_factory(NJetConv, *args, **kwargs)


class NJetUNet(ConvUNet):
    """U-Net whose convolutions are N-Jet layers that learn their own scale ("Resolution learning in deep
    convolutional networks using scale-space theory", Sec. 4.2, Exp. 1(B)).

    Defaults follow the paper's segmentation U-Net: three resolution levels (``depth=2`` max-pools), 64 channels at
    the first level doubling at every level, two convolutions per level, basis order 2 (the paper compares orders
    2 and 4 and finds 2 sufficient), ``init_sigma=1`` with ``k=2`` (7-tap initial kernels) and one learned sigma per
    layer shared by all its filters, "same" padding, no dropout.  Differences: the decoder is the package's skeleton
    (:class:`~monai_implicit.networks.nets.unet.ConvUNet`: nearest upsampling followed by one N-Jet block), and
    BatchNorm is on by default (MONAI convention); ``norm=None`` reproduces the paper's normalisation-free U-Net,
    trained there with batch size 1, Adam 1e-4 and class-frequency-weighted cross-entropy.

    Read the learned scales with :func:`~monai_implicit.layers.njet.sigmas` (or log them every epoch with
    :class:`~monai_implicit.handlers.NJetSigmaLogger`); ``monai_implicit.networks.utils.bake`` turns a trained
    network into plain convolutions of the learned kernel sizes.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        out_channels: output channels (logits).
        features: channels of the first encoder level (64 in the paper).
        depth: number of max-pools (2 in the paper: three levels).
        order: basis order of every N-Jet layer (2 or 4 in the paper).
        init_sigma: initial scale of every layer, in voxels (or in the unit of ``spacing``).
        k: kernel extent in units of sigma (2).
        learn_sigma: learn the scales.
        sigma_range: bounds that no scale can leave.
        max_kernel_size: largest kernel size per axis (None: the size needed at ``sigma_range[1]``).
        input_features: channels of an extra input block (None in the paper's U-Net).
        norm, act, dropout, dropout_mode, non_local: see :class:`ConvUNet`.
        padding_mode: padding of every N-Jet layer.
        spacing: optional voxel size; sigma is then physical and kernels anisotropic in voxels.
        init: ``"fan_in"`` or ``"he"``, the plain-convolution variance of the initial filters.
        path: ``"auto"``, ``"dense"`` or ``"separable"`` execution of every N-Jet layer.
        head: optional final classifier factory (default 1x1 convolution).

    Shapes: ``(B, in_channels, *S) -> (B, out_channels, *S)``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        features: int = 64,
        depth: int = 2,
        order: int = 2,
        init_sigma: float = 1.0,
        k: float = 2.0,
        learn_sigma: bool = True,
        sigma_range: Sequence[float] = (0.5, 8.0),
        max_kernel_size: Optional[int] = None,
        input_features: Optional[int] = None,
        norm: Union[str, tuple, None] = "batch",
        act: Union[str, tuple, None] = "relu",
        dropout: float = 0.0,
        dropout_mode: str = "all",
        non_local: bool = False,
        padding_mode: str = "zeros",
        spacing: Optional[Union[float, Sequence[float]]] = None,
        init: str = "fan_in",
        path: str = "auto",
        head: Optional[HeadFactory] = None,
    ) -> None:
        factory = njet_conv(
            order=order, init_sigma=init_sigma, k=k, learn_sigma=learn_sigma, sigma_range=sigma_range,
            max_kernel_size=max_kernel_size, padding_mode=padding_mode, spacing=spacing, init=init, path=path,
        )
        # A throw-away layer, built before the skeleton: NJetConv's own checks run before any other layer is built,
        # and the random stream (hence every seeded NJetUNet, the bundles' included) stays what it always was.
        factory(spatial_dims, 1, 1)
        super().__init__(
            spatial_dims, in_channels, out_channels, factory, features=features, depth=depth,
            input_features=input_features, norm=norm, act=act, dropout=dropout, dropout_mode=dropout_mode,
            non_local=non_local, head=head,
        )
