"""A game's rules kernels as first-class function arguments that cost little to pass.

Passing ``*game.kernels`` (numba dispatchers) to a kernel declared with ``KERNEL_TYPES`` makes
numba type and resolve each dispatcher on every call: about 0.6 ms for the six rules here, paid
once per search step by a network search. :func:`rules_of` wraps each kernel once per game in an
object that carries its numba type (``_numba_type_``) and the address of its compiled C wrapper
(``__wrapper_address__``), the two things numba asks of a first-class function argument; the
same call then costs ~0.05 ms. Should numba's internals change, the plain dispatchers are used.
"""

from __future__ import annotations

import weakref
from typing import Any

from games.core import KERNEL_TYPES, Game

__all__ = ["rules_of"]

_CACHE: "weakref.WeakKeyDictionary[Game, tuple[Any, ...]]" = weakref.WeakKeyDictionary()


class _Rule:
    """One compiled rules kernel, typed and resolved once."""

    __slots__ = ("kernel", "_numba_type_", "_address")

    def __init__(self, kernel: Any, function_type: Any) -> None:
        from numba.experimental.function_type import _get_wrapper_address

        self.kernel = kernel  # keeps the compiled code alive
        self._numba_type_ = function_type
        self._address = _get_wrapper_address(kernel, function_type.signature)

    def __wrapper_address__(self) -> int:
        return self._address

    def __repr__(self) -> str:
        return f"_Rule({getattr(self.kernel, '__name__', self.kernel)}: {self._numba_type_})"


def rules_of(game: Game) -> tuple[Any, ...]:
    """``game.kernels`` in a form that is cheap to pass to search kernels (cached per game)."""
    rules = _CACHE.get(game)
    if rules is None:
        try:
            rules = tuple(_Rule(kernel, t) for kernel, t in zip(game.kernels, KERNEL_TYPES))
        except Exception:  # noqa: BLE001 - numba internals moved: fall back to the slow, sure path
            rules = tuple(game.kernels)
        _CACHE[game] = rules
    return rules
