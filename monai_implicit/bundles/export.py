"""TorchScript export of networks with implicit convolutions through ``python -m monai.bundle ckpt_export``.

``ckpt_export`` instantiates ``net_id`` from the config, loads the checkpoint into it with ignite's
``Checkpoint.load_objects`` and calls ``torch.jit.script``.  An implicit network cannot be scripted as it is (its
kernels are computed by Python properties), but its *baked* copy, where every implicit convolution is replaced by
the plain convolution with the sampled kernel (:func:`monai_implicit.networks.utils.bake`), can, and it computes the
same eval-mode output.  :class:`BakeForExport` bridges the two: it loads checkpoints exactly like the wrapped
network (same state-dict keys) and hands the baked copy to ``torch.jit.script`` through the
``__prepare_scriptable__`` hook, so a bundle config only needs::

    "network_export": {"_target_": "monai_implicit.bundles.BakeForExport", "network": "@network_def"}

and ``python -m monai.bundle ckpt_export network_export --ckpt_file models/model.pt ...``.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

__all__ = ["BakeForExport"]


class BakeForExport(nn.Module):
    """Wrap an implicit network so that loading uses its keys and scripting exports its baked copy.

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
        from monai_implicit.networks.utils import bake

        return bake(self.network.eval())
