"""Complex Gaussian k-space noise: measured SNR and sigma against the definition, sampled-only, Rand behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_implicit.transforms import (
    KspaceGaussianNoise,
    KspaceGaussianNoised,
    RandKspaceGaussianNoise,
    RandKspaceGaussianNoised,
    RetrospectiveUndersampled,
)


def kspace_of(shape=(128, 128), channels=1, seed=0) -> np.ndarray:
    # a spectrum that decays like natural images (most energy at low frequencies), centred
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(s) - s // 2 for s in shape], indexing="ij")
    r = np.sqrt(sum(g.astype(float) ** 2 for g in grids)) + 1.0
    k = (rng.standard_normal((channels, *shape)) + 1j * rng.standard_normal((channels, *shape))) / r
    return k.astype(np.complex64)


def measured_snr_db(clean: np.ndarray, noisy: np.ndarray, where: np.ndarray | None = None) -> float:
    clean, noise = np.asarray(clean), np.asarray(noisy) - np.asarray(clean)
    if where is not None:
        clean, noise = clean[where], noise[where]
    return float(10 * np.log10(np.mean(np.abs(clean) ** 2) / np.mean(np.abs(noise) ** 2)))


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_snr_in_kspace_matches_target(snr_db):
    k = kspace_of(channels=2)
    noisy = KspaceGaussianNoise(snr_db=snr_db).set_random_state(0)(k)
    assert noisy.dtype == np.complex64 and noisy.shape == k.shape
    assert abs(measured_snr_db(k, noisy) - snr_db) < 0.2


def test_sigma_is_per_component_std():
    k = kspace_of()
    noise = np.asarray(KspaceGaussianNoise(sigma=0.05).set_random_state(1)(k)) - k
    assert abs(noise.real.std() / 0.05 - 1) < 0.03 and abs(noise.imag.std() / 0.05 - 1) < 0.03
    assert abs(np.corrcoef(noise.real.ravel(), noise.imag.ravel())[0, 1]) < 0.03


def test_sampled_only_leaves_unsampled_locations_and_hits_snr():
    k = kspace_of()
    mask = np.zeros((1, 128, 128), np.float32)
    mask[:, :, ::2] = 1  # half of the lines: 8192 sampled locations
    k_u = k * mask
    noisy = np.asarray(KspaceGaussianNoise(snr_db=15.0, sampled_only=True).set_random_state(2)(k_u, mask=mask))
    assert np.all(noisy[:, :, 1::2] == 0)
    sampled = np.broadcast_to(mask > 0, k.shape)
    assert abs(measured_snr_db(k_u, noisy, sampled) - 15.0) < 0.2


def test_image_domain_snr_equals_kspace_snr():
    # the orthonormal FFT preserves the noise power, so the SNR holds in the image domain too (complex output)
    rng = np.random.default_rng(0)
    img = (rng.uniform(0.2, 1.0, (1, 96, 96)) * np.exp(1j * 0.2)).astype(np.complex64)
    noisy = KspaceGaussianNoise(snr_db=12.0, domain="image").set_random_state(3)(img)
    assert abs(measured_snr_db(img, noisy) - 12.0) < 0.2
    # real images come back as the magnitude of the noisy image
    mag = KspaceGaussianNoise(sigma=0.01, domain="image").set_random_state(3)(np.abs(img))
    assert mag.dtype == np.float32 and mag.min() >= 0


def test_real_imag_channels_and_meta():
    k = kspace_of()
    ri = MetaTensor(torch.as_tensor(np.concatenate([k.real, k.imag])), meta={"filename_or_obj": "k"})
    out = KspaceGaussianNoise(snr_db=20.0, input_format="real_imag").set_random_state(0)(ri)
    assert isinstance(out, MetaTensor) and out.shape == (2, 128, 128) and out.meta["filename_or_obj"] == "k"
    z = out[0].numpy() + 1j * out[1].numpy()
    assert abs(measured_snr_db(k[0], z) - 20.0) < 0.2


def test_same_seed_same_noise_and_global_rng_untouched():
    k = kspace_of(shape=(32, 32))
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    a = KspaceGaussianNoise(snr_db=10.0).set_random_state(4)(k)
    b = KspaceGaussianNoise(snr_db=10.0).set_random_state(4)(k)
    c = KspaceGaussianNoise(snr_db=10.0).set_random_state(5)(k)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_rand_respects_prob_and_range():
    k = kspace_of(shape=(64, 64))
    never = RandKspaceGaussianNoise(prob=0.0, snr_db=10.0)
    assert np.array_equal(never(k), k)
    t = RandKspaceGaussianNoise(prob=0.5, snr_db=(10.0, 20.0)).set_random_state(0)
    applied, snrs = 0, []
    for _ in range(60):
        out = t(k)
        if not np.array_equal(out, k):
            applied += 1
            snrs.append(measured_snr_db(k, out))
    assert 15 <= applied <= 45
    assert min(snrs) > 9.8 and max(snrs) < 20.2 and max(snrs) - min(snrs) > 3
    t1 = RandKspaceGaussianNoise(prob=0.5, snr_db=(10.0, 20.0)).set_random_state(7)
    t2 = RandKspaceGaussianNoise(prob=0.5, snr_db=(10.0, 20.0)).set_random_state(7)
    for _ in range(5):
        np.testing.assert_array_equal(t1(k), t2(k))


def test_dictionary_recomputes_zero_filled_input():
    rng = np.random.default_rng(0)
    img = MetaTensor(torch.as_tensor(rng.uniform(0, 1, (1, 64, 64)).astype(np.float32)), meta={"filename_or_obj": "i"})
    d = RetrospectiveUndersampled("image", accel=4.0, calib=6)({"image": img})
    clean = d["image"].clone()
    noisy = KspaceGaussianNoised("kspace", snr_db=10.0, sampled_only=True, mask_key="mask", recon_key="image")
    noisy.set_random_state(0)
    out = noisy(dict(d))
    assert out["image"].shape == clean.shape and out["image"].meta["filename_or_obj"] == "i"
    ref = np.abs(
        np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(out["kspace"].numpy(), axes=(1, 2)), axes=(1, 2), norm="ortho"))
    )
    np.testing.assert_allclose(out["image"].numpy(), ref, atol=1e-5)
    assert not torch.allclose(out["image"], clean)
    # outside the mask the k-space is still zero
    assert torch.all(out["kspace"][out["mask"].expand_as(out["kspace"]) == 0] == 0)
    never = RandKspaceGaussianNoised("kspace", prob=0.0, snr_db=10.0)
    assert never(dict(d))["kspace"] is d["kspace"]
    always = RandKspaceGaussianNoised("kspace", prob=1.0, snr_db=(5.0, 6.0)).set_random_state(0)
    assert not torch.equal(always(dict(d))["kspace"], d["kspace"])


@pytest.mark.parametrize(
    "kwargs, err",
    [
        ({}, ValueError),  # neither snr_db nor sigma
        ({"snr_db": 10.0, "sigma": 0.1}, ValueError),
        ({"sigma": -0.1}, ValueError),
        ({"snr_db": float("inf")}, ValueError),
        ({"snr_db": "10"}, TypeError),
        ({"snr_db": 10.0, "domain": "fourier"}, ValueError),
    ],
)
def test_bad_arguments(kwargs, err):
    with pytest.raises(err):
        KspaceGaussianNoise(**kwargs)


def test_bad_data():
    k = kspace_of(shape=(16, 16))
    with pytest.raises(ValueError, match="needs the sampling mask"):
        KspaceGaussianNoise(snr_db=10.0, sampled_only=True)(k)
    with pytest.raises(TypeError, match="complex k-space"):
        KspaceGaussianNoise(snr_db=10.0)(np.abs(k))  # a real array is not k-space
    with pytest.raises(ValueError, match="spatial dims"):
        KspaceGaussianNoise(snr_db=10.0)(k[0, 0])
    with pytest.raises(ValueError, match="selects no"):
        KspaceGaussianNoise(snr_db=10.0, sampled_only=True)(k, mask=np.zeros((16, 16)))
    with pytest.raises(ValueError, match="mask_key"):
        KspaceGaussianNoised("kspace", snr_db=10.0, sampled_only=True)
    with pytest.raises(ValueError, match="single level"):
        KspaceGaussianNoise(snr_db=(1.0, 2.0))  # type: ignore[arg-type]
