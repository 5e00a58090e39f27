"""Shared argument validation: NaN and infinite hyper-parameters are refused by every layer, transform and loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import monai_implicit.transforms as T
from monai_implicit.kernels.gaussian_derivatives import GaussianDerivativeBasis
from monai_implicit.kernels.hyper import HyperKernel
from monai_implicit.kernels.magnet import MAGNetKernel
from monai_implicit.kernels.siren import SirenKernel
from monai_implicit.layers.ckconv import CKConv
from monai_implicit.layers.flexconv import FlexConv
from monai_implicit.layers.hyperconv import HyperConv
from monai_implicit.layers.njet import NJetConv
from monai_implicit.losses import MaskedDiceCELoss, alias_free_penalty
from monai_implicit.losses.localization import DualLocalizationLoss
from monai_implicit.networks.nets import CKCNN, FlexUNet, HyperUNet, NJetUNet
from monai_implicit.networks.nets.hyperunet import FlatCNN
from monai_implicit.utils import check_int, check_ints, check_number, check_numbers, check_option, check_probability

NAN, INF = float("nan"), float("inf")

# (name, constructor taking the bad value): every real-valued hyper-parameter of the layers, kernels, networks,
# transforms and losses
CASES = {
    "HyperConv spacing": lambda v: HyperConv(2, 1, 1, 3, spacing=v),
    "HyperConv spacing per axis": lambda v: HyperConv(3, 1, 1, 3, spacing=(1.0, v, 1.0)),
    "HyperConv negative_slope": lambda v: HyperConv(2, 1, 1, 3, negative_slope=v),
    "HyperKernel spacing": lambda v: HyperKernel(2, 1, 1, 3, spacing=v),
    "HyperUNet spacing": lambda v: HyperUNet(2, 1, 1, features=2, depth=1, spacing=v),
    "HyperUNet dropout": lambda v: HyperUNet(2, 1, 1, features=2, depth=1, dropout=v),
    "NJetConv init_sigma": lambda v: NJetConv(2, 1, 1, init_sigma=v),
    "NJetConv k": lambda v: NJetConv(2, 1, 1, k=v),
    "NJetConv sigma_range": lambda v: NJetConv(2, 1, 1, sigma_range=(0.5, v)),
    "NJetConv spacing": lambda v: NJetConv(2, 1, 1, spacing=v),
    "NJetUNet init_sigma": lambda v: NJetUNet(2, 1, 1, features=2, depth=1, init_sigma=v),
    "GaussianDerivativeBasis spacing": lambda v: GaussianDerivativeBasis(2, spacing=v),
    "CKConv omega_0": lambda v: CKConv(1, 1, 1, 9, omega_0=v),
    "CKCNN omega_0": lambda v: CKCNN(1, 1, 1, 4, 9, 1, omega_0=v),
    "SirenKernel omega_0": lambda v: SirenKernel(1, 1, 1, 9, omega_0=v),
    "FlexConv mask_init": lambda v: FlexConv(1, 1, 1, 9, mask_init=v),
    "FlexConv mask_threshold": lambda v: FlexConv(1, 1, 1, 9, mask_threshold=v),
    "FlexConv mask_bounds": lambda v: FlexConv(1, 1, 1, 9, mask_bounds=(None, v)),
    "FlexUNet mask_init": lambda v: FlexUNet(2, 1, 1, features=2, depth=1, mask_init=v),
    "MAGNetKernel input_scale": lambda v: MAGNetKernel(1, 1, 1, 9, input_scale=v),
    "SaltPepperNoise amount": lambda v: T.SaltPepperNoise(amount=v),
    "SaltPepperNoise salt": lambda v: T.SaltPepperNoise(salt=v),
    "RandSaltPepperNoise prob": lambda v: T.RandSaltPepperNoise(prob=v),
    "RandSaltPepperNoised prob": lambda v: T.RandSaltPepperNoised("image", prob=v),
    "SpeckleNoise std": lambda v: T.SpeckleNoise(std=v),
    "RandSpeckleNoise prob": lambda v: T.RandSpeckleNoise(prob=v),
    "RandSpeckleNoised prob": lambda v: T.RandSpeckleNoised("image", prob=v),
    "UndersamplingMask accel": lambda v: T.UndersamplingMask(accel=v),
    "UndersamplingMask tol": lambda v: T.UndersamplingMask(tol=v),
    "RetrospectiveUndersample accel": lambda v: T.RetrospectiveUndersample(accel=v),
    "RandRetrospectiveUndersample tol": lambda v: T.RandRetrospectiveUndersample(tol=v),
    "RetrospectiveUndersampled accel": lambda v: T.RetrospectiveUndersampled("image", accel=v),
    "KspaceGaussianNoise snr_db": lambda v: T.KspaceGaussianNoise(snr_db=v),
    "KspaceGaussianNoise sigma": lambda v: T.KspaceGaussianNoise(sigma=v),
    "RandKspaceGaussianNoise prob": lambda v: T.RandKspaceGaussianNoise(prob=v, sigma=1.0),
    "RandKspaceGaussianNoised prob": lambda v: T.RandKspaceGaussianNoised("kspace", prob=v, sigma=1.0),
    "RandKspaceGaussianNoise sigma": lambda v: T.RandKspaceGaussianNoise(sigma=(0.0, v)),
    "poisson_disk_mask accel": lambda v: T.poisson_disk_mask((32, 32), v, 4),
    "DualLocalizationLoss alpha": lambda v: DualLocalizationLoss(alpha=v),
    "DualLocalizationLoss eps1": lambda v: DualLocalizationLoss(eps1=v),
    "DualLocalizationLoss smooth_dr": lambda v: DualLocalizationLoss(smooth_dr=v),
    "alias_free_penalty sigma_cut": lambda v: alias_free_penalty(FlexConv(1, 1, 1, 9), sigma_cut=v),
    "FlatCNN dropout": lambda v: FlatCNN(2, 1, 1, dropout=v),
    "MaskedDiceCELoss lambda_dice": lambda v: MaskedDiceCELoss(lambda_dice=v),
}


@pytest.mark.parametrize("value", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_nonfinite_parameters_are_refused(case, value):
    with pytest.raises((ValueError, TypeError)) as err:
        CASES[case](value)
    argument = case.split()[1]
    assert argument in str(err.value), str(err.value)  # the message names the argument


def test_nan_spacing_used_to_give_nan_outputs():
    """The failure this guards against: the kernel was sampled on a NaN grid and every output voxel was NaN."""
    layer = HyperConv(2, 1, 1, 3, spacing=(0.5, 2.0))
    assert torch.isfinite(layer(torch.rand(1, 1, 8, 8))).all()
    assert layer.kernel_net.spacing == (0.5, 2.0)


def test_check_number():
    assert check_number(np.float32(2.5), "x", low=0.0, low_open=True) == 2.5
    assert check_number(INF, "x", allow_inf=True) == INF
    assert check_numbers(2, "spacing", 3, low=0.0, low_open=True) == (2.0, 2.0, 2.0)
    assert check_numbers([1.5], "spacing", 2) == (1.5, 1.5)
    assert check_probability(1) == 1.0
    for bad, kwargs, match in [
        (NAN, {"allow_inf": True}, "x must be a number, got nan"),
        (0.0, {"low": 0.0, "low_open": True}, "x must be a positive finite number, got 0.0"),
        (1.5, {"low": 0.0, "high": 1.0}, r"x must be a finite number in \[0, 1\], got 1.5"),
        (3.0, {"high": 3.0, "high_open": True}, "x must be a finite number < 3, got 3.0"),
    ]:
        with pytest.raises(ValueError, match=match):
            check_number(bad, "x", **kwargs)
    for bad in (True, "1", None, torch.tensor(1.0)):
        with pytest.raises(TypeError, match="x must be a real number"):
            check_number(bad, "x")
    with pytest.raises(ValueError, match=r"spacing\[1\] must be a positive finite number"):
        check_numbers((1.0, -1.0), "spacing", 2, low=0.0, low_open=True)
    with pytest.raises(ValueError, match="1 or 3 entries"):
        check_numbers((1.0, 1.0), "spacing", 3)
    with pytest.raises(ValueError, match="prob"):
        check_probability(math.nan)


def test_check_int():
    assert check_int(3, "n") == 3 and type(check_int(np.int64(3), "n")) is int
    assert check_int(0, "n", low=0) == 0 and check_int(None, "n", allow_none=True) is None
    for bad, kwargs, match in [
        (0, {}, "n must be a positive integer, got 0"),
        (True, {}, "n must be a positive integer, got True"),
        (2.0, {}, "n must be a positive integer, got 2.0"),
        (-1, {"low": 0}, "n must be a non-negative integer, got -1"),
        (1, {"low": 2}, "n must be an integer >= 2, got 1"),
        (4, {"low": 1, "high": 3}, r"n must be an integer in \[1, 3\], got 4"),
        (None, {}, "n must be a positive integer, got None"),
        ("a", {"allow_none": True}, "n must be a positive integer or None, got 'a'"),
    ]:
        with pytest.raises(ValueError, match=match):
            check_int(bad, "n", **kwargs)
    assert check_ints(3, "stride", 2) == (3, 3) and check_ints([2], "stride", 3) == (2, 2, 2)
    assert check_ints((8, 16), "hidden") == (8, 16) and check_ints((), "hidden") == ()
    with pytest.raises(ValueError, match=r"stride\[1\] must be a positive integer, got 0"):
        check_ints((1, 0), "stride", 2)
    with pytest.raises(ValueError, match="stride must have 1 or 2 entries, got 3"):
        check_ints((1, 1, 1), "stride", 2)
    with pytest.raises(TypeError, match="hidden must be a sequence of integers"):
        check_ints(8, "hidden")
    assert check_option("b", ("a", "b"), "mode") == "b"
    with pytest.raises(ValueError, match=r"mode must be one of \('a', 'b'\), got 'c'"):
        check_option("c", ("a", "b"), "mode")
