"""Salt-and-pepper and speckle noise: measured statistics against the definitions, Rand behaviour, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, RandGaussianNoise

from monai_implicit.transforms import (
    RandSaltPepperNoise,
    RandSaltPepperNoised,
    RandSpeckleNoise,
    RandSpeckleNoised,
    SaltPepperNoise,
    SaltPepperNoised,
    SpeckleNoise,
    SpeckleNoised,
)


def image(shape=(2, 128, 128), seed=0) -> np.ndarray:
    # distinct continuous values per channel, with different ranges per channel
    rng = np.random.default_rng(seed)
    img = rng.uniform(0.1, 1.0, shape).astype(np.float32)
    if shape[0] > 1:
        img[1] = img[1] * 100.0 - 20.0
    return img


@pytest.mark.parametrize("amount, svp", [(0.05, 0.5), (0.2, 0.8), (0.01, 0.0)])
def test_salt_pepper_fractions_and_values(amount, svp):
    img = image()
    out = SaltPepperNoise(amount=amount, salt_vs_pepper=svp).set_random_state(0)(img)
    changed = out != img
    n = img[0].size
    for c in range(2):
        hi, lo = img[c].max(), img[c].min()
        salt, pepper = out[c] == hi, out[c] == lo
        replaced = changed[c] | salt | pepper
        # binomial fraction: 5 standard errors
        assert abs(replaced.mean() - amount) < 5 * np.sqrt(amount * (1 - amount) / n) + 1e-3
        assert np.all((out[c][changed[c]] == hi) | (out[c][changed[c]] == lo))
        if replaced.sum() > 0:
            frac_salt = salt.sum() / max(replaced.sum(), 1)
            assert abs(frac_salt - svp) < 5 * np.sqrt(max(svp * (1 - svp), 0.01) / replaced.sum()) + 0.01
    assert out.dtype == img.dtype


def test_salt_pepper_explicit_values_and_integer_images():
    img = np.arange(2 * 64 * 64, dtype=np.int16).reshape(2, 64, 64)
    out = SaltPepperNoise(amount=0.3, salt=7, pepper=-3).set_random_state(1)(img)
    assert out.dtype == np.int16
    changed = out != img
    assert set(np.unique(out[changed]).tolist()) <= {7, -3}
    assert abs(changed.mean() - 0.3) < 0.02


@pytest.mark.parametrize("to", [np.asarray, torch.as_tensor])
def test_salt_pepper_value_the_dtype_cannot_hold_is_refused(to):
    """salt=300 on uint8 used to wrap around to 44 (300 - 256); 0.5 truncated to 0. Refused, not clipped."""
    img = to(np.full((1, 16, 16), 100, np.uint8))
    for kwargs, name in (({"salt": 300}, "salt=300"), ({"pepper": -1}, "pepper=-1"), ({"salt": 0.5}, "salt=0.5")):
        with pytest.raises(ValueError, match=f"{name} cannot be stored in a uint8 image"):
            SaltPepperNoise(amount=0.5, **kwargs).set_random_state(0)(img)
        with pytest.raises(ValueError, match=name):
            RandSaltPepperNoised("image", prob=1.0, amount=0.5, **kwargs).set_random_state(0)({"image": img})
    out = np.asarray(SaltPepperNoise(amount=0.5, salt=255, pepper=0).set_random_state(0)(img))
    assert out.dtype == np.uint8 and set(np.unique(out).tolist()) == {0, 100, 255}
    # a float image holds 300 exactly
    assert np.asarray(SaltPepperNoise(amount=0.5, salt=300).set_random_state(0)(img.astype(np.float32)
                      if isinstance(img, np.ndarray) else img.float())).max() == 300


def test_speckle_relative_std_and_mean():
    img = image()
    for std in (0.05, 0.3):
        out = SpeckleNoise(std=std).set_random_state(0)(img)
        rel = (out - img) / img
        assert abs(rel.std() / std - 1) < 0.02
        assert abs(rel.mean()) < 5 * std / np.sqrt(rel.size)
    shifted = SpeckleNoise(std=0.1, mean=0.5).set_random_state(0)(img)
    assert abs(((shifted - img) / img).mean() - 0.5) < 0.01


def test_speckle_integer_input_promoted_and_containers_kept():
    ints = np.full((1, 32, 32), 10, dtype=np.uint8)
    out = SpeckleNoise(std=0.1).set_random_state(0)(ints)
    assert out.dtype == np.float32 and not np.allclose(out, 10)
    mt = MetaTensor(torch.as_tensor(image()), meta={"filename_or_obj": "x"})
    for t in (SpeckleNoise(0.1), SaltPepperNoise(0.1)):
        res = t(mt)
        assert isinstance(res, MetaTensor) and res.meta["filename_or_obj"] == "x" and res.shape == mt.shape


def test_monai_gaussian_recipe_gives_exact_std():
    # documented recipe for additive Gaussian noise: MONAI's RandGaussianNoise with sample_std=False
    img = np.zeros((1, 128, 128), np.float32)
    t = RandGaussianNoise(prob=1.0, std=0.1, sample_std=False)
    t.set_random_state(0)
    assert abs(float(np.asarray(t(img)).std()) - 0.1) < 0.003


@pytest.mark.parametrize(
    "make",
    [
        lambda p: RandSaltPepperNoise(prob=p, amount=(0.01, 0.1)),
        lambda p: RandSpeckleNoise(prob=p, std=(0.05, 0.2)),
    ],
)
def test_rand_variants_respect_prob_and_random_state(make):
    img = image(shape=(1, 32, 32))
    assert np.array_equal(make(0.0)(img), img)
    assert not np.array_equal(make(1.0).set_random_state(0)(img), img)
    t = make(0.3).set_random_state(0)
    applied = sum(not np.array_equal(t(img), img) for _ in range(100))
    assert 15 <= applied <= 45
    a, b = make(0.5).set_random_state(3), make(0.5).set_random_state(3)
    for _ in range(6):
        np.testing.assert_array_equal(a(img), b(img))


def test_rand_ranges_are_sampled():
    img = image(shape=(1, 64, 64))
    t = RandSaltPepperNoise(prob=1.0, amount=(0.0, 0.2)).set_random_state(0)
    fractions = [float((t(img) != img).mean()) for _ in range(30)]
    assert min(fractions) < 0.06 and max(fractions) > 0.14 and max(fractions) < 0.22
    s = RandSpeckleNoise(prob=1.0, std=(0.1, 0.3)).set_random_state(0)
    stds = [float(((s(img) - img) / img).std()) for _ in range(30)]
    assert min(stds) > 0.09 and max(stds) < 0.31 and max(stds) - min(stds) > 0.08


def test_dictionary_versions():
    img = image(shape=(1, 32, 32))
    data = {"image": img, "other": img.copy()}
    d = SaltPepperNoised(["image", "other"], amount=0.2).set_random_state(0)(data)
    assert not np.array_equal(d["image"], img) and not np.array_equal(d["image"], d["other"])
    d = SpeckleNoised("image", std=0.1).set_random_state(0)(data)
    assert not np.array_equal(d["image"], img) and d["other"] is data["other"]
    never = Compose([RandSaltPepperNoised("image", prob=0.0), RandSpeckleNoised("image", prob=0.0)])
    assert never(data)["image"] is img
    p1 = Compose([RandSaltPepperNoised("image", prob=0.5), RandSpeckleNoised("image", prob=0.5, std=0.2)])
    p2 = Compose([RandSaltPepperNoised("image", prob=0.5), RandSpeckleNoised("image", prob=0.5, std=0.2)])
    p1.set_random_state(11)
    p2.set_random_state(11)
    for _ in range(4):
        np.testing.assert_array_equal(p1(data)["image"], p2(data)["image"])


@pytest.mark.parametrize(
    "factory, err",
    [
        (lambda: SaltPepperNoise(amount=-0.1), ValueError),
        (lambda: SaltPepperNoise(amount=1.5), ValueError),
        (lambda: SaltPepperNoise(salt_vs_pepper=-0.2), ValueError),
        (lambda: SaltPepperNoise(amount=(0.1, 0.2)), TypeError),
        (lambda: SaltPepperNoise(salt="max"), TypeError),
        (lambda: RandSaltPepperNoise(amount=(0.2, 0.1)), ValueError),
        (lambda: RandSaltPepperNoise(amount=(-0.1, 0.1)), ValueError),
        (lambda: SpeckleNoise(std=-1.0), ValueError),
        (lambda: RandSpeckleNoise(std=(0.1, -0.1)), ValueError),
        (lambda: RandSpeckleNoise(std="big"), TypeError),
    ],
)
def test_bad_arguments(factory, err):
    with pytest.raises(err):
        factory()


def test_bad_images():
    with pytest.raises(ValueError, match="channel-first"):
        SaltPepperNoise()(np.zeros(16, np.float32))
    with pytest.raises(TypeError, match="real-valued"):
        SpeckleNoise()(np.zeros((1, 8, 8), np.complex64))


def test_fixed_level_twins_draw_only_the_noise():
    """The fixed-level classes are their Rand* twin with one level and no prob draw: a seed gives the noise drawn
    straight from numpy's RandomState with that seed (an independent computation of the same draw)."""
    img = image(shape=(2, 16, 16))
    n = np.random.RandomState(4).normal(0.1, 0.2, img.shape)
    speckled = SpeckleNoise(std=0.2, mean=0.1).set_random_state(4)(img)
    np.testing.assert_allclose(speckled, img + img * n.astype(img.dtype), rtol=1e-6)
    u = np.random.RandomState(5).random_sample(img.shape)
    salt, pepper = u < 0.3 * 0.25, (u >= 0.3 * 0.25) & (u < 0.3)
    expected = np.where(salt, img.max(axis=(1, 2), keepdims=True),
                        np.where(pepper, img.min(axis=(1, 2), keepdims=True), img))
    np.testing.assert_array_equal(SaltPepperNoise(amount=0.3, salt_vs_pepper=0.25).set_random_state(5)(img), expected)
    assert isinstance(SpeckleNoise(), RandSpeckleNoise) and isinstance(SaltPepperNoised("image"), RandSaltPepperNoised)
