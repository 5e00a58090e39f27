"""Deployment and analysis utilities for networks containing implicit convolutions.

* :func:`bake` turns a trained implicit network into an ordinary one (zero inference overhead, TorchScript-able);
  :class:`BakeForExport` wraps a network so that ``python -m monai.bundle ckpt_export`` scripts its baked copy.
* :func:`kernel_smoothness` is the per-layer average absolute Laplacian of the kernels ("Hyper-Convolutions via
  Implicit Kernels for Medical Imaging", Sec. 5, Fig. 10).
* :func:`plot_kernels` draws a few kernels per layer with their smoothness (same paper, Fig. 10).
* :func:`kernel_param_groups` gives the kernel networks their own learning rate (optimizer parameter groups).
"""

from __future__ import annotations

import copy
import os
from typing import Any, Mapping, Optional, Sequence

import torch
from monai.config import PathLike
from monai.optimizers import generate_param_groups
from torch import nn

from monai_implicit.layers.implicit_conv import ImplicitConv
from monai_implicit.utils import check_number

__all__ = ["bake", "BakeForExport", "conv_layers", "kernel_param_groups", "kernel_smoothness", "plot_kernels"]

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def bake(net: nn.Module) -> nn.Module:
    """A copy of ``net`` in which every :class:`ImplicitConv` is replaced by its plain ``nn.Conv*d``.

    The copy produces the same output as ``net`` in eval mode (the kernels are sampled once, from the current
    parameters) and contains no kernel networks, so it runs at the speed of an ordinary CNN and can be exported
    with ``torch.jit.script`` / ``monai.networks.utils.convert_to_torchscript``.  ``net`` itself is not modified.
    The copy keeps ``net``'s training/eval mode; it is meant for inference (its kernels are no longer learnable
    functions of coordinates).

    Args:
        net: any module; an ImplicitConv itself is accepted too.

    Returns:
        The baked copy.
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"bake expects a torch.nn.Module, got {type(net).__name__}.")
    for module in net.modules():  # cached kernels may be inference tensors, which deepcopy cannot copy
        if isinstance(module, ImplicitConv):
            module.invalidate_cache()
    if isinstance(net, ImplicitConv):
        return net.to_conv()
    baked = copy.deepcopy(net)
    replacements = [(name, m) for name, m in baked.named_modules() if isinstance(m, ImplicitConv)]
    for name, module in replacements:
        parent_name, _, child = name.rpartition(".")
        parent = baked.get_submodule(parent_name) if parent_name else baked
        setattr(parent, child, module.to_conv())
    return baked


class BakeForExport(nn.Module):
    """Wrap an implicit network so that loading uses its keys and scripting exports its baked copy.

    ``python -m monai.bundle ckpt_export`` instantiates ``net_id`` from the config, loads the checkpoint into it with
    ignite's ``Checkpoint.load_objects`` and calls ``torch.jit.script``.  An implicit network cannot be scripted as it
    is (its kernels are computed by Python properties), but its :func:`bake`-d copy can, and it computes the same
    eval-mode output.  The wrapper loads checkpoints exactly like the wrapped network (same state-dict keys) and hands
    the baked copy to ``torch.jit.script`` through the ``__prepare_scriptable__`` hook, so a bundle config only
    needs::

        "network_export": {"_target_": "monai_implicit.networks.utils.BakeForExport", "network": "@network_def"}

    and ``python -m monai.bundle ckpt_export network_export --ckpt_file models/model.pt ...``.

    Args:
        network: the network as defined for training (e.g. a HyperUNet).

    ``forward`` runs the wrapped network (shapes are those of ``network``); ``torch.jit.script(wrapper)`` returns
    the script of ``bake(network.eval())``.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}.")
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict:  # type: ignore[override]
        return self.network.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        return self.network.load_state_dict(state_dict, strict=strict, assign=assign)

    def __prepare_scriptable__(self) -> nn.Module:
        return bake(self.network.eval())


def conv_layers(net: nn.Module, include_plain: bool = True) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every convolution in ``net``: implicit ones and, optionally, plain ``nn.Conv*d``."""
    layers = []
    for name, module in net.named_modules():
        if isinstance(module, ImplicitConv) or (include_plain and isinstance(module, _CONV_TYPES)):
            layers.append((name, module))
    return layers


def kernel_param_groups(net: nn.Module, lr: float, kernel_lr_scale: float = 1.0) -> list[dict]:
    """Optimizer parameter groups: the kernel networks of the implicit convolutions at ``kernel_lr_scale * lr``.

    The parameters that generate kernels (every parameter of an :class:`ImplicitConv` except its bias: the
    hyper-network of a HyperConv, the coordinate network of a CKConv / FlexConv, ...) form the first group, with
    learning rate ``kernel_lr_scale * lr``; every other parameter forms the second group, which takes the optimizer's
    own ``lr`` (MONAI's :func:`monai.optimizers.generate_param_groups`). A hyper-network receives the gradients of
    every weight it generates ("Hyper-Convolutions via Implicit Kernels for Medical Imaging", Ma et al.), so
    its best learning rate need not be the rest of the network's.

    With ``kernel_lr_scale == 1`` or without implicit convolutions the result is one group holding
    ``list(net.parameters())``: the optimizer (and its checkpoints) are then exactly those of
    ``Optimizer(net.parameters(), lr)``.

    Args:
        net: any module (e.g. a HyperUNet inside reconstruction wrappers, or a DistributedDataParallel of one).
        lr: the base learning rate (pass the same value as the optimizer's ``lr``).
        kernel_lr_scale: factor of the kernel networks' learning rate, > 0.

    Returns:
        ``[{"params": [...], "lr": kernel_lr_scale * lr}, {"params": [...]}]`` or ``[{"params": [...]}]``, for
        ``torch.optim.Adam(groups, lr=lr)``.
    """
    lr = check_number(lr, "lr", low=0.0, low_open=True)
    kernel_lr_scale = check_number(kernel_lr_scale, "kernel_lr_scale", low=0.0, low_open=True)
    kernel_ids = {
        id(p)
        for m in net.modules()
        if isinstance(m, ImplicitConv)
        for name, p in m.named_parameters()
        if name != "bias"
    }
    if kernel_lr_scale == 1.0 or not kernel_ids:
        return [{"params": list(net.parameters())}]
    groups = generate_param_groups(net, [lambda named: id(named[1]) in kernel_ids], ["filter"], [kernel_lr_scale * lr])
    return [{**g, "params": list(g["params"])} for g in groups]


def _kernel(module: nn.Module) -> torch.Tensor:
    if isinstance(module, ImplicitConv):
        with torch.no_grad():
            return module.sample_kernel().detach()
    return module.weight.detach()


def _laplacian_interior(kernels: torch.Tensor) -> Optional[torch.Tensor]:
    """Discrete Laplacian ``sum_d k[i+1] - 2 k[i] + k[i-1]`` on the interior taps of ``(N, *k)`` kernels.

    Axes shorter than 3 have no second difference and are left out of the sum (and not cropped), so an
    anisotropic ``(5, 5, 1)`` kernel is measured in-plane.  Returns None when no axis has 3 or more taps.
    """
    spatial = kernels.shape[1:]
    axes = [d for d, k in enumerate(spatial) if k >= 3]
    if not axes:
        return None
    interior = tuple(slice(1, -1) if d in axes else slice(None) for d in range(len(spatial)))
    lap = torch.zeros_like(kernels[(slice(None), *interior)])
    for d in axes:
        ax = d + 1
        n = spatial[d]
        plus = kernels.narrow(ax, 2, n - 2)
        centre = kernels.narrow(ax, 1, n - 2)
        minus = kernels.narrow(ax, 0, n - 2)
        second = plus - 2 * centre + minus
        # crop the other differentiated axes to their interior so all terms are aligned
        idx = tuple(slice(1, -1) if (e in axes and e != d) else slice(None) for e in range(len(spatial)))
        lap = lap + second[(slice(None), *idx)]
    return lap


def kernel_smoothness(net: nn.Module, include_plain: bool = True) -> dict[str, float]:
    """Average absolute Laplacian of the kernels of every convolution layer (hyper-convolution paper, Sec. 5, Fig. 10).

    For each layer with kernels ``(C_out, C_in, *k)`` the discrete Laplacian of every ``C_out * C_in`` kernel is
    evaluated on its interior taps (no padding, so boundary effects do not count) and the absolute values are
    averaged.  Lower values mean smoother kernels.  Layers whose kernels have no axis of 3 or more taps (1x1
    convolutions) are skipped.

    Args:
        net: the network (implicit, plain or mixed).
        include_plain: also measure plain ``nn.Conv*d`` layers (to compare a UNet with its Hyper-UNet).

    Returns:
        ``{layer name: average |Laplacian|}`` in module order.
    """
    result: dict[str, float] = {}
    for name, module in conv_layers(net, include_plain):
        kernel = _kernel(module)
        lap = _laplacian_interior(kernel.reshape(-1, *kernel.shape[2:]).double())
        if lap is not None:
            result[name] = float(lap.abs().mean())
    return result


def plot_kernels(
    net: nn.Module,
    path: PathLike,
    n_kernels: int = 8,
    layers: Optional[Sequence[str]] = None,
    include_plain: bool = True,
    seed: int = 0,
) -> str:
    """Write a PNG with ``n_kernels`` randomly chosen kernels per layer, one row per layer (hyper-conv. paper Fig. 10).

    2D kernels are drawn as images, 3D kernels as their central slice along the last axis, 1D kernels as curves.
    Each row is labelled with the layer name and its :func:`kernel_smoothness`.  Needs matplotlib (the ``all``
    extra).

    Args:
        net: the network.
        path: output PNG path (parent folders are created).
        n_kernels: kernels drawn per layer.
        layers: names of the layers to draw (default: every convolution with a kernel larger than 1).
        include_plain: also draw plain ``nn.Conv*d`` layers.
        seed: seed of the choice of kernels (a local generator; the global RNG is untouched).

    Returns:
        The path written.
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plot_kernels needs matplotlib: pip install 'monai-implicit[all]'.") from e
    if n_kernels < 1:
        raise ValueError(f"n_kernels must be positive, got {n_kernels}.")
    smooth = kernel_smoothness(net, include_plain)
    available = {name: m for name, m in conv_layers(net, include_plain) if name in smooth}
    if layers is not None:
        missing = [name for name in layers if name not in available]
        if missing:
            raise ValueError(f"unknown layers {missing}; layers with kernels larger than 1: {sorted(available)}.")
        chosen = [(name, available[name]) for name in layers]
    else:
        chosen = list(available.items())
    if not chosen:
        raise ValueError("the network has no convolution with a kernel larger than 1 to plot.")
    gen = torch.Generator().manual_seed(seed)
    fig, axes = plt.subplots(len(chosen), n_kernels, figsize=(1.3 * n_kernels, 1.4 * len(chosen)), squeeze=False)
    for row, (name, module) in enumerate(chosen):
        kernel = _kernel(module).float().cpu()
        flat = kernel.reshape(-1, *kernel.shape[2:])
        idx = torch.randperm(flat.shape[0], generator=gen)[:n_kernels]
        for col in range(n_kernels):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(idx):
                ax.axis("off")
                continue
            k = flat[idx[col]]
            if k.ndim == 1:
                ax.plot(k.numpy())
            else:
                if k.ndim == 3:
                    k = k[..., k.shape[-1] // 2]
                ax.imshow(k.numpy(), cmap="gray")
        axes[row, 0].set_ylabel(f"{name}\n{smooth[name]:.3g}", fontsize=6, rotation=0, ha="right", va="center")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
