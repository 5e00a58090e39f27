"""Measured path selection (monai_implicit.layers.autotune): fake paths with known costs, never real timings.

The choice between exact execution paths follows "Resolution learning in deep convolutional networks using
scale-space theory" (Pintea, Tomen et al.; dense vs separable N-Jet) and "FlexConv: Continuous Kernel Convolutions
with Differentiable Kernel Sizes" (Romero, Bruintjes et al., Appx. D; direct vs FFT).
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from monai_implicit.layers import autotune
from monai_implicit.layers.fft_conv import conv_nd
from monai_implicit.layers.njet import NJetConv


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    monkeypatch.setattr(autotune, "_enabled", True)
    # a test that ran monai.utils.set_determinism earlier in this process leaves cuDNN's flag set
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.delenv("MONAI_IMPLICIT_AUTOTUNE_CACHE", raising=False)
    autotune.set_cache_file(None)
    autotune.clear_cache()
    yield
    autotune.set_cache_file(None)
    autotune.clear_cache()


class FakeClock:
    """A clock that only moves when a fake path runs: each path costs a known time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: dict[str, int] = {}

    def __call__(self) -> float:
        return self.now

    def path(self, name: str, cost: float):
        def run() -> None:
            self.calls[name] = self.calls.get(name, 0) + 1
            self.now += cost

        return run


def test_picks_the_faster_fake_path():
    clock = FakeClock()
    paths = {"slow": clock.path("slow", 2.0), "fast": clock.path("fast", 0.5)}
    assert autotune.choose("k1", paths, default="slow", clock=clock) == "fast"
    # one warm-up call and REPEATS timed calls per candidate
    assert clock.calls == {"slow": 1 + autotune.REPEATS, "fast": 1 + autotune.REPEATS}
    clock2 = FakeClock()
    paths = {"a": clock2.path("a", 0.1), "b": clock2.path("b", 0.3)}
    assert autotune.choose("k2", paths, default="b", clock=clock2) == "a"


def test_choice_is_cached_per_key():
    clock = FakeClock()
    paths = {"slow": clock.path("slow", 2.0), "fast": clock.path("fast", 0.5)}
    assert autotune.choose(("shape", 8), paths, default="slow", clock=clock) == "fast"
    calls = dict(clock.calls)
    assert autotune.choose(("shape", 8), paths, default="slow", clock=clock) == "fast"
    assert clock.calls == calls  # second call: no timing
    assert autotune.choose(("shape", 16), paths, default="slow", clock=clock) == "fast"
    assert clock.calls["fast"] == 2 * calls["fast"]  # a new key times again
    assert autotune.cached_choices() == {str(("shape", 8)): "fast", str(("shape", 16)): "fast"}


@pytest.mark.parametrize("mode", ["set_enabled", "context", "env", "deterministic", "set_determinism", "small"])
def test_cost_model_decides_when_not_measuring(mode, monkeypatch):
    clock = FakeClock()
    paths = {"slow": clock.path("slow", 2.0), "fast": clock.path("fast", 0.5)}
    work = 0.5 * autotune.MIN_WORK if mode == "small" else float("inf")
    if mode == "set_enabled":
        autotune.set_enabled(False)
    elif mode == "env":
        monkeypatch.setattr(autotune, "_enabled", None)
        monkeypatch.setenv("MONAI_IMPLICIT_AUTOTUNE", "0")
    elif mode == "deterministic":
        monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)
    elif mode == "set_determinism":  # what every bundle's initialize runs: a seeded run never times paths
        monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    if mode == "context":
        with autotune.autotuning(False):
            assert autotune.choose("k", paths, default="slow", clock=clock, work=work) == "slow"
        assert autotune.is_enabled()
    else:
        assert autotune.choose("k", paths, default="slow", clock=clock, work=work) == "slow"
    assert clock.calls == {} and autotune.cached_choices() == {}


def test_env_default_is_on(monkeypatch):
    monkeypatch.setattr(autotune, "_enabled", None)
    monkeypatch.delenv("MONAI_IMPLICIT_AUTOTUNE", raising=False)
    assert autotune.is_enabled()
    monkeypatch.setenv("MONAI_IMPLICIT_AUTOTUNE", "off")
    assert not autotune.is_enabled() and not autotune.can_measure()


def test_disk_cache_round_trip(tmp_path):
    path = tmp_path / "choices.json"
    autotune.set_cache_file(path)
    clock = FakeClock()
    paths = {"slow": clock.path("slow", 2.0), "fast": clock.path("fast", 0.5)}
    assert autotune.choose("disk", paths, default="slow", clock=clock) == "fast"
    assert json.loads(path.read_text()) == {"disk": "fast"}
    autotune.clear_cache()
    autotune.set_cache_file(path)  # a new process: the choice is read, not measured
    fresh = FakeClock()
    paths = {"slow": fresh.path("slow", 2.0), "fast": fresh.path("fast", 0.5)}
    assert autotune.choose("disk", paths, default="slow", clock=fresh) == "fast" and fresh.calls == {}


def test_bad_default():
    with pytest.raises(ValueError, match="default must be one of"):
        autotune.choose("k", {"a": lambda: None}, default="b")


def test_with_backward_leaves_parameter_grads_untouched():
    w = torch.nn.Parameter(torch.randn(3))
    run = autotune.with_backward(lambda: (w * 2).sum(), [w])
    run()
    assert w.grad is None


def _fake_measure(costs):
    """A stand-in for autotune.measure that runs the path once and reports the next known cost."""
    it = iter(costs)

    def measure(fn, **kwargs):
        fn()
        return next(it)

    return measure


def test_njet_auto_measures_once_per_shape_and_matches_dense(monkeypatch):
    monkeypatch.setattr(autotune, "MIN_WORK", 0.0)
    monkeypatch.setattr(autotune, "measure", _fake_measure([5.0, 1.0, 1.0, 5.0]))  # dense, separable per key
    torch.manual_seed(0)
    layer = NJetConv(2, 2, 3, order=2, init_sigma=1.0).double()
    x = torch.randn(1, 2, 12, 12, dtype=torch.float64)
    assert layer.use_separable(x) and layer.use_separable(x)  # cached: no third and fourth measurement
    out = layer(x)
    layer.path = "dense"
    torch.testing.assert_close(out, layer(x))
    layer.path = "auto"
    assert not layer.use_separable(torch.randn(1, 2, 14, 12, dtype=torch.float64))  # a new shape measures again
    assert len(autotune.cached_choices()) == 2
    assert layer.alpha.grad is None  # timing never accumulates gradients


def test_conv_nd_auto_uses_the_measured_method(monkeypatch):
    monkeypatch.setattr(autotune, "MIN_WORK", 0.0)
    monkeypatch.setattr(autotune, "measure", _fake_measure([3.0, 1.0]))  # direct, fft
    torch.manual_seed(1)
    x, w = torch.randn(1, 2, 30), torch.randn(3, 2, 5)
    out = conv_nd(x, w, padding="same", method="auto")
    assert list(autotune.cached_choices().values()) == ["fft"]
    torch.testing.assert_close(out, F.conv1d(x, w, padding="same"), atol=1e-5, rtol=1e-5)
    conv_nd(x, w, padding="same", method="direct")  # an explicit method never measures
    assert len(autotune.cached_choices()) == 1
