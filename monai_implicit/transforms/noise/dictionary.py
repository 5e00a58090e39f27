"""Dictionary versions of the image-noise transforms ("Hyper-Convolutions via Implicit Kernels for Medical Imaging",
Sec. 4.4, Fig. 6).

Example robustness-evaluation pre-processing (fixed noise level, reproducible)::

    Compose([LoadImaged("image"), ..., SaltPepperNoised("image", amount=0.05).set_random_state(0)])

Each key gets its own noise draw; Rand* versions make one ``prob`` decision for all keys, fixed-level versions none.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms.transform import MapTransform, RandomizableTransform

from monai_implicit.transforms.utils import SharedRandomState
from monai_implicit.utils import check_probability

from .array import NoiseTransform, RandSaltPepperNoise, RandSpeckleNoise, SaltPepperNoise, SpeckleNoise

__all__ = [
    "SaltPepperNoised",
    "SaltPepperNoiseD",
    "SaltPepperNoiseDict",
    "RandSaltPepperNoised",
    "RandSaltPepperNoiseD",
    "RandSaltPepperNoiseDict",
    "SpeckleNoised",
    "SpeckleNoiseD",
    "SpeckleNoiseDict",
    "RandSpeckleNoised",
    "RandSpeckleNoiseD",
    "RandSpeckleNoiseDict",
]


class NoiseMapTransform(SharedRandomState, RandomizableTransform, MapTransform):
    """Dictionary twin of a :class:`~.array.NoiseTransform` (``self.noise``, a ``noise_class`` driven by this
    transform's random state): one ``prob`` decision for all keys, then a noise draw per key (:meth:`_noise_key`).

    A fixed-level twin sets ``fixed = True`` and a fixed-level ``noise_class``: no ``prob`` decision is drawn.
    """

    inner = "noise"
    noise_class: type[NoiseTransform]
    noise: NoiseTransform
    fixed: bool = False

    def __init__(self, keys: KeysCollection, prob: float, allow_missing_keys: bool, *noise_args: Any) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, check_probability(prob))
        # the inner Rand* transform always applies: this transform makes the one prob decision for all keys
        self.noise = self.noise_class(*noise_args) if self.fixed else self.noise_class(1.0, *noise_args)

    def randomize(self, data: Any = None) -> None:
        if self.fixed:
            self._do_transform = True
        else:
            super().randomize(None)

    def _prepare(self, d: dict) -> None:
        """Hook run once per call before the keys are noised (e.g. reading a shared mask)."""

    def _noise_key(self, d: dict, key: Hashable) -> None:
        d[key] = self.noise(d[key], randomize=True)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        self._prepare(d)
        for key in self.key_iterator(d):
            self._noise_key(d, key)
        return d


class RandSaltPepperNoised(NoiseMapTransform):
    """Dictionary version of :class:`~.array.RandSaltPepperNoise` (same arguments after ``keys``)."""

    backend = RandSaltPepperNoise.backend
    noise_class = RandSaltPepperNoise

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.1,
        amount: float | Sequence[float] = (0.0, 0.05),
        salt_vs_pepper: float | Sequence[float] = 0.5,
        salt: float | None = None,
        pepper: float | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, prob, allow_missing_keys, amount, salt_vs_pepper, salt, pepper)


class SaltPepperNoised(RandSaltPepperNoised):
    """Dictionary version of :class:`~.array.SaltPepperNoise` (same arguments after ``keys``)."""

    backend = SaltPepperNoise.backend
    noise_class = SaltPepperNoise
    fixed = True

    def __init__(
        self,
        keys: KeysCollection,
        amount: float = 0.05,
        salt_vs_pepper: float = 0.5,
        salt: float | None = None,
        pepper: float | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, 1.0, amount, salt_vs_pepper, salt, pepper, allow_missing_keys)


class RandSpeckleNoised(NoiseMapTransform):
    """Dictionary version of :class:`~.array.RandSpeckleNoise` (same arguments after ``keys``)."""

    backend = RandSpeckleNoise.backend
    noise_class = RandSpeckleNoise

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.1,
        std: float | Sequence[float] = (0.0, 0.1),
        mean: float = 0.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, prob, allow_missing_keys, std, mean)


class SpeckleNoised(RandSpeckleNoised):
    """Dictionary version of :class:`~.array.SpeckleNoise` (same arguments after ``keys``)."""

    backend = SpeckleNoise.backend
    noise_class = SpeckleNoise
    fixed = True

    def __init__(
        self, keys: KeysCollection, std: float = 0.1, mean: float = 0.0, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, 1.0, std, mean, allow_missing_keys)


SaltPepperNoiseD = SaltPepperNoiseDict = SaltPepperNoised
RandSaltPepperNoiseD = RandSaltPepperNoiseDict = RandSaltPepperNoised
SpeckleNoiseD = SpeckleNoiseDict = SpeckleNoised
RandSpeckleNoiseD = RandSpeckleNoiseDict = RandSpeckleNoised
