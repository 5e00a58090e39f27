"""Convolutions built from a kernel network (ImplicitConv and its families)."""

from .hyperconv import HyperConv
from .implicit_conv import ImplicitConv, same_padding
from .nerd import NeRDc, NeRDHead, NeRDm, PositionEncoding, position_encoding, window_origins
