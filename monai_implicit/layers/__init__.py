"""Convolutions built from a kernel network (ImplicitConv and its families)."""

from . import autotune
from .cache import ParameterCache
from .ckconv import CKConv, ContinuousKernelConv
from .fft_conv import choose_method, conv_nd, fft_conv, fft_is_faster
from .flexconv import FlexConv, flexconv_param_groups
from .hyperconv import HyperConv
from .implicit_conv import ImplicitConv, same_padding
from .nerd import NeRDc, NeRDHead, NeRDm, PositionEncoding, position_encoding, window_origins
from .njet import NJetConv, njet_param_groups, sigmas
