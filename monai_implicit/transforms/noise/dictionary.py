"""Dictionary versions of the image-noise transforms (Hyper-Convolution paper, seed 000, §4.4, Fig. 6).

Example robustness-evaluation pre-processing (fixed noise level, reproducible)::

    Compose([LoadImaged("image"), ..., SaltPepperNoised("image", amount=0.05).set_random_state(0)])

Each key gets its own noise draw; Rand* versions make one ``prob`` decision for all keys.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms.transform import MapTransform, Randomizable, RandomizableTransform

from monai_implicit.utils import check_probability

from .array import RandSaltPepperNoise, RandSpeckleNoise, SaltPepperNoise, SpeckleNoise

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


class _FixedNoised(Randomizable, MapTransform):
    """A fixed-level noise transform applied to every key, with its own random state."""

    noise: SaltPepperNoise | SpeckleNoise

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.noise.set_random_state(state=self.R)
        return self

    def randomize(self, data: NdarrayOrTensor) -> None:
        self.noise.randomize(data)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.noise(d[key], randomize=True)
        return d


class _RandNoised(RandomizableTransform, MapTransform):
    """A Rand* noise transform: one ``prob`` draw for all keys, then a noise draw per key."""

    noise: RandSaltPepperNoise | RandSpeckleNoise

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.noise.set_random_state(state=self.R)
        return self

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            d[key] = self.noise(d[key], randomize=True)
        return d


class SaltPepperNoised(_FixedNoised):
    """Dictionary version of :class:`~.array.SaltPepperNoise` (same arguments after ``keys``)."""

    backend = SaltPepperNoise.backend

    def __init__(
        self,
        keys: KeysCollection,
        amount: float = 0.05,
        salt_vs_pepper: float = 0.5,
        salt: float | None = None,
        pepper: float | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.noise = SaltPepperNoise(amount, salt_vs_pepper, salt, pepper)


class RandSaltPepperNoised(_RandNoised):
    """Dictionary version of :class:`~.array.RandSaltPepperNoise` (same arguments after ``keys``)."""

    backend = RandSaltPepperNoise.backend

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
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, check_probability(prob))
        self.noise = RandSaltPepperNoise(1.0, amount, salt_vs_pepper, salt, pepper)


class SpeckleNoised(_FixedNoised):
    """Dictionary version of :class:`~.array.SpeckleNoise` (same arguments after ``keys``)."""

    backend = SpeckleNoise.backend

    def __init__(
        self, keys: KeysCollection, std: float = 0.1, mean: float = 0.0, allow_missing_keys: bool = False
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.noise = SpeckleNoise(std, mean)


class RandSpeckleNoised(_RandNoised):
    """Dictionary version of :class:`~.array.RandSpeckleNoise` (same arguments after ``keys``)."""

    backend = RandSpeckleNoise.backend

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.1,
        std: float | Sequence[float] = (0.0, 0.1),
        mean: float = 0.0,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, check_probability(prob))
        self.noise = RandSpeckleNoise(1.0, std, mean)


SaltPepperNoiseD = SaltPepperNoiseDict = SaltPepperNoised
RandSaltPepperNoiseD = RandSaltPepperNoiseDict = RandSaltPepperNoised
SpeckleNoiseD = SpeckleNoiseDict = SpeckleNoised
RandSpeckleNoiseD = RandSpeckleNoiseDict = RandSpeckleNoised
