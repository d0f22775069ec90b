"""Search and train on an external PettingZoo AEC environment: ``from_aec(env_fn, max_length=...)``.

The adapter is a real :class:`~games.core.Game`: its kernels are ``@njit(cache=True)`` functions
with exactly the :data:`~games.core.KERNEL_SIGNATURES`, so every search kernel, ``random_playouts``
and ``perft`` run on it unchanged. The rules kernels call back into Python (``numba.objmode``),
where the env is stepped, so the adapter is orders of magnitude slower than a native game;
``docs/external.md`` gives measured costs and walks through porting a game to numba.

State ``int64[S]`` with ``S = 1 + max_length``: ``[L, a_1, ..., a_L, 0, ...]``, the length and the
actions played since ``env.reset(seed=seed)``. A state is the action history and nothing else, so
it is a value like any native state: valid in every adapter of the same env, max_length and seed,
in any process.

Params ``int64[4 + K*A]``: ``[handle, max_length, A, K, inv_perms (K*A)]``. ``handle`` names this
process's :class:`AecAdapter` (the Python side: envs and a cache); ``inv_perms[k*A + a]`` is the
image of action ``a`` under symmetry ``k``, so ``transform_state`` maps a history in numba.

The envs answer the kernels' questions through a bounded cache of positions; see
:mod:`games.aec_adapter`.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import threading
import weakref
from typing import Any, Callable

import numpy as np
from numba import njit, objmode

from .aec_adapter import LENGTH, AecAdapter, AecStats
from .core import Game, GameError, IllegalMoveError, _reason, integer_option, rules_from, short_repr

__all__ = ["ADAPTER_OPTIONS", "from_aec", "from_spec", "stats"]

# params layout (the state layout, LENGTH, is games.aec_adapter's)
HANDLE, MAX_LENGTH, NUM_ACTIONS, NUM_SYMMETRIES, INV_PERMS = 0, 1, 2, 3, 4

# handle -> adapter, for the kernels' Python side. Weak: an adapter lives as long as a Game (or
# a copy made with dataclasses.replace) holds it in ``extra["aec_adapter"]``.
_ADAPTERS: weakref.WeakValueDictionary[int, AecAdapter] = weakref.WeakValueDictionary()
_NEXT_HANDLE = [1]
_REGISTRY_LOCK = threading.Lock()


# ----------------------------------------------------------------------------- the kernels
# Pure numba where the history alone answers (initial_state, apply_action, transform_state);
# otherwise one objmode call into a module-level function, found by name so the compiled kernel
# caches on disk like any other. Exceptions raised there (GameError) reach the caller.


@njit(cache=True)
def initial_state(params):
    return np.zeros(1 + params[MAX_LENGTH], dtype=np.int64)


@njit(cache=True)
def apply_action(params, state, action):
    length = state[LENGTH]
    if length >= params[MAX_LENGTH]:
        raise IllegalMoveError("external game: an action after max_length actions (the game is over)")
    state[1 + length] = action
    state[LENGTH] = length + 1


@njit(cache=True)
def transform_state(params, state, k):
    out = state.copy()
    base = INV_PERMS + k * params[NUM_ACTIONS]
    for i in range(1, 1 + state[LENGTH]):
        out[i] = params[base + state[i]]
    return out


@njit(cache=True)
def is_terminal(params, state):
    with objmode(result="boolean"):
        result = _host_is_terminal(params, state)
    return result


@njit(cache=True)
def legal_mask(params, state, mask):
    with objmode():
        _host_legal_mask(params, state, mask)


@njit(cache=True)
def outcome(params, state, player):
    with objmode(result="float64"):
        result = _host_outcome(params, state, player)
    return result


@njit(cache=True)
def to_play(params, state):
    with objmode(result="int64"):
        result = _host_to_play(params, state)
    return result


@njit(cache=True)
def encode_agent(params, state, agent, out):
    with objmode():
        _host_encode(params, state, agent, out)


@njit(cache=True)
def encode(params, state, out):
    with objmode():
        _host_encode(params, state, -1, out)


# ----------------------------------------------------------------------------- Python side


def _adapter(params: np.ndarray) -> AecAdapter:
    handle = int(params[HANDLE])
    try:
        return _ADAPTERS[handle]
    except KeyError:
        raise GameError(
            f"no external game #{handle} in this process: its Game was freed or made in another "
            "process; call games.external.from_aec here (states carry over, params do not)"
        ) from None


def _host_is_terminal(params, state) -> bool:
    return _adapter(params).record(state).terminal


def _host_legal_mask(params, state, mask) -> None:
    mask[:] = _adapter(params).record(state).mask


def _host_outcome(params, state, player) -> float:
    adapter = _adapter(params)
    return adapter.record(state).returns[adapter.check_agent(player)]


def _host_to_play(params, state) -> int:
    return _adapter(params).record(state).player


def _host_encode(params, state, agent, out) -> None:
    out[...] = _adapter(params).observation(state, int(agent))


def _render_text(params, state) -> str:
    return _adapter(params).render_text(state)


# ----------------------------------------------------------------------------- building a Game


def _split_version(name: str) -> tuple[str, int]:
    """``"connect_four_v3"`` -> ``("connect_four", 3)``; a name without ``_vN`` is version 1."""
    match = re.fullmatch(r"(.+)_v(\d+)", name)
    return (match.group(1), int(match.group(2))) if match else (name, 1)


def _check_perms(env_name: str, obs_perms, action_perms, cells: int, num_actions: int):
    if obs_perms is None and action_perms is None:
        return np.arange(cells, dtype=np.int64)[None], np.arange(num_actions, dtype=np.int64)[None]
    if obs_perms is None or action_perms is None:
        raise GameError(f"{env_name}: give obs_perms and action_perms together, or neither")
    obs_perms = np.asarray(obs_perms, dtype=np.int64)
    action_perms = np.asarray(action_perms, dtype=np.int64)
    k = obs_perms.shape[0] if obs_perms.ndim == 2 else -1
    if obs_perms.shape != (k, cells) or action_perms.shape != (k, num_actions):
        raise GameError(
            f"{env_name}: symmetry tables must be int64[K, H*W={cells}] and int64[K, A={num_actions}], "
            f"got {obs_perms.shape} and {action_perms.shape}"
        )
    for name, perms in (("obs_perms", obs_perms), ("action_perms", action_perms)):
        width = perms.shape[1]
        if not (perms[0] == np.arange(width)).all():
            raise GameError(f"{env_name}: {name}[0] must be the identity")
        if not (np.sort(perms, axis=1) == np.arange(width)).all():
            raise GameError(f"{env_name}: every row of {name} must be a permutation")
    return obs_perms, action_perms


def from_aec(
    env_fn: Callable[[], Any],
    *,
    max_length: int,
    name: str | None = None,
    seed: int = 0,
    obs_perms: np.ndarray | None = None,
    action_perms: np.ndarray | None = None,
    num_cursors: int = 4,
    cache_size: int | None = None,
) -> Game:
    """A :class:`Game` whose rules are the PettingZoo AEC env that ``env_fn()`` builds.

    Args:
        env_fn: builds a fresh env, e.g. ``connect_four_v3.env``. It is called once per cursor.
            Agents need ``Discrete(A)`` actions and action masks (``observe(agent)["action_mask"]``
            or ``infos[agent]["action_mask"]``); observations are numeric arrays, ``(H, W, C)``
            (made ``(C, H, W)``), ``(H, W)``, ``(n,)`` (made ``(n, 1, 1)``) or scalars.
        max_length: the most actions a game may take; the state holds that many. A game still
            running after ``max_length`` actions is truncated there: it ends, each player scoring
            its rewards so far.
        name: registry-style name; default the env's ``metadata["name"]``. A ``_vN`` suffix
            becomes the version: ``connect_four_v3`` is ``Game(name="connect_four", version=3)``.
        seed: every position is ``env.reset(seed=seed)`` plus its actions, so chance in the env
            (if any) is fixed by the seed: the search sees it as part of the rules.
        obs_perms, action_perms: ``int64[K, H*W]`` and ``int64[K, A]`` symmetry tables (identity
            first), as in :mod:`games.core`; default the identity only. ``check_game`` verifies
            them against the env's observations and masks.
        num_cursors: live envs kept stepped to recent positions (more envs, fewer replays).
        cache_size: positions whose answers are kept (oldest dropped first); default as many as
            fit in about 256 MB, at most 65,536.

    Agent ``i`` of ``env.possible_agents`` is player ``i``. ``outcome(s, p)`` is the sum of
    ``env.rewards[agent_p]`` over every step of the game, clipped to [-1, 1]. The search assumes
    zero-sum games: a two-player game that ends (or is truncated) with summed rewards that do not
    add up to 0 raises a :class:`GameError` naming the env and the rewards, when a kernel first
    reads that position.
    """
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 1:
        raise GameError(f"max_length must be a positive integer, got {max_length!r}")
    if num_cursors < 1 or (cache_size is not None and cache_size < 1):
        raise GameError(f"num_cursors and cache_size must be >= 1, got {num_cursors} and {cache_size}")
    adapter = AecAdapter(
        env_fn,
        max_length=int(max_length),
        seed=int(seed),
        num_cursors=int(num_cursors),
        cache_size=None if cache_size is None else int(cache_size),
    )
    C, H, W = adapter.obs_shape
    A = adapter.num_actions
    obs_perms, action_perms = _check_perms(adapter.env_name, obs_perms, action_perms, H * W, A)
    inverse = np.argsort(action_perms, axis=1)  # inverse[k, a]: where symmetry k sends action a
    with _REGISTRY_LOCK:
        handle = _NEXT_HANDLE[0]
        _NEXT_HANDLE[0] += 1
        _ADAPTERS[handle] = adapter
    header = np.array([handle, adapter.max_length, A, len(action_perms)], dtype=np.int64)
    base, version = _split_version(name or adapter.env_name)
    env_name = adapter.env_name

    def text_to_action(params, text: str) -> int:
        try:
            action = int(text)
        except ValueError:
            action = -1
        if not 0 <= action < A:
            raise GameError(f"{env_name}: {text!r} is not an action; actions are 0..{A - 1}")
        return action

    game = Game(
        name=base,
        version=version,
        options={"max_length": adapter.max_length, "seed": adapter.seed},
        num_players=len(adapter.agents),
        num_actions=A,
        obs_shape=(C, H, W),
        state_size=1 + adapter.max_length,
        max_length=adapter.max_length,
        params=np.concatenate([header, inverse.reshape(-1)]).astype(np.int64),
        obs_perms=obs_perms,
        action_perms=action_perms,
        **rules_from(globals()),
        render_text_fn=_render_text,
        action_to_text_fn=lambda params, action: str(int(action)),
        text_to_action_fn=text_to_action,
        agent_names=adapter.agents,
        agent_players=tuple(range(len(adapter.agents))),
        description=f"PettingZoo AEC env {env_name}, stepped in Python by games.external.",
        extra={"aec_adapter": adapter},  # keeps the adapter (and its handle) alive
        kernels_may_raise=True,  # the kernels call back into Python, which may raise
    )
    return game


def stats(game: Game) -> AecStats:
    """Work done so far by an external game's envs (``GameError`` for a native game)."""
    adapter = game.extra.get("aec_adapter")
    if not isinstance(adapter, AecAdapter):
        raise GameError(f"{game.name} is not an external game")
    return adapter.stats


# ----------------------------------------------------------------------------- specs

#: Options a spec's adapter takes itself (integers); every other option goes to the env factory.
ADAPTER_OPTIONS = ("max_length", "seed", "num_cursors", "cache_size")
_SPEC = re.compile(r"(?:pettingzoo:)?[A-Za-z_][\w.]*(?::[A-Za-z_]\w*)?")


def _option_value(text: Any) -> Any:
    """An env option as given: ``"9"`` -> 9, ``"0.5"`` -> 0.5, ``"true"``/``"false"`` -> bool,
    anything else stays text (values from a saved config arrive already typed)."""
    if not isinstance(text, str):
        return text
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def from_spec(spec: str, **options: Any) -> Game:
    """The external game a spec names, for the command line and for processes that rebuild it.

    ``spec`` is ``pettingzoo:MODULE`` (the module's ``raw_env``, else its ``env``; e.g.
    ``pettingzoo:pettingzoo.classic.tictactoe_v3``) or ``MODULE:FACTORY`` (any callable that
    returns an AEC env). ``options``: ``max_length`` (required), ``seed``, ``num_cursors`` and
    ``cache_size`` go to :func:`from_aec`; all others are keyword arguments of the env factory
    (``-o board_size=9``), numbers and true/false converted. The game is named ``spec`` and
    records every option, so ``games.make(game.name, **game.options)`` builds it again (a
    checkpoint, an actor process, ``--resume``).
    """
    if not isinstance(spec, str) or not _SPEC.fullmatch(spec):
        raise GameError(
            f"bad external game {short_repr(spec)}: write pettingzoo:MODULE (e.g. "
            "pettingzoo:pettingzoo.classic.tictactoe_v3) or MODULE:FACTORY"
        )
    pettingzoo = spec.startswith("pettingzoo:")
    module_name, _, factory_name = spec.removeprefix("pettingzoo:").partition(":")
    if pettingzoo and factory_name:
        raise GameError(f"{spec}: pettingzoo:MODULE takes no factory; write MODULE:FACTORY instead")
    if not pettingzoo and not factory_name:
        raise GameError(f"{spec}: an external game is pettingzoo:MODULE or MODULE:FACTORY")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - one line naming the spec
        raise GameError(f"{spec}: cannot import {module_name}: {_reason(e)}") from None
    if pettingzoo:
        factory_name = "raw_env" if callable(getattr(module, "raw_env", None)) else "env"
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise GameError(f"{spec}: {module_name} has no callable {factory_name}")
    if "max_length" not in options:
        raise GameError(f"{spec}: give the most actions a game can take, e.g. -o max_length=9 (tic-tac-toe)")
    adapter = {k: integer_option(options[k], f"option {k!r} of {spec}") for k in ADAPTER_OPTIONS if k in options}
    env_kwargs = {k: _option_value(v) for k, v in options.items() if k not in ADAPTER_OPTIONS}
    recorded = {**adapter, **env_kwargs}
    recorded.setdefault("seed", 0)

    def env_fn():
        return factory(**env_kwargs)

    try:
        game = from_aec(env_fn, **adapter)
    except GameError as e:
        raise GameError(f"{spec}: {e}") from None
    except Exception as e:  # noqa: BLE001 - the env refused its options, or is no AEC env
        raise GameError(f"{spec}: the env could not be made or read: {_reason(e)}") from None
    env_name = game.extra["aec_adapter"].env_name
    return dataclasses.replace(
        game, name=spec, options=recorded, version=_split_version(env_name)[1],
        description=f"PettingZoo AEC env {env_name} ({spec}), stepped in Python by games.external.",
    )
