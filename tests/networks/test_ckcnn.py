"""CKCNN ("Continuous representation of kernels used in convolutional neural networks", Jonker, Fig. 4): structure,
shapes, deployment and learning on simulated RF lines."""

import numpy as np
import pytest
import torch
from monai.networks.utils import convert_to_torchscript

from monai_implicit.data.rf import simulate_rf_line
from monai_implicit.layers.ckconv import CKConv
from monai_implicit.losses.localization import DualLocalizationLoss
from monai_implicit.networks.nets.ckcnn import CKCNN
from monai_implicit.networks.utils import bake


def test_structure_and_parameter_count():
    net = CKCNN(kernel_size=65)
    convs = [m for m in net.modules() if isinstance(m, CKConv)]
    assert len(convs) == 4 and all(c.padding_mode == "reflect" and c.kernel_size == (65,) for c in convs)
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 22)] + [(22, 22)] * 3
    # per CKConv: SIREN 1->32->32->Cin*Cout, (1+1)32 + (32+1)32 + (32+1) Cin Cout, + Cout bias;
    # BatchNorm 2*22 per block; 1x1 head 22 + 1
    siren = (1 + 1) * 32 + (32 + 1) * 32
    expected = sum(siren + 33 * c.in_channels * c.out_channels + c.out_channels for c in convs) + 4 * 44 + 23
    assert sum(p.numel() for p in net.parameters()) == expected
    # the parameter count does not depend on the kernel size
    assert sum(p.numel() for p in CKCNN(kernel_size=131).parameters()) == expected


@pytest.mark.parametrize("length", [200, 333])
def test_same_length_output_and_bake(length):
    net = CKCNN(hidden_channels=4, kernel_size=65).eval()
    x = torch.randn(2, 1, length)
    with torch.no_grad():
        y = net(x)
        assert y.shape == (2, 1, length)
        baked = bake(net)
        assert torch.allclose(baked(x), y, atol=1e-4)
    scripted = convert_to_torchscript(baked, verify=True, inputs=[x], rtol=1e-4, atol=1e-4)
    assert scripted(x).shape == (2, 1, length)


def test_bad_input():
    net = CKCNN(hidden_channels=4, kernel_size=9)
    with pytest.raises(ValueError, match=r"expects input \(B, 1, \*L\)"):
        net(torch.randn(2, 3, 64))
    with pytest.raises(ValueError, match="num_blocks"):
        CKCNN(num_blocks=0)


def test_learns_bubble_positions(fit):
    rng = np.random.default_rng(0)
    lines = [simulate_rf_line(rng, length=128, n_bubbles=(1, 3), snr_db=30.0) for _ in range(8)]
    x = torch.tensor(np.stack([s for s, _ in lines]))[:, None]
    x = x / x.abs().amax(dim=-1, keepdim=True)
    y = torch.tensor(np.stack([t for _, t in lines]))[:, None]
    torch.manual_seed(0)
    net = CKCNN(hidden_channels=6, kernel_size=17, omega_0=10.0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = fit(net, DualLocalizationLoss(sigmoid=True), x, y, opt, steps=25)
    assert np.mean(losses[-5:]) < 0.9 * losses[0], losses
