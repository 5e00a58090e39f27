"""Retrospective undersampling: FFT convention vs numpy, identities, PSNR ordering, meta data, dict and bundle use."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.transforms import Compose

from monai_implicit.transforms import (
    RandRetrospectiveUndersample,
    RandRetrospectiveUndersampled,
    RandUndersamplingMask,
    RandUndersamplingMaskd,
    RetrospectiveUndersample,
    RetrospectiveUndersampled,
    UndersamplingMask,
    UndersamplingMaskd,
    poisson_disk_mask,
)


def phantom(shape: tuple[int, ...], channels: int = 1, seed: int = 0) -> np.ndarray:
    """Smooth non-negative test image: a few random ellipsoids on a dark background, (C, *shape)."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    out = np.zeros((channels, *shape), dtype=np.float32)
    for c in range(channels):
        for _ in range(6):
            centre = rng.uniform(-0.5, 0.5, len(shape))
            radii = rng.uniform(0.15, 0.5, len(shape))
            inside = sum(((g - m) / r) ** 2 for g, m, r in zip(grids, centre, radii)) < 1
            out[c][inside] += rng.uniform(0.2, 1.0)
    return out


def centred_fft_np(x: np.ndarray) -> np.ndarray:
    axes = tuple(range(1, x.ndim))
    return np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(x, axes=axes), axes=axes, norm="ortho"), axes=axes)


def centred_ifft_np(k: np.ndarray) -> np.ndarray:
    axes = tuple(range(1, k.ndim))
    return np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(k, axes=axes), axes=axes, norm="ortho"), axes=axes)


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10(ref.max() ** 2 / np.mean((x - ref) ** 2)))


@pytest.mark.parametrize("shape", [(64, 48), (33, 40), (12, 20, 16)])
def test_matches_numpy_reference(shape):
    img = phantom(shape, channels=2)
    t = RetrospectiveUndersample(accel=3.0, calib=4, seed=0, readout_axis=0)
    out = t(img)
    mask = out.mask
    assert mask.shape == (1, *shape)
    k_ref = centred_fft_np(img.astype(np.complex128)) * mask
    np.testing.assert_allclose(out.kspace, k_ref, atol=1e-4)
    np.testing.assert_allclose(out.image, np.abs(centred_ifft_np(k_ref)), atol=1e-5)
    np.testing.assert_allclose(out.target, img, atol=1e-6)


@pytest.mark.parametrize("image_format", ["magnitude", "real_imag", "complex"])
@pytest.mark.parametrize("shape", [(32, 32), (8, 16, 12)])
def test_all_ones_mask_returns_target(image_format, shape):
    img = torch.as_tensor(phantom(shape, channels=3))
    out = RetrospectiveUndersample(image_format=image_format)(img, mask=torch.ones(shape))
    torch.testing.assert_close(out.image, out.target, atol=2e-6, rtol=0)
    if image_format == "magnitude":
        torch.testing.assert_close(out.target, img)


def test_fft_preserves_energy():
    img = phantom((40, 56), channels=2)
    out = RetrospectiveUndersample(kspace_format="complex")(img, mask=np.ones((40, 56)))
    assert np.isclose(np.sum(np.abs(out.kspace) ** 2), np.sum(img.astype(np.float64) ** 2), rtol=1e-5)
    # Parseval also holds for the undersampled pair (k-space vs zero-filled image)
    out = RetrospectiveUndersample(accel=4.0, calib=6, image_format="complex")(img)
    assert np.isclose(np.sum(np.abs(out.kspace) ** 2), np.sum(np.abs(out.image) ** 2), rtol=1e-5)


def test_zero_filled_psnr_improves_as_acceleration_decreases():
    img = phantom((128, 128))
    values = [psnr(RetrospectiveUndersample(accel=a, calib=12, seed=0)(img).image, img) for a in (10.0, 6.0, 3.0, 1.5)]
    assert all(p0 < p1 for p0, p1 in zip(values[:-1], values[1:])), values
    lines = psnr(RetrospectiveUndersample(kind="random_lines", accel=6.0, calib=12, seed=0)(img).image, img)
    assert np.isfinite(lines)


def test_metatensor_meta_and_channels_survive():
    affine = torch.diag(torch.tensor([0.9, 1.1, 3.0, 1.0], dtype=torch.float64))
    img = MetaTensor(
        torch.as_tensor(phantom((16, 24, 20), channels=2)), affine=affine, meta={"filename_or_obj": "v.nii"}
    )
    out = RetrospectiveUndersample(accel=3.0, calib=4, readout_axis=2, image_format="real_imag")(img)
    expect = {"image": (4, 16, 24, 20), "target": (4, 16, 24, 20), "kspace": (2, 16, 24, 20), "mask": (1, 16, 24, 20)}
    for name, shape in expect.items():
        value = getattr(out, name)
        assert isinstance(value, MetaTensor), name
        assert tuple(value.shape) == shape, name
        assert value.meta["filename_or_obj"] == "v.nii"
        torch.testing.assert_close(value.affine, affine)
    assert out.kspace.is_complex()
    # readout axis fully sampled: the mask is constant along the last spatial axis
    assert (out.mask == out.mask[..., :1]).all()


def test_numpy_and_torch_inputs_agree():
    img = phantom((32, 40))
    t = RetrospectiveUndersample(accel=4.0, calib=4, kspace_format="real_imag")
    a, b = t(img), t(torch.as_tensor(img))
    for x, y in zip(a, b):
        # torch in -> torch out (a MetaTensor while MONAI's meta tracking is on, as for MONAI's own transforms)
        assert isinstance(x, np.ndarray) and isinstance(y, torch.Tensor)
        np.testing.assert_allclose(x, y.cpu().numpy(), atol=1e-6)
    assert a.kspace.shape == (2, 32, 40)


def test_complex_inputs_two_ways():
    rng = np.random.default_rng(0)
    z = (phantom((24, 32)) * np.exp(1j * rng.uniform(0, 0.3, (1, 24, 32)))).astype(np.complex64)
    t = RetrospectiveUndersample(accel=3.0, calib=4, image_format="complex")
    from_complex_dtype = t(z)
    from_channels = RetrospectiveUndersample(accel=3.0, calib=4, image_format="complex", input_format="real_imag")(
        np.concatenate([z.real, z.imag]).astype(np.float32)
    )
    np.testing.assert_allclose(from_complex_dtype.image, from_channels.image, atol=1e-6)
    np.testing.assert_allclose(from_complex_dtype.image, centred_ifft_np(centred_fft_np(z) * t(z).mask), atol=1e-5)


def test_uses_the_masks_it_advertises():
    img = phantom((48, 48))
    out = RetrospectiveUndersample(accel=4.0, calib=6, seed=9)(img)
    np.testing.assert_array_equal(out.mask[0] > 0, poisson_disk_mask((48, 48), 4.0, 6, seed=9))
    np.testing.assert_array_equal(UndersamplingMask(accel=4.0, calib=6, seed=9)(img), out.mask)


def test_rand_masks_vary_and_are_reproducible():
    img = phantom((40, 40))
    t = RandRetrospectiveUndersample(accel=4.0, calib=4).set_random_state(0)
    m1, m2 = t(img).mask, t(img).mask
    assert (m1 != m2).any()
    t.set_random_state(0)
    np.testing.assert_array_equal(t(img).mask, m1)
    pool = RandUndersamplingMask(accel=4.0, calib=4, num_masks=2).set_random_state(1)
    masks = {pool(img).tobytes() for _ in range(12)}
    assert len(masks) == 2


def test_dictionary_defaults_and_options():
    img = MetaTensor(torch.as_tensor(phantom((32, 32))), meta={"filename_or_obj": "s.nii"})
    d = RetrospectiveUndersampled("image", accel=4.0, calib=4)({"image": img, "label": 1})
    assert set(d) == {"image", "target", "kspace", "mask", "label"}
    torch.testing.assert_close(d["target"], img.as_tensor(), check_dtype=True)
    assert d["image"].meta["filename_or_obj"] == "s.nii"
    own = np.zeros((32, 32), np.float32)
    own[:, ::2] = 1
    d2 = RetrospectiveUndersampled(
        "img", image_key="zf", target_key=None, kspace_key=None, mask_key="m", mask_input_key="acq"
    )({"img": img, "acq": own})
    assert set(d2) == {"img", "zf", "m", "acq"}
    np.testing.assert_array_equal(d2["m"][0], own)
    d3 = UndersamplingMaskd("image", kind="equispaced_lines", accel=4.0, calib=4)({"image": img})
    assert d3["mask"].shape == (1, 32, 32)


def test_rand_dictionary_reproducible_in_compose():
    img = torch.as_tensor(phantom((32, 32)))
    pipe = Compose([RandRetrospectiveUndersampled("image", accel=3.0, calib=4)])
    pipe.set_random_state(5)
    a = [pipe({"image": img})["mask"] for _ in range(3)]
    pipe.set_random_state(5)
    b = [pipe({"image": img})["mask"] for _ in range(3)]
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
    assert (a[0] != a[1]).any()
    m = RandUndersamplingMaskd("image", accel=3.0, calib=4, num_masks=1).set_random_state(0)
    torch.testing.assert_close(m({"image": img})["mask"], m({"image": img})["mask"])


def test_bundle_config_instantiation():
    config = {
        "pre": {
            "_target_": "Compose",
            "transforms": [
                {
                    "_target_": "monai_implicit.transforms.RetrospectiveUndersampled",
                    "keys": "image",
                    "kind": "poisson",
                    "accel": 4,
                    "calib": [6, 6],
                    "seed": 0,
                    "image_format": "real_imag",
                },
                {
                    "_target_": "monai_implicit.transforms.RandKspaceGaussianNoised",
                    "keys": "kspace",
                    "prob": 1.0,
                    "snr_db": [20, 30],
                    "sampled_only": True,
                    "mask_key": "mask",
                    "recon_key": "image",
                    "recon_format": "real_imag",
                },
            ],
        }
    }
    parser = ConfigParser(config)
    pre = parser.get_parsed_content("pre")
    out = pre({"image": torch.as_tensor(phantom((32, 32)))})
    assert out["image"].shape == (2, 32, 32) and out["kspace"].is_complex()


@pytest.mark.parametrize(
    "img, kwargs, err",
    [
        (np.zeros((32, 32)), {}, ValueError),  # no channel axis
        (np.zeros((1, 4, 8, 8, 8)), {}, ValueError),  # 4 spatial axes
        (np.zeros((3, 16, 16)), {"input_format": "real_imag"}, ValueError),  # odd channels for real/imag
    ],
)
def test_bad_inputs(img, kwargs, err):
    with pytest.raises(err):
        RetrospectiveUndersample(accel=2.0, calib=2, **kwargs)(img)


def test_bad_arguments_and_masks():
    with pytest.raises(ValueError, match="accel"):
        RetrospectiveUndersample(accel=1.0)
    with pytest.raises(ValueError, match="image_format"):
        RetrospectiveUndersample(image_format="phase")
    with pytest.raises(ValueError, match="kind"):
        RetrospectiveUndersample(kind="radial")
    with pytest.raises(ValueError, match="larger than"):
        RetrospectiveUndersample(accel=2.0, calib=40)(np.zeros((1, 32, 32)))
    with pytest.raises(ValueError, match="mask must have shape"):
        RetrospectiveUndersample()(np.zeros((1, 32, 32)), mask=np.ones((32, 31)))
    with pytest.raises(ValueError, match="exactly one key"):
        RetrospectiveUndersampled(["a", "b"])
    with pytest.raises(KeyError, match="mask_input_key"):
        RetrospectiveUndersampled("image", mask_input_key="acq")({"image": np.zeros((1, 8, 8))})


def test_mask_options_are_validated_once_and_keyword_only():
    from monai_implicit.transforms import MaskSpec, undersampling_mask

    spec = MaskSpec(kind="poisson", accel=4, calib=[6, 6])
    assert spec.accel == 4.0 and spec.calib == (6, 6)
    for cls in (UndersamplingMask, RetrospectiveUndersample, RandRetrospectiveUndersample):
        with pytest.raises(ValueError, match="tol"):
            cls(accel=2.0, tol=3.0)
        with pytest.raises(TypeError):
            cls("poisson")  # the mask options are keyword-only
    img = np.zeros((1, 30, 34), np.float32)
    np.testing.assert_array_equal(
        UndersamplingMask(accel=4.0, calib=6, seed=2, readout_axis=1)(img)[0],
        undersampling_mask("poisson", (30, 34), 4.0, 6, 2, 1).astype(np.float32),
    )
