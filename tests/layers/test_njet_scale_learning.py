"""The central claim of N-Jet layers ("Resolution learning in deep convolutional networks using scale-space theory",
Exp. 1.2(A)): the learned scale follows the size of the objects.

A tiny 2D network (N-Jet layer -> ReLU -> 1x1 convolution) learns to denoise images of Gaussian blobs.  The 2x
task is the 1x task resized by 2 (images and targets, noise included, as the paper resizes MNIST), so the ideal
filters of the 2x task are the 1x filters stretched by 2.  Starting from the same sigma, same seed and same batches,
the first layer's learned sigma must end clearly larger on the 2x task.  On this short schedule about one seed in
seven stays near its initial sigma on the 2x task (the paper reports local optima near initialisation, Sec. 5);
the test is seeded and deterministic.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from monai_implicit.layers.njet import NJetConv, njet_param_groups


@pytest.fixture
def one_thread():
    # tiny tensors: thread start-up and contention on a shared machine dominate, one thread is several times faster
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def blob_batch(gen: torch.Generator, batch: int = 8, size: int = 24, count: int = 4, noise: float = 0.5):
    """Noisy images of Gaussian blobs (std 1 pixel, random positions and amplitudes) and their clean versions."""
    axis = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    centres = torch.rand(batch, count, 2, generator=gen) * size
    amps = torch.rand(batch, count, 1, 1, generator=gen) + 0.5
    d2 = (yy - centres[..., 0, None, None]) ** 2 + (xx - centres[..., 1, None, None]) ** 2
    clean = (amps * torch.exp(-d2 / 2.0)).sum(1, keepdim=True)
    return clean + noise * torch.randn(clean.shape, generator=gen), clean


def learned_sigma(factor: int, steps: int = 150, seed: int = 0) -> float:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(NJetConv(2, 1, 4, order=2, init_sigma=1.0), nn.ReLU(), nn.Conv2d(4, 1, 1))
    opt = torch.optim.Adam(njet_param_groups(net, lr=0.03, sigma_lr_factor=10 / 3))
    for _ in range(steps):
        x, y = blob_batch(gen)
        if factor != 1:
            x = F.interpolate(x, scale_factor=factor, mode="bilinear")
            y = F.interpolate(y, scale_factor=factor, mode="bilinear")
        loss = F.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(net[0].sigma.detach())


def test_learned_sigma_follows_object_size(one_thread):
    sigma_1x = learned_sigma(1)
    sigma_2x = learned_sigma(2)
    assert sigma_1x > 1.1  # it learned (init 1.0)
    assert sigma_2x > 1.5 * sigma_1x, (sigma_1x, sigma_2x)
