"""Ignite handler that logs the learned scales of N-Jet layers during training.

The scale curves of "Resolution learning in deep convolutional networks using scale-space theory" (Pintea, Tömen
et al., Fig. 5b, Fig. 10).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional

from monai.utils import IgniteInfo, min_version, optional_import
from torch import nn

from monai_implicit.layers.njet import sigmas
from monai_implicit.utils import check_int

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine",
                                as_type="decorator")

__all__ = ["NJetSigmaLogger"]


class NJetSigmaLogger:
    """Log every N-Jet layer's sigma and kernel size at the end of every ``interval``-th epoch.

    The readout is :func:`monai_implicit.layers.njet.sigmas`.  Each record goes to the Python logger (one line per
    epoch), to an optional TensorBoard ``SummaryWriter`` (scalar ``{tag_prefix}/{layer}`` at the epoch number) and
    to :attr:`history` (``[{"epoch": e, "sigmas": {layer: sigma}, "kernel_sizes": {layer: (k, ...)}}, ...]``).

    Usable from a MONAI bundle config, e.g. in ``train#handlers``::

        {"_target_": "monai_implicit.handlers.NJetSigmaLogger", "network": "@network",
         "summary_writer": "@tensorboard_writer"}

    Args:
        network: the network to read; None: ``engine.network`` (set by MONAI's SupervisedTrainer/Evaluator).
        summary_writer: optional ``torch.utils.tensorboard.SummaryWriter`` (or anything with ``add_scalar``).
        interval: log every ``interval`` epochs.
        tag_prefix: TensorBoard tag prefix.
        name: name of the ``logging`` logger; None: ``engine.logger``.

    Raises:
        ValueError: on a non-positive interval, or at the first event when no network is given and the engine has
            no ``network`` attribute, or when the network holds no N-Jet layer.
    """

    def __init__(
        self,
        network: Optional[nn.Module] = None,
        summary_writer: Optional[Any] = None,
        interval: int = 1,
        tag_prefix: str = "sigma",
        name: Optional[str] = None,
    ) -> None:
        check_int(interval, "interval")
        if network is not None and not isinstance(network, nn.Module):
            raise TypeError(f"network must be an nn.Module or None, got {type(network).__name__}.")
        if summary_writer is not None and not callable(getattr(summary_writer, "add_scalar", None)):
            raise TypeError(f"summary_writer must have an add_scalar method, got {type(summary_writer).__name__}.")
        self.network = network
        self.summary_writer = summary_writer
        self.interval = interval
        self.tag_prefix = tag_prefix
        self.logger = logging.getLogger(name) if name is not None else None
        self.history: list[dict[str, Any]] = []

    def attach(self, engine: Engine) -> None:
        """Register the handler on ``Events.EPOCH_COMPLETED(every=interval)`` of ``engine``."""
        if self.logger is None:
            self.logger = engine.logger
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval), self)

    def __call__(self, engine: Engine) -> None:
        """Read the scales now and write them to the logger, the summary writer and :attr:`history`."""
        network = self.network if self.network is not None else getattr(engine, "network", None)
        if network is None:
            raise ValueError("NJetSigmaLogger needs a network: pass network= or use an engine with .network.")
        readout = sigmas(network)
        if not readout:
            raise ValueError(f"NJetSigmaLogger found no NJetConv layer in {type(network).__name__}.")
        epoch = int(engine.state.epoch)
        record = {
            "epoch": epoch,
            "sigmas": {name: sigma for name, sigma, _ in readout},
            "kernel_sizes": {name: size for name, _, size in readout},
        }
        self.history.append(record)
        logger = self.logger or engine.logger
        logger.info(
            "epoch %d N-Jet sigma (kernel size): %s", epoch,
            ", ".join(f"{name or '<net>'}={sigma:.3f} ({'x'.join(map(str, size))})" for name, sigma, size in readout),
        )
        if self.summary_writer is not None:
            for name, sigma, _ in readout:
                self.summary_writer.add_scalar(f"{self.tag_prefix}/{name or 'net'}", sigma, epoch)
