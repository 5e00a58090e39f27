"""NJetSigmaLogger: logs N-Jet scales from an ignite engine / MONAI SupervisedTrainer and a bundle-style config."""

from __future__ import annotations

import logging

import pytest
import torch
from ignite.engine import Engine
from monai.bundle import ConfigParser
from monai.engines import SupervisedTrainer

from monai_implicit.handlers import NJetSigmaLogger
from monai_implicit.layers.njet import NJetConv


class FakeWriter:
    def __init__(self) -> None:
        self.scalars: list[tuple[str, float, int]] = []

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))


def test_supervised_trainer_logs_every_epoch(caplog):
    torch.manual_seed(0)
    net = torch.nn.Sequential(NJetConv(2, 1, 2, init_sigma=1.0), torch.nn.ReLU(), NJetConv(2, 2, 1, init_sigma=2.0))
    data = [{"image": torch.randn(2, 1, 12, 12), "label": torch.randn(2, 1, 12, 12)} for _ in range(2)]
    trainer = SupervisedTrainer(
        device=torch.device("cpu"), max_epochs=3, train_data_loader=data, network=net,
        optimizer=torch.optim.Adam(net.parameters(), lr=0.1), loss_function=torch.nn.MSELoss(),
    )
    writer = FakeWriter()
    handler = NJetSigmaLogger(summary_writer=writer, name="njet-test")
    handler.attach(trainer)
    with caplog.at_level(logging.INFO, logger="njet-test"):
        trainer.run()
    assert [r["epoch"] for r in handler.history] == [1, 2, 3]
    assert set(handler.history[-1]["sigmas"]) == {"0", "2"}
    assert handler.history[-1]["sigmas"]["0"] == pytest.approx(net[0].sigma.item())
    assert handler.history[0]["sigmas"]["0"] != 1.0  # read after training steps
    assert handler.history[-1]["kernel_sizes"]["2"] == net[2].kernel_size
    assert [(t, s) for t, _, s in writer.scalars] == [("sigma/0", 1), ("sigma/2", 1), ("sigma/0", 2), ("sigma/2", 2),
                                                     ("sigma/0", 3), ("sigma/2", 3)]
    assert sum("N-Jet sigma" in r.getMessage() for r in caplog.records) == 3


def test_interval_and_explicit_network():
    net = NJetConv(1, 1, 1)
    engine = Engine(lambda e, b: None)
    handler = NJetSigmaLogger(network=net, interval=2)
    handler.attach(engine)
    engine.run([0], max_epochs=5)
    assert [r["epoch"] for r in handler.history] == [2, 4]
    assert handler.history[0]["sigmas"] == {"": 1.0} and handler.history[0]["kernel_sizes"] == {"": (7,)}


def test_bundle_config_instantiation():
    config = {
        "network": {"_target_": "monai_implicit.networks.nets.NJetUNet", "spatial_dims": 2, "in_channels": 1,
                    "out_channels": 2, "features": 4, "depth": 1},
        "handler": {"_target_": "monai_implicit.handlers.NJetSigmaLogger", "network": "@network", "interval": 1},
    }
    parser = ConfigParser(config)
    handler = parser.get_parsed_content("handler")
    engine = Engine(lambda e, b: None)
    handler.attach(engine)
    engine.run([0], max_epochs=1)
    assert len(handler.history[0]["sigmas"]) == 7


def test_errors():
    with pytest.raises(ValueError, match="interval"):
        NJetSigmaLogger(interval=0)
    with pytest.raises(TypeError, match="add_scalar"):
        NJetSigmaLogger(summary_writer=object())
    engine = Engine(lambda e, b: None)
    NJetSigmaLogger().attach(engine)
    with pytest.raises(ValueError, match="needs a network"):
        engine.run([0], max_epochs=1)
    engine = Engine(lambda e, b: None)
    NJetSigmaLogger(network=torch.nn.Conv2d(1, 1, 3)).attach(engine)
    with pytest.raises(ValueError, match="no NJetConv"):
        engine.run([0], max_epochs=1)
