"""HyperKernel: parameter formula, grid convention, initial variance.

Reference: "Hyper-Convolutions via Implicit Kernels for Medical Imaging" (Ma, Wang, Dalca, Sabuncu), Sec. 3.1.
"""

import math

import pytest
import torch
from torch import nn

from monai_implicit.kernels.hyper import HyperKernel


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
@pytest.mark.parametrize("n_l,hidden", [(4, (16, 16)), (2, (8,)), (24, (16, 16, 16))])
def test_parameter_formula(spatial_dims, n_l, hidden):
    c_in, c_out = 3, 7
    widths = (spatial_dims, *hidden, n_l)
    expected = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:])) + (n_l + 1) * c_in * c_out
    for k in (3, 5, 9):  # independent of the kernel size
        assert n_params(HyperKernel(spatial_dims, c_in, c_out, k, n_l=n_l, hidden=hidden)) == expected


def test_paper_count_2d():
    # 388 + 5 C_in C_out for the paper's 2D hyper-network with N_L = 4 (hyper-convolution paper, Sec. 3.1)
    assert n_params(HyperKernel(2, 16, 32, 5)) == 388 + 5 * 16 * 32


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
def test_small_kernel_is_centre_of_large_kernel(spatial_dims):
    torch.manual_seed(0)
    big = HyperKernel(spatial_dims, 2, 3, 5, init="none")
    small = HyperKernel(spatial_dims, 2, 3, 3, init="none")
    small.load_state_dict(big.state_dict())
    centre = (slice(None), slice(None)) + (slice(1, 4),) * spatial_dims
    assert torch.allclose(small(), big()[centre], atol=1e-6)


def test_custom_coordinates_and_shape_errors():
    hk = HyperKernel(2, 2, 3, (5, 3))
    assert hk().shape == (3, 2, 5, 3)
    dense = torch.stack(torch.meshgrid(torch.linspace(-2, 2, 9), torch.linspace(-1, 1, 5), indexing="ij"))
    out = hk(dense)
    assert out.shape == (3, 2, 9, 5)
    assert torch.allclose(out[..., ::2, ::2], hk(), atol=1e-6)  # the even taps of the denser grid are the kernel
    with pytest.raises(ValueError, match=r"coords must have shape \(2"):
        hk(torch.zeros(3, 5, 5))
    with pytest.raises(ValueError, match="init"):
        HyperKernel(2, 2, 3, 5, init="xavier")
    with pytest.raises(ValueError, match="n_l"):
        HyperKernel(2, 2, 3, 5, n_l=0)


@pytest.mark.parametrize("spatial_dims,k,c_in,c_out", [(2, 3, 16, 32), (2, 5, 32, 32), (2, 9, 8, 16), (3, 5, 8, 8),
                                                        (1, 7, 4, 12)])
def test_initial_kernel_matches_plain_conv_variance(spatial_dims, k, c_in, c_out):
    torch.manual_seed(1)
    kernel = HyperKernel(spatial_dims, c_in, c_out, k)()
    plain = [nn.Conv1d, nn.Conv2d, nn.Conv3d][spatial_dims - 1]
    # independent expectation: the empirical weight variance of PyTorch's own default-initialised convolution
    ref = torch.stack([plain(c_in, c_out, k).weight.var() for _ in range(20)]).mean()
    ratio = kernel.pow(2).mean() / ref
    assert 0.8 < ratio < 1.25, ratio
    assert abs(kernel.mean()) < 3 * kernel.std() / math.sqrt(kernel.numel()) + 0.2 * kernel.std()


@pytest.mark.parametrize("k,min_ratio", [(3, 2.0), (9, 50.0)])
def test_authors_init_is_much_larger(k, min_ratio):
    """The unscaled init of the authors' code starts several times (k=3) to hundreds of times (k=9) too large."""
    torch.manual_seed(2)
    raw = torch.stack([HyperKernel(2, 16, 16, k, init="none")().std() for _ in range(5)]).mean()
    fixed = torch.stack([HyperKernel(2, 16, 16, k)().std() for _ in range(5)]).mean()
    assert raw / fixed > min_ratio
