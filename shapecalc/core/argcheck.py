"""Checks for arguments of the library API: exact integers and True/False flags.

A public function that takes a size calls these first, so a wrong type (``None``, a string, a
float, NaN, a bool) or a number beyond torch's 64-bit sizes becomes an
:class:`~shapecalc.core.errors.ArgumentError` naming the parameter instead of a ``TypeError`` deep
inside, a NaN result, or a crash when the number is printed. numpy integers become ``int``.
"""

from __future__ import annotations

from shapecalc.core.errors import ArgumentError
from shapecalc.core.safetext import preview

#: Torch stores sizes as 64-bit integers; a larger argument is refused (its arithmetic would be
#: exact, but its text may pass Python's 4,300-digit limit and its float form overflow).
LARGEST = 2**63 - 1


def exact_int(param: str, value: object, meaning: str) -> int:
    """``value`` as a plain int, or :class:`ArgumentError` naming ``param`` (``meaning`` says
    what it is: "the kernel size") and what it got."""
    if type(value) is not int:
        if is_bool(value):
            raise ArgumentError(param, f"expected an integer ({meaning}), got the bool {preview(value)}")
        if isinstance(value, float):
            raise ArgumentError(param, f"expected an integer ({meaning}), got the float {preview(value)}")
        index = getattr(type(value), "__index__", None)  # numpy integers and other exact ints
        if index is None:
            shown = preview(value, 40)
            raise ArgumentError(param, f"expected an integer ({meaning}), "
                                       f"got {shown} ({type(value).__name__})")
        value = index(value)
    if not -LARGEST <= value <= LARGEST:  # type: ignore[operator]
        digits = int(value.bit_length() * 0.30103) + 1  # type: ignore[union-attr]  (no int→text)
        raise ArgumentError(param, f"{meaning} has about {digits} digits; at most "
                                   f"{LARGEST:,} (torch's 64-bit sizes)")
    return value  # type: ignore[return-value]


def is_bool(value: object) -> bool:
    """A Python or numpy bool (``numpy.bool_``, ``numpy.bool`` in numpy 2), never a size."""
    return isinstance(value, bool) or (type(value).__module__ == "numpy"
                                       and type(value).__name__ in ("bool_", "bool"))


def flag(param: str, value: object) -> bool:
    """``value`` as True/False (numpy bools too); anything else, truthy or not, is refused."""
    if is_bool(value):
        return bool(value)
    raise ArgumentError(param, f"expected True or False, got {preview(value)}")


__all__ = ["LARGEST", "exact_int", "flag", "is_bool"]
