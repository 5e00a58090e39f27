"""Eval-time cache of a tensor computed from parameters: the sampled kernel of every
:class:`~monai_implicit.layers.implicit_conv.ImplicitConv` and the position-dependent parameters of the NeRD heads.

Both are functions of the module's parameters only (not of the input), so in inference they can be computed once
and reused; they must be recomputed as soon as a parameter changes (an optimizer step, ``load_state_dict``,
``.to()``/``.half()``...).  The key of a cached value records, for every tensor it depends on, the storage pointer,
the autograd version counter (bumped by every in-place update, optimizer steps included), dtype, device and shape.
"""

from __future__ import annotations

from typing import Callable, Hashable, Iterable, Optional

import torch

__all__ = ["ParameterCache"]


class ParameterCache:
    """One tensor computed from ``tensors``, reused until any of them changes.

    Code that writes to ``param.data`` directly bypasses version counters and must call :meth:`invalidate`.

    Example::

        self._cache = ParameterCache()
        ...
        if ParameterCache.applies(self, self.parameters()):
            weight = self._cache.get(self.parameters(), self.sample_kernel)
    """

    def __init__(self) -> None:
        self.value: Optional[torch.Tensor] = None
        self.key: Optional[tuple] = None

    @staticmethod
    def applies(module: torch.nn.Module, tensors: Iterable[torch.Tensor]) -> bool:
        """Whether a cached value may be used: ``module`` in eval mode and no gradient needed by any of ``tensors``."""
        if module.training:
            return False
        return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))

    def get(
        self, tensors: Iterable[torch.Tensor], compute: Callable[[], torch.Tensor], context: Hashable = ()
    ) -> torch.Tensor:
        """The cached value, recomputed (without gradient) by ``compute()`` when a tensor or ``context`` changed.

        Args:
            tensors: every tensor the value depends on.
            compute: computes the value.
            context: anything else the value depends on (e.g. the spatial size, dtype and device of an input).
        """
        key = (context, tuple((t.data_ptr(), t._version, t.dtype, t.device, tuple(t.shape)) for t in tensors))
        if self.value is None or key != self.key:
            with torch.no_grad():
                self.value = compute()
            self.key = key
        return self.value

    def invalidate(self) -> None:
        """Drop the cached value."""
        self.value = None
        self.key = None
