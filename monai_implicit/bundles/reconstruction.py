"""Bundle helpers for CS-MRI reconstruction (the hyperunet_csmri bundle).

* PSNR under complex k-space noise, CSV and PNG (hyper-convolution paper, Sec. 4.4, Fig. 8): the paper trains a
  reconstruction network on noise-free undersampled data and tests it on inputs whose *acquired* k-space samples carry
  complex Gaussian noise of increasing strength: the noisy k-space is zero-filled again and fed to the network (with
  data consistency, the noisy samples are also what the network's output keeps).  :func:`kspace_noise_robustness`
  runs that sweep for one trained network and, alongside, scores the zero-filled input itself; running it again for
  the plain-convolution twin with another ``tag`` adds its curve to the same plot (:func:`plot_psnr_robustness`).
* Inference inputs at their native size: :class:`LoadKspaced` reads single-coil undersampled k-space + mask files
  (``<case>_kspace.npy`` + ``<case>_mask.npy``, or fastMRI-style HDF5 with ``kspace`` and ``mask`` datasets),
  :class:`ZeroFilledKspaced` gives a zero-filled magnitude image the k-space samples data consistency keeps, and
  :class:`ScaleByMaxd` scales an input to the [0, 1] range the network was trained on and back (invertible).

:class:`~monai_implicit.networks.nets.ResidualReconstruction` (``x + gain * net(x)``, gain starting at 0) lives in
:mod:`monai_implicit.networks.nets.reconstruction` with :class:`~monai_implicit.networks.nets.DataConsistency`; it is
importable from here as before.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.metrics import PSNRMetric, SSIMMetric
from monai.transforms import InvertibleTransform, MapTransform
from monai.utils import TraceKeys
from monai.utils.type_conversion import convert_to_dst_type

from monai_implicit.bundles.robustness import _pyplot, read_robustness_tables
from monai_implicit.networks.nets.reconstruction import ResidualReconstruction
from monai_implicit.transforms.checks import check_finite
from monai_implicit.transforms.kspace.array import image_to_kspace, kspace_to_image
from monai_implicit.transforms.kspace.dictionary import KspaceGaussianNoised

__all__ = [
    "ResidualReconstruction",
    "kspace_noise_robustness",
    "plot_psnr_robustness",
    "ZERO_FILLED_TAG",
    "KSPACE_SUFFIX",
    "MASK_SUFFIX",
    "read_kspace_file",
    "read_mask_file",
    "LoadKspaced",
    "LoadKspaceD",
    "LoadKspaceDict",
    "ZeroFilledKspaced",
    "ZeroFilledKspaceD",
    "ZeroFilledKspaceDict",
    "ScaleByMaxd",
    "ScaleByMaxD",
    "ScaleByMaxDict",
]

logger = logging.getLogger(__name__)

#: tag of the zero-filled input's curve
ZERO_FILLED_TAG = "zero_filled"


def _level(value: Any) -> float:
    """``None`` / ``"clean"`` / ``inf`` mean no noise (SNR = inf dB)."""
    if value is None or (isinstance(value, str) and value.lower() in ("clean", "none", "inf")):
        return math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"an SNR level must be a number in dB or None (no noise), got {value!r}.")
    return float(value)


@torch.no_grad()
def kspace_noise_robustness(
    network: torch.nn.Module,
    datalist: Sequence[dict],
    preprocessing: Callable[[dict], dict],
    inferer: Callable,
    snr_levels: Sequence[Optional[float]],
    output_dir: Union[str, os.PathLike],
    tag: str,
    data_range: float = 1.0,
    device: Optional[Union[str, torch.device]] = None,
    seed: int = 0,
    image_key: str = "image",
    target_key: str = "label",
    kspace_key: str = "kspace",
    mask_key: str = "mask",
    extra_inputs: Optional[Mapping[str, str]] = None,
) -> list[dict]:
    """PSNR and SSIM of ``network`` and of the zero-filled input at every k-space SNR level; writes CSVs and a PNG.

    Args:
        network: the trained reconstruction network ``(1, 1, H, W) -> (1, 1, H, W)`` (set to eval mode).
        datalist: ``[{"image": path}, ...]``.
        preprocessing: deterministic transforms ending with
            :class:`~monai_implicit.transforms.RetrospectiveUndersampled`, so that each case holds the zero-filled
            input ``image_key``, the fully sampled ``target_key``, the undersampled complex ``kspace_key`` and the
            sampling ``mask_key``.
        inferer: called as ``inferer(image (1, 1, H, W), network)``.
        snr_levels: SNR of the added noise in dB relative to the mean power of the acquired samples
            (:class:`~monai_implicit.transforms.KspaceGaussianNoised` with ``sampled_only=True``); None = no noise.
        output_dir: where ``robustness_<tag>.csv``, ``robustness_zero_filled.csv`` and ``robustness.png`` go.
        tag: name of the network in the CSV and the plot (e.g. ``"HyperUNet"``, ``"PlainUNet"``).
        data_range: intensity range of the target for PSNR / SSIM (1 for images scaled to [0, 1]).
        device: where the network runs (default: where its parameters are).
        seed: noise seed of case ``i`` is ``seed + i``, the same for every network, so curves are paired.
        image_key, target_key, kspace_key, mask_key: keys written by the preprocessing.
        extra_inputs: keyword arguments of the network's forward taken from the case (argument name -> key), as
            ``monai.engines.PrepareBatchExtraInput`` takes them from a batch: ``{"kspace": "kspace", "mask": "mask"}``
            for a :class:`~monai_implicit.networks.nets.DataConsistency` network, which then keeps the *noisy*
            acquired samples (what was measured).  None for a network of the image alone.

    Returns:
        One row per (level, case) for the network: ``network, snr_db, case, psnr, ssim``.
    """
    if not isinstance(tag, str) or not tag or tag == ZERO_FILLED_TAG or os.sep in tag:
        raise ValueError(f"tag must be a non-empty file-name-safe string other than {ZERO_FILLED_TAG!r}, got {tag!r}.")
    levels = [_level(v) for v in snr_levels]
    if not levels:
        raise ValueError("snr_levels is empty.")
    if not datalist:
        raise ValueError("datalist is empty.")
    device = torch.device(device) if device is not None else next(network.parameters()).device
    network = network.to(device).eval()
    psnr = PSNRMetric(max_val=data_range, reduction="none")
    cases = [preprocessing(dict(item)) for item in datalist]
    for key in (image_key, target_key, kspace_key, mask_key, *(extra_inputs or {}).values()):
        if key not in cases[0]:
            raise KeyError(f"the preprocessing must produce {key!r} (RetrospectiveUndersampled), got {list(cases[0])}.")
    spatial_dims = cases[0][target_key].ndim - 1
    ssim = SSIMMetric(spatial_dims=spatial_dims, data_range=data_range, reduction="none")
    rows: dict[str, list[dict]] = {tag: [], ZERO_FILLED_TAG: []}
    for level in levels:
        for index, case in enumerate(cases):
            if math.isfinite(level):
                noise = KspaceGaussianNoised(kspace_key, snr_db=level, sampled_only=True, mask_key=mask_key,
                                             recon_key=image_key)
                noise.set_random_state(seed + index)
                case = noise(dict(case))
            target = torch.as_tensor(case[target_key]).float()[None]
            zero_filled = torch.as_tensor(case[image_key]).float()[None]
            kwargs = {arg: torch.as_tensor(case[key])[None].to(device) for arg, key in (extra_inputs or {}).items()}
            pred = inferer(zero_filled.to(device), network, **kwargs).float().cpu()
            name = os.path.basename(str(getattr(cases[index][target_key], "meta", {}).get("filename_or_obj", index)))
            for who, image in ((tag, pred), (ZERO_FILLED_TAG, zero_filled)):
                rows[who].append({"network": who, "snr_db": level, "case": name,
                                  "psnr": float(psnr(image, target).flatten()[0]),
                                  "ssim": float(ssim(image, target).flatten()[0])})
        for who in rows:
            recent = [r["psnr"] for r in rows[who][-len(cases):]]
            logger.info(f"{who} at SNR {level} dB: mean PSNR {np.mean(recent):.2f} dB")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for who, table in rows.items():
        with open(out / f"robustness_{who}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    plot_psnr_robustness(out)
    return rows[tag]


def plot_psnr_robustness(output_dir: Union[str, os.PathLike], filename: str = "robustness.png") -> Optional[str]:
    """Mean PSNR vs k-space SNR, one curve per ``robustness_<tag>.csv`` in ``output_dir`` (paper Fig. 8).

    The noise-free level (SNR = inf) is drawn at the left end, labelled "clean"; noise grows to the right.
    Returns the PNG path, or None when matplotlib is missing or there is nothing to plot.
    """
    plt = _pyplot()
    if plt is None:
        return None
    tables = read_robustness_tables(output_dir)
    levels = sorted({float(r["snr_db"]) for rows in tables.values() for r in rows}, reverse=True)
    if not levels:
        return None
    finite = [lv for lv in levels if math.isfinite(lv)]
    step = (max(finite) - min(finite)) / max(len(finite) - 1, 1) if len(finite) > 1 else 10.0
    position = {lv: (max(finite) + step if finite else 0.0) if not math.isfinite(lv) else lv for lv in levels}
    fig, ax = plt.subplots(figsize=(5, 3.8))
    for tag, rows in tables.items():
        present = [lv for lv in levels if any(float(r["snr_db"]) == lv for r in rows)]
        means = [np.mean([float(r["psnr"]) for r in rows if float(r["snr_db"]) == lv]) for lv in present]
        ax.plot([position[lv] for lv in present], means, marker="o", label=tag.replace("_", "-"),
                linestyle="--" if tag == ZERO_FILLED_TAG else "-")
    ax.set_xticks([position[lv] for lv in levels])
    ax.set_xticklabels(["clean" if not math.isfinite(lv) else f"{lv:g}" for lv in levels])
    ax.invert_xaxis()
    ax.set_xlabel("k-space SNR of the acquired samples (dB)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = str(Path(output_dir) / filename)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------------------------------
# inference inputs at their native size
# --------------------------------------------------------------------------------------------------------------------
#: file naming of single-coil k-space in numpy format: ``<case>_kspace.npy`` (complex) + ``<case>_mask.npy``
KSPACE_SUFFIX = "_kspace.npy"
MASK_SUFFIX = "_mask.npy"
HDF5_SUFFIXES = (".h5", ".hdf5")


def _load_npy(path: str, what: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as e:  # pickled objects, truncated or foreign files
        raise ValueError(f"cannot read {what} {path!r} as a .npy array: {type(e).__name__}: {e}") from e
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{what} {path!r} is not a single .npy array (an .npz archive?).")
    return array


def _read_hdf5(path: str) -> dict:
    """The datasets and attributes of an HDF5 file (MONAI's ``FastMRIReader``; h5py is an optional dependency)."""
    from monai.apps.reconstruction.fastmri_reader import FastMRIReader
    from monai.utils import OptionalImportError

    try:
        reader = FastMRIReader()
    except OptionalImportError as e:
        raise OptionalImportError(
            f"reading the HDF5 k-space file {path!r} needs the optional package 'h5py' (pip install h5py): {e}"
        ) from e
    try:
        return reader.read(path)
    except Exception as e:
        raise ValueError(f"cannot read HDF5 file {path!r}: {type(e).__name__}: {e}") from e


def _check_kspace(array: Any, source: str) -> np.ndarray:
    """Single-coil k-space of one slice as complex64 ``(H, W)``; errors name ``source`` (the file, and the dataset)."""
    name = repr(source)
    array = np.asarray(array)
    if not np.iscomplexobj(array):
        raise ValueError(
            f"k-space {name} must be a complex array (complex64 / complex128, single-coil, centred), got dtype "
            f"{array.dtype}."
        )
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or min(array.shape) < 2:
        raise ValueError(
            f"k-space {name} must be one 2D slice (H, W) or (1, H, W), got shape {array.shape}; write multi-slice or "
            "multi-coil data as one coil-combined slice per file."
        )
    check_finite(array, name=source, what="k-space")
    return array.astype(np.complex64)


def _check_mask(array: Any, shape: tuple, source: str) -> np.ndarray:
    """A sampling mask as float32 0/1 ``shape``: ``shape``, ``(1, *shape)`` or a 1D column mask of length
    ``shape[-1]`` (fastMRI), 0/1 or boolean, sampling something; errors name ``source``."""
    name = repr(source)
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"mask {name} must hold boolean or real 0/1 values, got dtype {array.dtype}.")
    if array.ndim == len(shape) + 1 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 1 and len(shape) == 2 and array.shape[0] == shape[1]:
        array = np.broadcast_to(array[None], shape)  # fastMRI: one value per phase-encode column
    if tuple(array.shape) != tuple(shape):
        raise ValueError(
            f"mask {name} has shape {tuple(array.shape)}; it must match the grid {tuple(shape)} of the data (or be a "
            f"1D column mask of length {shape[-1]})."
        )
    array = np.array(array, dtype=np.float32)  # a writable copy (broadcast columns and HDF5 data may be read-only)
    check_finite(array, name=source, what="mask")
    if not np.isin(array, (0, 1)).all():
        bad = array[~np.isin(array, (0, 1))]
        raise ValueError(f"mask {name} must hold only 0 and 1, got {bad.size} other value(s), e.g. {bad.flat[0]!r}.")
    if not array.any():
        raise ValueError(f"mask {name} samples nothing (all zeros).")
    return array


def _check_affine(array: Any, source: str) -> np.ndarray:
    affine = np.array(array, dtype=np.float64)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise ValueError(f"affine {source!r} must be a finite 4x4 matrix, got shape {affine.shape}.")
    return affine


def read_kspace_file(path: Union[str, os.PathLike]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Single-coil undersampled k-space of one 2D slice, its sampling mask and the affine of its image grid.

    Formats:

    * ``<case>_kspace.npy``: complex ``(H, W)`` (or ``(1, H, W)``) with its mask in ``<case>_mask.npy`` next to it
      (0/1 or boolean ``(H, W)``, or a 1D column mask of length ``W``); the affine is the identity.
    * ``.h5`` / ``.hdf5`` (fastMRI style, read with MONAI's ``FastMRIReader``; needs the optional package h5py):
      datasets ``kspace`` (complex ``(H, W)`` or ``(1, H, W)``) and ``mask`` (as above; fastMRI's 1D column masks
      included), and optionally ``affine`` (4x4, the image grid's voxel-to-world matrix; identity without it).

    The k-space is centred (DC at index ``n // 2``) with the orthonormal FFT convention of
    :class:`~monai_implicit.transforms.RetrospectiveUndersampled` (fastMRI's ``fft2c`` convention); its values where the
    mask is 0 are ignored.

    Returns:
        ``(kspace complex64 (H, W), mask float32 (H, W), affine float64 (4, 4))``.

    Raises:
        FileNotFoundError: the file (or the ``_mask.npy`` beside it) does not exist.
        ValueError: unknown file naming, unreadable file, missing dataset, k-space not complex or not one 2D slice,
            non-finite values, mask of another shape or not 0/1, bad affine (each message names the file).
        OptionalImportError: an HDF5 file without h5py installed (the message names the package and the file).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"k-space file {path!r} does not exist.")
    lower = path.lower()
    affine = np.eye(4)
    if lower.endswith(HDF5_SUFFIXES):
        data = _read_hdf5(path)
        for key in ("kspace", "mask"):
            if key not in data:
                found = sorted(k for k in data if k != "filename")
                raise ValueError(
                    f"HDF5 file {path!r} has no {key!r} dataset (fastMRI-style single-coil layout: 'kspace' complex "
                    f"(H, W) and 'mask'); it holds {found}."
                )
        kspace = _check_kspace(data["kspace"], f"{path}, dataset 'kspace'")
        mask = _check_mask(data["mask"], kspace.shape, f"{path}, dataset 'mask'")
        if "affine" in data:
            affine = _check_affine(data["affine"], f"{path}, dataset 'affine'")
    elif lower.endswith(KSPACE_SUFFIX):
        mask_path = path[: -len(KSPACE_SUFFIX)] + MASK_SUFFIX
        if not os.path.isfile(mask_path):
            raise FileNotFoundError(
                f"the mask of k-space file {path!r} must be in {mask_path!r} (naming: <case>{KSPACE_SUFFIX} + "
                f"<case>{MASK_SUFFIX}), which does not exist."
            )
        kspace = _check_kspace(_load_npy(path, "k-space file"), path)
        mask = _check_mask(_load_npy(mask_path, "mask file"), kspace.shape, mask_path)
    else:
        raise ValueError(
            f"k-space file {path!r}: expected <case>{KSPACE_SUFFIX} (with <case>{MASK_SUFFIX} beside it) or a "
            f"fastMRI-style HDF5 file ({', '.join(HDF5_SUFFIXES)})."
        )
    return kspace, mask, affine


def read_mask_file(path: Union[str, os.PathLike], spatial_shape: Sequence[int]) -> np.ndarray:
    """A 0/1 sampling mask of ``spatial_shape`` from a ``.npy`` file or an image file (NIfTI...) MONAI reads.

    Returns float32 ``spatial_shape``; raises FileNotFoundError / ValueError naming the file (unreadable, other
    shape, values other than 0/1, non-finite, nothing sampled)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"mask file {path!r} does not exist.")
    if path.lower().endswith(".npy"):
        array = _load_npy(path, "mask file")
    else:
        from monai_implicit.transforms.checks import CheckedLoadImage

        array = np.asarray(CheckedLoadImage(image_only=True)(path))
    return _check_mask(array, tuple(int(s) for s in spatial_shape), path)


class LoadKspaced(MapTransform):
    """Load single-coil undersampled k-space + mask files (:func:`read_kspace_file`) for the reconstruction network.

    ``d[keys]`` holds the path of a ``<case>_kspace.npy`` or ``.h5`` file; the transform writes

    * ``d[key]``: the zero-filled magnitude image ``|F^-1(kspace * mask)|`` ``(1, H, W)`` float32, a MetaTensor on the
      k-space's image grid (affine from the file, else the identity; ``filename_or_obj`` = the k-space file, so
      outputs are named after it),
    * ``d[kspace_key]``: the measured k-space ``kspace * mask`` ``(1, H, W)`` complex64,
    * ``d[mask_key]``: the mask ``(1, H, W)`` float32 0/1.

    ``F`` is the centred orthonormal FFT of :class:`~monai_implicit.transforms.RetrospectiveUndersampled`.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        kspace_key: str = "kspace",
        mask_key: str = "mask",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError(f"LoadKspaced reads exactly one key (its outputs have fixed names), got {self.keys}.")
        self.kspace_key = kspace_key
        self.mask_key = mask_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            path = d[key]
            if not isinstance(path, (str, os.PathLike)):
                raise TypeError(f"LoadKspaced expects a k-space file path in {key!r}, got {type(path).__name__}.")
            kspace, mask, affine = read_kspace_file(path)
            m = torch.from_numpy(mask)[None]
            k = torch.from_numpy(kspace)[None] * m
            meta = {
                "filename_or_obj": os.fspath(path),
                "original_affine": affine,
                "spatial_shape": np.asarray(kspace.shape),
                "space": "RAS",
                "original_channel_dim": float("nan"),
            }
            affine_t = torch.as_tensor(affine, dtype=torch.float64)
            d[key] = MetaTensor(kspace_to_image(k).abs(), affine=affine_t, meta=dict(meta))
            d[self.kspace_key] = MetaTensor(k, affine=affine_t, meta=dict(meta))
            d[self.mask_key] = MetaTensor(m, affine=affine_t, meta=dict(meta))
        return d


class ZeroFilledKspaced(MapTransform):
    """The k-space samples that data consistency keeps for a zero-filled *magnitude* image.

    Writes ``d[kspace_key] = F(d[key]) * mask`` and ``d[mask_key] = mask`` ``(1, *S)``, with ``mask`` read from
    ``mask_file`` (:func:`read_mask_file`; its shape must be the image's) or, without one, ``masker(d[key])`` (the
    bundle's own mask at the image's size, e.g. :class:`~monai_implicit.transforms.UndersamplingMask`).

    A magnitude image has lost the phase of the complex zero-filled image, so these are *not* the acquired samples:
    ``F(|x|)`` differs from ``F(x)`` wherever the aliasing made ``x`` negative or complex.  Data consistency with them
    keeps the reconstruction consistent with the input image's own sampled frequencies (contrast and intensity stay
    those of the input) but cannot enforce the acquisition; only complex k-space (:class:`LoadKspaced`) gives exact
    data consistency.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        kspace_key: str = "kspace",
        mask_key: str = "mask",
        mask_file: Optional[Union[str, os.PathLike]] = None,
        masker: Optional[Callable[[Any], Any]] = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError(f"ZeroFilledKspaced reads exactly one key, got {self.keys}.")
        if mask_file is None and masker is None:
            raise ValueError("ZeroFilledKspaced needs a mask_file or a masker (the mask the image was sampled with).")
        if masker is not None and not callable(masker):
            raise TypeError(f"masker must be callable, got {type(masker).__name__}.")
        self.kspace_key = kspace_key
        self.mask_key = mask_key
        self.mask_file = mask_file
        self.masker = masker

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            plain = torch.as_tensor(image).float()
            if plain.ndim not in (3, 4) or plain.shape[0] != 1:
                raise ValueError(f"{key!r} must be one channel-first image (1, *spatial), got {tuple(plain.shape)}.")
            if self.mask_file is not None:
                mask = torch.from_numpy(read_mask_file(self.mask_file, plain.shape[1:]))[None]
            else:
                mask = torch.as_tensor(self.masker(image)).float()  # type: ignore[misc]
            kspace = image_to_kspace(plain) * mask
            d[self.kspace_key], *_ = convert_to_dst_type(kspace, dst=image, dtype=kspace.dtype)
            d[self.mask_key], *_ = convert_to_dst_type(mask, dst=image, dtype=mask.dtype)
        return d


class ScaleByMaxd(MapTransform, InvertibleTransform):
    """Divide ``d[keys]`` by the maximum magnitude of ``d[ref_key]``; the inverse multiplies back.

    The reconstruction network was trained on images scaled to [0, 1]; at inference the zero-filled magnitude image
    (``ref_key``) is scaled to maximum 1 and the measured k-space by the same factor (the FFT is linear, so data
    consistency is unchanged), and ``Invertd`` on the prediction restores the input's intensity units.

    Raises:
        ValueError: the reference image is all zero or not finite (the message names its file).
    """

    def __init__(
        self, keys: KeysCollection = ("image", "kspace"), ref_key: str = "image", allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.ref_key = ref_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.ref_key not in d:
            raise KeyError(f"ScaleByMaxd: ref_key {self.ref_key!r} is not in the data (keys {list(d)}).")
        scale = float(torch.as_tensor(d[self.ref_key]).abs().max())
        if not math.isfinite(scale) or scale <= 0:
            name = getattr(d[self.ref_key], "meta", {}).get("filename_or_obj", self.ref_key)
            raise ValueError(f"cannot scale {name!r} to [0, 1]: its zero-filled image has maximum {scale} (no signal).")
        for key in self.key_iterator(d):
            d[key] = d[key] / scale
            self.push_transform(d[key], extra_info={"scale": scale})
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            scale = self.pop_transform(d[key])[TraceKeys.EXTRA_INFO]["scale"]
            d[key] = d[key] * scale
        return d


LoadKspaceD = LoadKspaceDict = LoadKspaced
ZeroFilledKspaceD = ZeroFilledKspaceDict = ZeroFilledKspaced
ScaleByMaxD = ScaleByMaxDict = ScaleByMaxd
