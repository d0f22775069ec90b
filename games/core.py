"""The one game interface that search, training and export see.

A game is two things kept apart (as in AlphaZero.jl):

* **static facts**, a frozen :class:`Game` record: name, version, action count ``A``,
  observation shape ``(C, H, W)``, number of players, state length ``S`` and the symmetry tables;
* **a game in progress**, a plain ``int64[S]`` numpy array (bitboards welcome). A state is a value:
  search copies it into its tree, replay stores it, nothing holds a pointer into it.

The rules are ``@njit(cache=True)`` kernels with the fixed signatures in :data:`KERNEL_SIGNATURES`.
Every kernel takes ``params`` (``int64[P]``, the game's constants, e.g. board width) first, so one
compiled kernel serves every size of a game. Search kernels receive the rules kernels as typed
first-class functions (:attr:`Game.kernels`), so search code is compiled, and cached on disk, once
for all games, and never names a game.

Kernel contracts (``s`` a state, ``m`` a mask)::

    initial_state(params) -> int64[S]
    legal_mask(params, s, m)           # writes bool[A]: m[a] <=> action a is legal in s
    apply_action(params, s, a)         # in place: s becomes the state after the mover plays a
    is_terminal(params, s) -> bool     # is_terminal(s) or legal_mask(s).any()
    outcome(params, s, p) -> float64   # terminal s only: final score of player p in [-1, 1]
    to_play(params, s) -> int64        # non-terminal s only: player (team) to move, 0 <= p < N
    encode(params, s, out)             # writes float32[C, H, W], from to_play(s)'s point of view
    agent_to_move(params, s) -> int64  # the acting agent (== to_play except in multi-unit games)
    encode_agent(params, s, i, out)    # float32[C, H, W] from agent i's point of view, at any s
                                       # (terminal too); encode(s) == encode_agent(s, agent_to_move(s))
    transform_state(params, s, k) -> int64[S]   # image of s under symmetry k (k=0: identity)

Points of view: ``outcome`` is always for the player asked; ``encode`` is always from the player
to move. Players need not alternate (in the arena, turns cycle through living units of both
teams), so nothing may assume they do. Two-player games here are zero-sum:
``outcome(s, 0) == -outcome(s, 1)``, 0 for a draw.

Symmetries: symmetry ``k`` maps board cell ``obs_perms[k, j]`` to cell ``j`` and action
``action_perms[k, j]`` to action ``j``::

    encode(transform_state(s, k)).reshape(C, -1) == encode(s).reshape(C, -1)[:, obs_perms[k]]
    legal_mask(transform_state(s, k))            == legal_mask(s)[action_perms[k]]

so a policy target ``pi`` for ``s`` becomes ``pi[action_perms[k]]`` for the transformed state.

:func:`games.testing.check_game` verifies all of this for any game; ``docs/games.md`` walks
through adding one.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping

import numpy as np
from numba import njit, types

__all__ = [
    "Game",
    "GameError",
    "IllegalMoveError",
    "KERNEL_NAMES",
    "KERNEL_SIGNATURES",
    "KERNEL_TYPES",
    "check_kernel",
    "dihedral_perms",
    "function_pointers_available",
    "integer_option",
    "rules_from",
    "short_repr",
]


class GameError(ValueError):
    """Bad input about a game (unknown name or option, unparsable move): one clear line."""


class IllegalMoveError(GameError):
    """A move that is not legal in the position it was played in."""


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one-line error messages about input.

    Never raises: an int too long to print (Python refuses more than 4300 digits) is described
    by its size, and a value whose ``repr`` fails (nesting deeper than the recursion limit) by
    its type."""
    try:
        if isinstance(value, int) and value.bit_length() > 3 * limit:
            text = f"<integer of ~{(len(hex(abs(value))) - 2) * 1.2041:.0f} digits>"  # hex() has no digit limit
        else:
            text = repr(value)
    except Exception:  # RecursionError, or a repr that fails
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


_INTEGER_TEXT = re.compile(r"\s*[+-]?[0-9]{1,100}\s*")  # ASCII digits only: int() takes any script's


def integer_option(value: Any, what: str) -> int:
    """``value`` of the integer option ``what`` (e.g. ``"option 'width' of connect4"``) as an int.

    Takes an int, a float with an integral value (JSON may write 8 as ``8.0``), or the text of
    a decimal integer (``"8"`` from a command line). Anything else (``True``, ``7.9``, ``inf``,
    ``nan``, ``"8.0"``, ``""``, a list) is a :class:`GameError` naming ``what``; range checks
    are the game's."""
    if isinstance(value, (bool, np.bool_)):
        pass
    elif isinstance(value, (int, np.integer)):
        return int(value)
    elif isinstance(value, (float, np.floating)):
        if math.isfinite(value) and float(value).is_integer():
            return int(value)
    elif isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        return int(value)
    raise GameError(f"{what} takes an integer, got {short_repr(value)}")


_params = types.int64[::1]
_state = types.int64[::1]

#: The exact numba signature of each rules kernel. Search kernels declare their game arguments
#: with these types, so a game whose kernel does not fit fails at the first call, by name.
KERNEL_SIGNATURES: dict[str, Any] = {
    "legal_mask": types.void(_params, _state, types.boolean[::1]),
    "apply_action": types.void(_params, _state, types.int64),
    "is_terminal": types.boolean(_params, _state),
    "outcome": types.float64(_params, _state, types.int64),
    "to_play": types.int64(_params, _state),
    "encode": types.void(_params, _state, types.float32[:, :, ::1]),
}

#: The order in which :attr:`Game.kernels` hands the rules to search kernels.
KERNEL_NAMES: tuple[str, ...] = tuple(KERNEL_SIGNATURES)

#: First-class function types, for declaring search kernels: ``@njit((*KERNEL_TYPES, ...))``.
KERNEL_TYPES: tuple[Any, ...] = tuple(types.FunctionType(sig) for sig in KERNEL_SIGNATURES.values())


def _reason(error: BaseException) -> str:
    """The one informative line of an exception (numba's typing errors run to dozens of lines)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("Failed in nopython mode pipeline", "During:", "File ")):
            return f"{type(error).__name__}: {line if len(line) <= 200 else line[:197] + '...'}"
    return type(error).__name__


def _type_text(t: Any) -> str:
    if isinstance(t, types.Array):
        dims = [":"] * (t.ndim - 1) + ["::1" if t.layout == "C" else ":"]
        return f"{'bool' if t.dtype == types.boolean else t.dtype}[{', '.join(dims)}]"
    return "None" if t == types.none else "bool" if t == types.boolean else str(t)


def signature_text(name: str) -> str:
    """``outcome(int64[::1], int64[::1], int64) -> float64``: a kernel's signature for people."""
    sig = KERNEL_SIGNATURES[name]
    return f"{name}({', '.join(map(_type_text, sig.args))}) -> {_type_text(sig.return_type)}"


def check_kernel(game_name: str, name: str, kernel: Any) -> None:
    """Compile ``kernel`` (the rules kernel ``name`` of game ``game_name``) for its exact
    :data:`KERNEL_SIGNATURES` entry, return type included; a :class:`GameError` naming both if it
    does not fit. A kernel that returns another type than the signature's would be called
    through a function pointer of the wrong type, which numba does not check."""
    signature = KERNEL_SIGNATURES[name]
    from numba.core.registry import CPUDispatcher

    if not isinstance(kernel, CPUDispatcher):
        raise GameError(f"{game_name}: kernel {name} is not a numba @njit function (got {short_repr(kernel)})")
    try:
        kernel.compile(signature.args)
    except Exception as e:  # noqa: BLE001 - reported in one line, with the kernel's name
        raise GameError(f"{game_name}: kernel {name} does not compile as {signature_text(name)}: {_reason(e)}") from None
    returns = kernel.overloads[tuple(signature.args)].signature.return_type
    if returns != signature.return_type:
        raise GameError(
            f"{game_name}: kernel {name} returns {_type_text(returns)}, not {_type_text(signature.return_type)} "
            f"as in {signature_text(name)}"
        )


def _wrapper_address_helper() -> Callable | None:
    """numba's private ``_get_wrapper_address`` (the fast path of :attr:`Game.kernels`), or None
    when a numba release has moved it."""
    try:
        from numba.experimental.function_type import _get_wrapper_address
    except ImportError:
        return None
    return _get_wrapper_address


_FALLBACK_WARNED: list[bool] = []


def _warn_fallback(reason: str) -> None:
    """Say once per process that the rules go to search as dispatchers: slower, never silent."""
    if not _FALLBACK_WARNED:
        import numba

        _FALLBACK_WARNED.append(True)
        warnings.warn(
            f"numba {numba.__version__}: typed function pointers are unavailable ({reason}); the search "
            f"passes rules kernels as dispatchers, which is slower per call (docs/search.md: numba versions)",
            RuntimeWarning,
            stacklevel=3,
        )


@njit(cache=True)
def _probe_is_terminal(params, state):
    """A rules kernel of the ``is_terminal`` signature, for :func:`function_pointers_available`
    (here, so that this module needs no game)."""
    return state.shape[0] == 0


def function_pointers_available() -> bool:
    """Whether :attr:`Game.kernels` can hand search typed function pointers (the fast path)."""
    helper = _wrapper_address_helper()
    if helper is None:
        return False
    try:
        return helper(_probe_is_terminal, KERNEL_SIGNATURES["is_terminal"]) > 0
    except Exception:  # noqa: BLE001 - any failure means no fast path
        return False


class _Rule:
    """One compiled rules kernel as a first-class function argument: it carries its numba type
    (``_numba_type_``) and the address of its compiled C wrapper (``__wrapper_address__``), the
    two things numba asks of such an argument, resolved once instead of at every call."""

    __slots__ = ("kernel", "_numba_type_", "_address")

    def __init__(self, kernel: Any, function_type: Any, helper: Callable) -> None:
        self.kernel = kernel  # keeps the compiled code alive
        self._numba_type_ = function_type
        self._address = helper(kernel, function_type.signature)

    def __wrapper_address__(self) -> int:
        return self._address

    def __repr__(self) -> str:
        return f"_Rule({getattr(self.kernel, '__name__', self.kernel)}: {self._numba_type_})"


@dataclass(frozen=True, eq=False)
class Game:
    """Static facts and rules of one game with fixed options. Build it with ``games.make``.

    Array fields document their shapes: ``A`` actions, ``S`` state length, ``K`` symmetries,
    ``(C, H, W)`` observation planes.
    """

    name: str  # registry name, e.g. "connect4"
    version: int  # bumped whenever rules or encoding change; recorded in every export
    options: Mapping[str, Any]  # the options this instance was made with (defaults filled in)
    num_players: int  # players (teams) that receive an outcome; 2 for every game here
    num_actions: int  # A
    obs_shape: tuple[int, int, int]  # (C, H, W) of `encode`
    state_size: int  # S
    max_length: int  # upper bound on the number of actions in one game
    params: np.ndarray  # int64[P], passed first to every kernel
    obs_perms: np.ndarray  # int64[K, H*W], symmetry k sends cell obs_perms[k, j] to cell j
    action_perms: np.ndarray  # int64[K, A], symmetry k sends action action_perms[k, j] to j
    # njit rules kernels (see the module docstring for their contracts)
    initial_state_fn: Callable
    legal_mask_fn: Callable
    apply_action_fn: Callable
    is_terminal_fn: Callable
    outcome_fn: Callable
    to_play_fn: Callable
    encode_fn: Callable
    agent_to_move_fn: Callable
    encode_agent_fn: Callable
    transform_state_fn: Callable
    # plain Python, for people
    render_text_fn: Callable[[np.ndarray, np.ndarray], str]  # (params, state) -> board as text
    action_to_text_fn: Callable[[np.ndarray, int], str]  # (params, action) -> "4", "c3", "pass"
    text_to_action_fn: Callable[[np.ndarray, str], int]  # inverse; raises GameError
    agent_names: tuple[str, ...] = ()  # PettingZoo agents; default: one per player
    agent_players: tuple[int, ...] = ()  # agent i belongs to player (team) agent_players[i]
    description: str = ""
    # Drawing (games.render). Board games give cells_fn: (params, state) -> int8[H, W] with
    # 0 empty, 1 a piece of player 0, 2 a piece of player 1, -1 a wall; and a board_style of
    # "stones" (pieces on cells, Gomoku/Othello), "discs" (Connect Four) or "marks" (X and O).
    # A game with richer pictures (the arena) gives draw_fn: (game, state, surface) -> None,
    # drawing the (H, W) grid of obs_shape with games.render.board_rect, and action_cells_fn:
    # (params, state) -> int64[A, 2], the (row, col) each legal action acts on, (-1, -1) for
    # none (clicks and marks in `selfplay play`; derived from cells_fn for board games).
    cells_fn: Callable | None = None
    board_style: str = "stones"
    draw_fn: Callable | None = None
    action_cells_fn: Callable | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # anything game-specific
    # True when a kernel can raise (games.external calls back into Python). Such a game's
    # kernels are passed as numba dispatchers, which carry exceptions to the caller; the faster
    # function pointers of native games would print and swallow them.
    kernels_may_raise: bool = False

    def __post_init__(self) -> None:
        if not self.agent_names:
            object.__setattr__(self, "agent_names", tuple(f"player_{i}" for i in range(self.num_players)))
            object.__setattr__(self, "agent_players", tuple(range(self.num_players)))

    # ----------------------------------------------------------------- for search kernels
    @cached_property
    def kernels(self) -> tuple[Any, ...]:
        """The rules kernels in :data:`KERNEL_NAMES` order, for search kernels' arguments.

        Each is compiled for its exact signature once (a kernel that does not fit is a
        :class:`GameError` naming it) and handed over as a typed function pointer. A plain numba
        dispatcher would be typed and resolved again on every call, which a network search pays
        at every step. Should a numba release drop the private helper this needs, the
        dispatchers are used instead, with a ``RuntimeWarning``.
        """
        plain = (
            self.legal_mask_fn,
            self.apply_action_fn,
            self.is_terminal_fn,
            self.outcome_fn,
            self.to_play_fn,
            self.encode_fn,
        )
        for name, kernel in zip(KERNEL_NAMES, plain):
            check_kernel(self.name, name, kernel)  # GameError naming a kernel that does not fit
        if self.kernels_may_raise:
            return plain
        helper = _wrapper_address_helper()
        if helper is None:
            _warn_fallback("numba.experimental.function_type._get_wrapper_address is gone")
            return plain
        try:
            return tuple(_Rule(kernel, t, helper) for kernel, t in zip(plain, KERNEL_TYPES))
        except Exception as e:  # noqa: BLE001 - numba internals moved: the plain dispatchers still work
            _warn_fallback(_reason(e))
            return plain

    @property
    def num_symmetries(self) -> int:
        return int(self.action_perms.shape[0])

    @property
    def version_tag(self) -> str:
        """``connect4_v1``: the name to record in checkpoints and exports."""
        return f"{self.name}_v{self.version}"

    # ----------------------------------------------------------------- Python conveniences
    def initial_state(self) -> np.ndarray:
        """A fresh ``int64[S]`` state."""
        return self.initial_state_fn(self.params)

    def legal_mask(self, state: np.ndarray) -> np.ndarray:
        """``bool[A]``: which actions are legal (all False at a terminal state)."""
        mask = np.zeros(self.num_actions, dtype=np.bool_)
        self.legal_mask_fn(self.params, state, mask)
        return mask

    def legal_actions(self, state: np.ndarray) -> np.ndarray:
        """``int64[L]``: the legal actions, ascending."""
        return np.flatnonzero(self.legal_mask(state)).astype(np.int64)

    def is_terminal(self, state: np.ndarray) -> bool:
        return bool(self.is_terminal_fn(self.params, state))

    def to_play(self, state: np.ndarray) -> int:
        """The player (team) to move in a non-terminal state."""
        return int(self.to_play_fn(self.params, state))

    def agent_to_move(self, state: np.ndarray) -> int:
        """Index into :attr:`agent_names` of the agent acting now (a unit, in the arena)."""
        return int(self.agent_to_move_fn(self.params, state))

    def returns(self, state: np.ndarray) -> np.ndarray:
        """``float64[N]``: final score of every player at a terminal state, each in [-1, 1]."""
        if not self.is_terminal(state):
            raise GameError(f"{self.name}: returns() asked of a position that is not over")
        return np.array([self.outcome_fn(self.params, state, p) for p in range(self.num_players)])

    def encode(self, state: np.ndarray) -> np.ndarray:
        """``float32[C, H, W]`` planes from the point of view of the player to move."""
        out = np.zeros(self.obs_shape, dtype=np.float32)
        self.encode_fn(self.params, state, out)
        return out

    def encode_agent(self, state: np.ndarray, agent: int) -> np.ndarray:
        """``float32[C, H, W]`` planes from the point of view of agent ``agent`` (any state)."""
        out = np.zeros(self.obs_shape, dtype=np.float32)
        self.encode_agent_fn(self.params, state, np.int64(agent), out)
        return out

    def next_state(self, state: np.ndarray, action: int) -> np.ndarray:
        """A new state after ``action``; the argument is left as it was. Checks legality."""
        action = int(action)
        if self.is_terminal(state):
            raise IllegalMoveError(f"{self.name}: the game is over; no move can be played")
        if not 0 <= action < self.num_actions or not self.legal_mask(state)[action]:
            raise IllegalMoveError(
                f"{self.name}: illegal move {self.action_to_text(action)!r} (action {action}); "
                f"legal: {', '.join(self.action_to_text(a) for a in self.legal_actions(state))}"
            )
        new = state.copy()
        self.apply_action_fn(self.params, new, np.int64(action))
        return new

    def play(self, actions) -> np.ndarray:
        """The state reached from the initial state by a sequence of actions (checked)."""
        state = self.initial_state()
        for a in actions:
            state = self.next_state(state, a)
        return state

    def transform_state(self, state: np.ndarray, k: int) -> np.ndarray:
        return self.transform_state_fn(self.params, state, np.int64(k))

    def transform_obs(self, obs: np.ndarray, k: int) -> np.ndarray:
        """``float32[..., C, H, W]`` planes seen through symmetry ``k``."""
        flat = obs.reshape(*obs.shape[:-2], -1)
        return flat[..., self.obs_perms[k]].reshape(obs.shape)

    def transform_policy(self, policy: np.ndarray, k: int) -> np.ndarray:
        """``[..., A]`` action values seen through symmetry ``k``."""
        return policy[..., self.action_perms[k]]

    def render_text(self, state: np.ndarray) -> str:
        return self.render_text_fn(self.params, state)

    def action_to_text(self, action: int) -> str:
        return self.action_to_text_fn(self.params, int(action))

    def parse_action(self, text: str, state: np.ndarray | None = None) -> int:
        """Human notation to an action index. With ``state``, also checks the move is legal."""
        action = int(self.text_to_action_fn(self.params, text.strip()))
        if state is not None:
            self.next_state(state, action)  # raises IllegalMoveError with the legal moves
        return action

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"Game({self.version_tag}{', ' if opts else ''}{opts})"


_RULES = (
    "initial_state",
    "legal_mask",
    "apply_action",
    "is_terminal",
    "outcome",
    "to_play",
    "encode",
    "agent_to_move",
    "encode_agent",
    "transform_state",
)


def rules_from(namespace: Mapping[str, Any]) -> dict[str, Callable]:
    """The ``*_fn`` fields of :class:`Game` from a game module's kernels, found by their
    conventional names: ``Game(..., **rules_from(globals()))``. A game whose agents are its
    players may omit ``agent_to_move``; it is then ``to_play``."""
    missing = [n for n in _RULES if n not in namespace and n != "agent_to_move"]
    if missing:
        raise TypeError(f"a game module must define the kernels {', '.join(missing)}")
    return {f"{n}_fn": namespace.get(n, namespace["to_play"]) for n in _RULES}


def dihedral_perms(height: int, width: int) -> np.ndarray:
    """``int64[K, H*W]`` cell permutations of the board's symmetry group, identity first.

    K is 8 for a square board (rotations and reflections) and 4 otherwise (identity, left-right
    and up-down mirrors, half turn). Row-major cells: cell ``r * W + c``. Row ``k`` lists, for
    each target cell ``j``, the source cell that symmetry ``k`` moves onto ``j``.
    """
    rows, cols = np.divmod(np.arange(height * width), width)
    h, w = height - 1, width - 1
    maps = [
        (rows, cols),
        (rows, w - cols),
        (h - rows, cols),
        (h - rows, w - cols),
    ]
    if height == width:
        maps += [(cols, rows), (cols, w - rows), (h - cols, rows), (h - cols, w - rows)]
    return np.stack([r * width + c for r, c in maps]).astype(np.int64)
