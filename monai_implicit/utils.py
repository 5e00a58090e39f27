"""Argument validation shared by the layers, kernel networks, transforms and losses of the package.

One place decides what a valid real-valued hyper-parameter is.  Ad-hoc checks such as ``if sigma <= 0: raise``
let NaN through (every comparison with NaN is False), and a NaN spacing, slope or noise level then turns every
output into NaN without an error; ``float("inf")`` passes ``> 0`` checks the same way.  These helpers refuse both,
name the argument, and say what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any, Optional, Union

from monai.utils import ensure_tuple_rep, look_up_option

__all__ = ["check_number", "check_numbers", "check_probability", "check_positive_int", "check_option"]


def _expected(low: Optional[float], high: Optional[float], low_open: bool, high_open: bool, allow_inf: bool) -> str:
    kind = "number" if allow_inf else "finite number"
    if low == 0 and high is None:
        return f"a positive {kind}" if low_open else f"a non-negative {kind}"
    if low is None and high is None:
        return f"a {kind}"
    if high is None:
        return f"a {kind} {'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"a {kind} {'<' if high_open else '<='} {high:g}"
    return f"a {kind} in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_number(
    value: Any,
    name: str,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a float after checking that it is a real number, not NaN, finite, and in range.

    Args:
        value: the argument (a Python or numpy real number; ``bool`` is refused).
        name: the argument's name, used in the error message.
        low, high: bounds of the admissible interval (None: unbounded on that side).
        low_open, high_open: exclude the bound itself (``low=0, low_open=True`` means "> 0").
        allow_inf: admit ``+-inf`` (when the interval allows it); NaN is never admitted.

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: ``value`` is NaN, infinite (unless ``allow_inf``) or outside the interval.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}.")
    v = float(value)
    expected = _expected(low, high, low_open, high_open, allow_inf)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be {expected}, got {value!r}.")
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if too_low or too_high:
        raise ValueError(f"{name} must be {expected}, got {value!r}.")
    return v


def check_numbers(
    values: Union[Any, Sequence[Any]],
    name: str,
    dim: int,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> tuple[float, ...]:
    """One number or ``dim`` numbers (MONAI's ``ensure_tuple_rep``), each checked by :func:`check_number`.

    A sequence of length 1 is repeated like a single number (the convention of the package's ``spacing`` and
    ``kernel_size`` arguments).

    Raises:
        ValueError: a sequence whose length is neither 1 nor ``dim``, or an invalid entry (see :func:`check_number`).
        TypeError: an entry that is not a real number.
    """
    if isinstance(values, Sequence) and not isinstance(values, str):
        if len(values) not in (1, dim):
            raise ValueError(f"{name} must have 1 or {dim} entries, got {len(values)}: {tuple(values)}.")
        values = values[0] if len(values) == 1 else tuple(values)
    entries = ensure_tuple_rep(values, dim)
    where = (lambda i: f"{name}[{i}]") if dim > 1 else (lambda i: name)
    return tuple(
        check_number(v, where(i), low, high, low_open, high_open, allow_inf) for i, v in enumerate(entries)
    )


def check_probability(prob: Any, name: str = "prob") -> float:
    """``prob`` as a float in [0, 1].

    MONAI's ``RandomizableTransform`` clips ``prob`` into [0, 1] and keeps NaN, with which ``R.rand() < prob`` is
    always False: a transform built with ``prob=nan`` would silently never run.  Call this before it.
    """
    return check_number(prob, name, 0.0, 1.0)


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1; ``bool`` is refused (``True`` is an ``int`` to Python, never a channel count).

    Raises:
        ValueError: ``value`` is not an integer >= 1 (the message names the argument and the value received).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_option(value: Any, supported: Union[Sequence[Any], Mapping[Any, Any]], name: str) -> Any:
    """MONAI's ``look_up_option`` with an error that names the argument.

    Returns what ``look_up_option`` returns: ``value`` itself for a sequence of options, ``supported[value]`` for a
    mapping (e.g. a family name -> class table).

    Raises:
        ValueError: ``"{name} must be one of (...), got {value!r}."`` (MONAI's own message does not say which
            argument was wrong).
    """
    try:
        return look_up_option(value, supported)
    except ValueError:
        raise ValueError(f"{name} must be one of {tuple(supported)}, got {value!r}.") from None
