"""Networks following MONAI conventions (spatial_dims first)."""

from .ckcnn import CKCNN
from .flexunet import FlexUNet, flex_conv
from .hyperunet import FlatCNN, FlatHyperCNN, HyperUNet, hyper_conv
from .nerdunet import NeRDUNet, nerd_head
from .njetunet import NJetUNet, njet_conv
from .reconstruction import DataConsistency, ResidualReconstruction, data_consistency
from .unet import ConvBlock, ConvUNet, NonLocalBlock, PlainUNet, conv_factory, plain_conv
