"""Argument validation shared by the layers, kernel networks, transforms and losses of the package.

One place decides what a valid real-valued hyper-parameter is.  Ad-hoc checks such as ``if sigma <= 0: raise``
let NaN through (every comparison with NaN is False), and a NaN spacing, slope or noise level then turns every
output into NaN without an error; ``float("inf")`` passes ``> 0`` checks the same way.  These helpers refuse both,
name the argument, and say what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any, Optional, Union

from monai.utils import ensure_tuple_rep, look_up_option

__all__ = [
    "is_integer",
    "is_real",
    "check_number",
    "check_numbers",
    "check_probability",
    "check_int",
    "check_ints",
    "check_positive_int",
    "check_option",
]


def is_integer(value: Any) -> bool:
    """Whether ``value`` is a Python or numpy integer and not a ``bool`` (``True`` is an ``int`` to Python)."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """Whether ``value`` is a Python or numpy real number (int or float) and not a ``bool``; NaN and inf included."""
    return isinstance(value, Real) and not isinstance(value, bool)


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
    if not is_real(value):
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
    where = (lambda i: f"{name}[{i}]") if dim > 1 else (lambda i: name)
    return tuple(
        check_number(v, where(i), low, high, low_open, high_open, allow_inf)
        for i, v in enumerate(_entries(values, name, dim))
    )


def _entries(values: Union[Any, Sequence[Any]], name: str, dim: int) -> tuple[Any, ...]:
    """One value or a sequence of 1 or ``dim`` values as ``dim`` values (MONAI's ``ensure_tuple_rep``)."""
    if isinstance(values, Sequence) and not isinstance(values, str):
        if len(values) not in (1, dim):
            raise ValueError(f"{name} must have 1 or {dim} entries, got {len(values)}: {tuple(values)}.")
        values = values[0] if len(values) == 1 else tuple(values)
    return ensure_tuple_rep(values, dim)


def check_probability(prob: Any, name: str = "prob") -> float:
    """``prob`` as a float in [0, 1].

    MONAI's ``RandomizableTransform`` clips ``prob`` into [0, 1] and keeps NaN, with which ``R.rand() < prob`` is
    always False: a transform built with ``prob=nan`` would silently never run.  Call this before it.
    """
    return check_number(prob, name, 0.0, 1.0)


def check_int(
    value: Any, name: str, low: Optional[int] = 1, high: Optional[int] = None, allow_none: bool = False
) -> Optional[int]:
    """``value`` as an int in ``[low, high]`` (None: unbounded on that side).

    Python and numpy integers are accepted; ``bool`` is refused (``True`` is an ``int`` to Python, never a count or
    a size), and so are floats, even integral ones.

    Args:
        value: the argument.
        name: the argument's name, used in the error message.
        low, high: inclusive bounds (the default ``low=1`` asks for a positive integer).
        allow_none: admit (and return) None, e.g. for "no limit" or "the default".

    Raises:
        ValueError: ``value`` is not such an integer (the message names the argument and the value received).
    """
    if value is None and allow_none:
        return None
    if not is_integer(value) or (low is not None and value < low) or (high is not None and value > high):
        if high is not None:
            kind = f"an integer in [{low}, {high}]" if low is not None else f"an integer <= {high}"
        elif low is None:
            kind = "an integer"
        else:
            kind = {1: "a positive integer", 0: "a non-negative integer"}.get(low, f"an integer >= {low}")
        raise ValueError(f"{name} must be {kind}{' or None' if allow_none else ''}, got {value!r}.")
    return int(value)


def check_ints(
    values: Union[Any, Sequence[Any]], name: str, dim: Optional[int] = None, low: Optional[int] = 1,
    high: Optional[int] = None,
) -> tuple[int, ...]:
    """Integers, each checked by :func:`check_int` (the message names the entry, e.g. ``hidden[1]``).

    Args:
        values: with ``dim``: one integer or a sequence of 1 or ``dim`` integers, returned as ``dim`` integers (as
            :func:`check_numbers`); without: a sequence of any length, empty included (e.g. the hidden widths of
            an MLP).
        name, low, high: as :func:`check_int`.

    Raises:
        TypeError: without ``dim``, ``values`` is not a sequence.
        ValueError: a sequence of the wrong length, or an entry that is not such an integer.
    """
    if dim is None:
        if not isinstance(values, Sequence) or isinstance(values, str):
            raise TypeError(f"{name} must be a sequence of integers, got {values!r}.")
        entries = tuple(values)
    else:
        entries = _entries(values, name, dim)
    if len(entries) == 1:
        return (int(check_int(entries[0], name, low, high)),)
    return tuple(int(check_int(v, f"{name}[{i}]", low, high)) for i, v in enumerate(entries))


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1 (:func:`check_int` with its defaults).

    Raises:
        ValueError: ``value`` is not an integer >= 1 (the message names the argument and the value received).
    """
    return check_int(value, name)


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
