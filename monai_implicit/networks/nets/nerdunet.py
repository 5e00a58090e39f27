"""NeRDUNet: a U-Net whose final classifier is a NeRD head ("NeRD: Neural Representation of Distribution for Medical
Image Segmentation", Zhang et al., Sec. 2.2, Fig. 3)."""

from typing import Any, List, Optional, Sequence, Union

import torch

from monai_implicit.layers.nerd import POSITION_MODES, NeRDc, NeRDm, window_origins
from monai_implicit.networks.nets._checks import check_input
from monai_implicit.networks.nets.hyperunet import hyper_conv
from monai_implicit.networks.nets.unet import ConvUNet, HeadFactory, conv_factory, plain_conv
from monai_implicit.utils import check_ints, check_option, is_integer

__all__ = ["NERD_HEADS", "NERD_BACKBONES", "nerd_head", "NeRDUNet"]

NERD_HEADS = ("nerdc", "nerdm")
NERD_BACKBONES = ("plain", "hyper")


def nerd_head(
    head: str = "nerdc",
    hidden: Sequence[int] = (32, 32),
    act: Union[str, tuple] = ("leakyrelu", {"negative_slope": 0.1}),
    position: str = "patch",
    cache: bool = True,
) -> HeadFactory:
    """A :data:`~monai_implicit.networks.nets.unet.HeadFactory` of NeRD heads (:class:`NeRDc` or :class:`NeRDm`).

    Any :class:`ConvUNet` accepts it (``HyperUNet(2, 1, 2, head=nerd_head("nerdm"))``); called with the features
    only, the head uses patch positions.  Global positions need the window coordinates, which only
    :class:`NeRDUNet` forwards to its head.  ``head`` and ``position`` are checked here, when the factory is made,
    not only when the network builds its head after the whole backbone.
    """
    cls = NeRDc if check_option(head, NERD_HEADS, "head") == "nerdc" else NeRDm
    position = check_option(position, POSITION_MODES, "position")
    return conv_factory(cls, hidden=hidden, act=act, position=position, cache=cache)


def _unet_widths(features: Union[int, Sequence[int]], depth: Optional[int]) -> tuple[int, int]:
    """``features`` as ConvUNet's ``(features, depth)``: an int (with ``depth``, default 4) or a doubling sequence."""
    if is_integer(features):
        return int(features), 4 if depth is None else depth  # both checked by ConvUNet
    if isinstance(features, (str, bytes)) or not isinstance(features, Sequence) or len(features) == 0:
        raise TypeError(f"features must be an int or a non-empty sequence of ints, got {features!r}.")
    widths = check_ints(features, "features")
    if any(b != 2 * a for a, b in zip(widths[:-1], widths[1:])):
        raise ValueError(
            "features must double at every level (the U-Net skeleton uses features * 2**i), e.g. "
            f"(16, 32, 64, 128, 256); got {tuple(widths)}."
        )
    if depth is not None and depth != len(widths) - 1:
        raise ValueError(f"depth={depth} contradicts features={tuple(widths)} (which implies depth {len(widths) - 1}).")
    return widths[0], len(widths) - 1


class NeRDUNet(ConvUNet):
    """U-Net with a NeRD head ("NeRD: Neural Representation of Distribution for Medical Image Segmentation",
    Sec. 2.2, Fig. 3): the plain or hyper-convolution U-Net skeleton of :class:`ConvUNet` whose final 1x1 classifier
    is replaced by :class:`NeRDc` or :class:`NeRDm`.

    The defaults follow the paper's low-capacity network "256": channels ``[16, 32, 64, 128, 256]`` (four max-pools),
    two 3x3 convolutions per level, BatchNorm, ReLU, no input block and no dropout; ``features=32`` gives the "512"
    network.  ``backbone="hyper"`` uses hyper-convolutions ("Hyper-Convolutions via Implicit Kernels for Medical
    Imaging") with the same topology, so a comparison changes only the convolution.

    Sparse foreground and ``act="relu"``: the NeRDc classifier has no bias (as in the paper), so on ReLU features
    the foreground-minus-background logit is 0 wherever every feature is dead.  On sparse-lesion data (WMH) we
    observed training settle there: all last-layer features dead at the lesions, the foreground probability capped at
    exactly 0.5 and no gradient to leave it (Dice 0 after 300 iterations), while the same network with
    ``act=("leakyrelu", {"negative_slope": 0.1})`` reached a training Dice of 0.89 after 100 iterations.  Use a
    leaky activation for such tasks (the ``nerdunet_wmh`` bundle does).

    Positions: ``position="patch"`` (default) encodes the position of every voxel in the network input, which is what
    padding artefacts depend on and needs nothing but the input.  ``position="global"`` encodes positions in the whole
    image: the forward then needs the window coordinates and the image size, which
    ``sliding_window_inference(image, roi, sw_batch, net, with_coord=True, image_size=image.shape[2:])`` passes
    (``with_coord`` gives the window slices, extra keyword arguments are forwarded to the network).  The attribute
    :attr:`image_size` is used when the forward receives none, and :attr:`position` can be switched after training.
    See :mod:`monai_implicit.layers.nerd` for the exact encoding.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        out_channels: number of classes (logits; apply sigmoid/softmax in the loss or post-processing).
        head: ``"nerdc"`` (per-position classifier) or ``"nerdm"`` (per-position mean/std, Eq. 5).
        backbone: ``"plain"`` (``nn.Conv``) or ``"hyper"`` (:class:`~monai_implicit.layers.hyperconv.HyperConv`).
        features: the channels per level, a doubling sequence such as ``(16, 32, 64, 128, 256)``, or the first
            level's channels (then ``depth`` max-pools, 4 by default).
        depth: number of max-pools when ``features`` is an int (must agree with a sequence otherwise).
        kernel_size: convolution kernel size of the backbone.
        hidden: hidden widths of the NeRD position MLP.
        position: ``"patch"`` or ``"global"`` positions.
        image_size: whole-image spatial size used by global positions when the forward gets none.
        n_l: hyper-network capacity ``N_L`` (``backbone="hyper"`` only).
        input_features, norm, act, dropout, dropout_mode, non_local: see :class:`ConvUNet`.
        cache: cache the position-dependent head parameters in eval mode.

    Shapes:
        ``forward(x (B, in_channels, *S), coords=None, image_size=None) -> (B, out_channels, *S)``.  ``coords`` is
        what ``sliding_window_inference(..., with_coord=True)`` passes, or a ``(B, D)`` tensor of window origins
        (the only form a TorchScript-compiled network accepts; convert with
        :func:`~monai_implicit.layers.nerd.window_origins`).  Both are ignored in patch mode.
    """

    __jit_unused_properties__ = ["position"]
    image_size: Optional[List[int]]

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        head: str = "nerdc",
        backbone: str = "plain",
        features: Union[int, Sequence[int]] = (16, 32, 64, 128, 256),
        depth: Optional[int] = None,
        kernel_size: Union[int, Sequence[int]] = 3,
        hidden: Sequence[int] = (32, 32),
        position: str = "patch",
        image_size: Optional[Sequence[int]] = None,
        n_l: int = 4,
        input_features: Optional[int] = None,
        norm: Union[str, tuple, None] = "batch",
        act: Union[str, tuple, None] = "relu",
        dropout: float = 0.0,
        dropout_mode: str = "bottleneck",
        non_local: bool = False,
        cache: bool = True,
    ) -> None:
        backbone = check_option(backbone, NERD_BACKBONES, "backbone")
        f0, depth = _unet_widths(features, depth)
        conv = plain_conv(kernel_size) if backbone == "plain" else hyper_conv(kernel_size, n_l=n_l)
        super().__init__(
            spatial_dims, in_channels, out_channels, conv, features=f0, depth=depth, input_features=input_features,
            norm=norm, act=act, dropout=dropout, dropout_mode=dropout_mode, non_local=non_local,
            head=nerd_head(head, hidden=hidden, position=position, cache=cache),
        )
        self.head_type: str = "nerdc" if isinstance(self.head, NeRDc) else "nerdm"
        self.backbone: str = backbone
        self.image_size = None if image_size is None else self._check_image_size(image_size)

    def _check_image_size(self, image_size: Sequence[int]) -> List[int]:
        sizes = [int(s) for s in image_size]
        if len(sizes) != self.spatial_dims or any(s < 1 for s in sizes):
            raise ValueError(f"image_size must be {self.spatial_dims} positive ints, got {tuple(image_size)}.")
        return sizes

    @property
    def position(self) -> str:
        """``"patch"`` or ``"global"``: the head's position mode (settable, e.g. for inference)."""
        return self.head.position

    @position.setter
    def position(self, mode: str) -> None:
        self.head.position = mode

    def forward(
        self, x: torch.Tensor, coords: Optional[torch.Tensor] = None, image_size: Optional[List[int]] = None
    ) -> torch.Tensor:
        check_input(x, self.net_name, self.in_channels, self.spatial_dims)
        if not torch.jit.is_scripting():
            coords, image_size = self._global_arguments(x, coords, image_size)
        if image_size is None:
            image_size = self.image_size
        return self.head(self.forward_features(x), coords, image_size)

    def _global_arguments(self, x: torch.Tensor, coords: Any, image_size: Any) -> tuple:
        """Eager-mode conversion of sliding_window_inference's window slices and of any image_size sequence."""
        if self.head.position != "global":
            return None, None
        if coords is not None:
            coords = window_origins(coords, list(x.shape[2:]), x.shape[0]).to(x.device)
        if image_size is not None:
            image_size = self._check_image_size(image_size)
        return coords, image_size

    def extra_repr(self) -> str:
        return f"head={self.head_type!r}, backbone={self.backbone!r}, position={self.position!r}"
