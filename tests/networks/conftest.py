"""Fixtures shared by the network tests."""

import pytest
import torch


@pytest.fixture
def fit():
    """``fit(net, loss_fn, x, y, opt, steps) -> losses``: full-batch optimiser steps; the loss before each step."""

    def run(net, loss_fn, x, y, opt, steps):
        losses = []
        for _ in range(steps):
            opt.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    return run


@pytest.fixture
def randomise_head():
    """``randomise_head(net, seed=0) -> net``: random weights in a NeRD head's position MLP (the default init zeroes
    its last layer, which hides the position dependence)."""

    def randomise(net, seed=0):
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in net.head.mlp.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        return net

    return randomise
