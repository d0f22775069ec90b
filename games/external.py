"""Search and train on an external PettingZoo AEC environment: ``from_aec(env_fn, max_length=...)``.

The adapter is a real :class:`~games.core.Game`: its kernels are ``@njit(cache=True)`` functions
with exactly the :data:`~games.core.KERNEL_SIGNATURES`, so every search kernel, ``random_playouts``
and ``perft`` run on it unchanged. The rules kernels call back into Python (``numba.objmode``),
where the env is stepped, so the adapter is roughly a thousand times slower than a native game;
``docs/external.md`` gives measured costs and walks through porting a game to numba.

State ``int64[S]`` with ``S = 1 + max_length``: ``[L, a_1, ..., a_L, 0, ...]``, the length and the
actions played since ``env.reset(seed=seed)``. A state is the action history and nothing else, so
it is a value like any native state: valid in every adapter of the same env, max_length and seed,
in any process.

Params ``int64[4 + K*A]``: ``[handle, max_length, A, K, inv_perms (K*A)]``. ``handle`` names this
process's :class:`AecAdapter` (the Python side: envs and a cache); ``inv_perms[k*A + a]`` is the
image of action ``a`` under symmetry ``k``, so ``transform_state`` maps a history in numba.

How a position is answered: a query (mask, terminal, to-play, outcome, observation) looks the
history up in a bounded cache first. On a miss, a *cursor* env whose history is a prefix of the
asked one is stepped forward (a playout or a tree expansion adds one action: one ``env.step``);
when no cursor is a prefix, the least recently used one is reset and the history replayed.
"""

from __future__ import annotations

import importlib
import re
import threading
import weakref
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from numba import njit, objmode

from .core import Game, GameError, IllegalMoveError, _reason, integer_option, rules_from, short_repr

__all__ = ["AecAdapter", "AecStats", "from_aec", "from_spec", "stats", "ADAPTER_OPTIONS"]

# params layout
HANDLE, MAX_LENGTH, NUM_ACTIONS, NUM_SYMMETRIES, INV_PERMS = 0, 1, 2, 3, 4
# state layout: state[LENGTH] actions follow, state[1 + i] is the (i + 1)-th action
LENGTH = 0

CACHE_BYTES = 256 << 20  # default cache budget: views, masks and bookkeeping of cached positions
MAX_CACHE_SIZE = 1 << 16

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


def _close_envs(cursors: list[_Cursor]) -> None:
    for cursor in cursors:
        cursor.env.close()


@dataclass(frozen=True)
class AecStats:
    """Counters of an adapter's work since it was made (for measuring the cost of a workload)."""

    queries: int  # positions asked about by kernels (mask, terminal, outcome, to_play, encode)
    cache_hits: int  # of those, answered from the cache without touching an env
    env_steps: int  # env.step calls, including replays
    resets: int  # env.reset calls (a cursor starting a replay)


@dataclass
class _Record:
    """What the kernels ask about one history, computed once."""

    terminal: bool
    player: int  # the agent (== player) selected by the env; meaningful when not terminal
    mask: np.ndarray  # bool[A], all False when terminal
    returns: tuple[float, ...]  # [N] each agent's summed rewards so far, clipped to [-1, 1]
    views: dict[int, np.ndarray]  # agent i -> float32[C, H, W], what i observes; filled on demand


class _Cursor:
    """One live env and the history it has been stepped through."""

    def __init__(self, env: Any, num_agents: int):
        self.env = env
        self.key = b""  # history as int64 bytes
        self.length = 0
        self.returns = [0.0] * num_agents  # [N] each agent's summed env.rewards since reset
        self.done = False  # every agent terminated or truncated
        self.selected = ""  # env.agent_selection
        self.last_used = 0


class AecAdapter:
    """The Python side of an external game: cursor envs, the position cache, the conversions.

    One adapter serves one :class:`Game`; kernels find it through ``params[HANDLE]``. Calls are
    serialized by a lock, so search threads may share it (they gain nothing in speed).
    """

    def __init__(
        self,
        env_fn: Callable[[], Any],
        *,
        max_length: int,
        seed: int,
        num_cursors: int,
        cache_size: int | None,
    ):
        self.env_fn = env_fn
        self.max_length = max_length
        self.seed = seed
        self.num_cursors = num_cursors
        self.cache_size = cache_size
        env = env_fn()
        for attr in ("reset", "step", "observe", "possible_agents"):
            if not hasattr(env, attr):
                raise GameError(
                    f"env_fn must build a PettingZoo AEC env; {type(env).__name__} has no {attr!r}"
                )
        env.reset(seed=seed)
        self.env_name = str(getattr(env, "metadata", {}).get("name", type(env).__name__))
        self.ansi = getattr(env, "render_mode", None) == "ansi"  # render_text shows env.render()
        self.agents: tuple[str, ...] = tuple(env.possible_agents)
        self.agent_index = {agent: i for i, agent in enumerate(self.agents)}
        self.num_actions = self._action_count(env)
        first = env.observe(env.agent_selection)
        if isinstance(first, dict) and "action_mask" in first:
            self.mask_in_infos = False
            raw = first.get("observation")
        elif "action_mask" in (getattr(env, "infos", {}) or {}).get(env.agent_selection, {}):
            self.mask_in_infos = True
            raw = first
        else:
            raise GameError(
                f"{self.env_name} gives no action mask: the adapter needs observe(agent) to be a "
                "dict with 'action_mask' (or infos[agent]['action_mask'])"
            )
        raw = np.asarray(raw)
        if raw.ndim > 3 or (not np.issubdtype(raw.dtype, np.number) and raw.dtype != np.bool_):
            raise GameError(f"{self.env_name}: observations must be numeric arrays of rank <= 3, got {raw.shape}")
        self.obs_shape: tuple[int, int, int] = self._planes(raw).shape
        if cache_size is None:  # as many positions as fit in about CACHE_BYTES
            entry_bytes = 4 * int(np.prod(self.obs_shape)) + self.num_actions + 400
            self.cache_size = max(1024, min(MAX_CACHE_SIZE, CACHE_BYTES // entry_bytes))
        self._cursors = [_Cursor(env, len(self.agents))]
        self._after_step(self._cursors[0])
        weakref.finalize(self, _close_envs, self._cursors)  # envs may hold windows or files
        self._cache: dict[bytes, _Record] = {}  # history bytes -> answers, oldest first
        self._no_moves = np.zeros(self.num_actions, dtype=np.bool_)  # the mask of a finished game
        self._no_moves.flags.writeable = False
        self._lock = threading.RLock()
        self._clock = 0
        self._queries = self._hits = self._steps = self._resets = 0

    def _action_count(self, env) -> int:
        counts = set()
        for agent in self.agents:
            space = env.action_space(agent)
            if getattr(space, "n", None) is None or int(getattr(space, "start", 0)) != 0:
                raise GameError(
                    f"{self.env_name}: agent {agent!r} must have a Discrete action space starting at 0"
                )
            counts.add(int(space.n))
        if len(counts) != 1:
            raise GameError(f"{self.env_name}: agents have different action counts {sorted(counts)}")
        return counts.pop()

    @staticmethod
    def _planes(raw: np.ndarray) -> np.ndarray:
        """An observation as ``float32[C, H, W]``: (H, W, C) -> (C, H, W), (H, W) -> (1, H, W),
        (n,) -> (n, 1, 1), a scalar -> (1, 1, 1)."""
        if raw.ndim == 3:
            raw = raw.transpose(2, 0, 1)
        elif raw.ndim == 2:
            raw = raw[None]
        else:
            raw = raw.reshape(-1, 1, 1)
        return np.array(raw, dtype=np.float32, order="C")  # a copy: envs may reuse buffers

    # ------------------------------------------------------------------ stepping cursors
    # Each attribute read on a wrapped env walks the wrapper chain (microseconds), so every step
    # reads the env's bookkeeping once, in `_after_step`.
    def _after_step(self, cursor: _Cursor) -> None:
        """Add the step's rewards to the cursor's returns, take the dead steps AEC asks for (a
        finished agent selected while others play on), and note whether the game is over."""
        env = cursor.env
        for _ in range(len(self.agents) + 1):
            for agent, reward in env.rewards.items():
                cursor.returns[self.agent_index[agent]] += float(reward)
            agents, terminations, truncations = env.agents, env.terminations, env.truncations
            cursor.done = not agents or all(terminations[a] or truncations[a] for a in agents)
            cursor.selected = env.agent_selection
            if cursor.done or not (terminations[cursor.selected] or truncations[cursor.selected]):
                return
            env.step(None)
        raise GameError(f"{self.env_name}: dead steps never reached a live agent")

    def _reset(self, cursor: _Cursor) -> None:
        cursor.env.reset(seed=self.seed)
        cursor.key, cursor.length = b"", 0
        cursor.returns = [0.0] * len(self.agents)
        self._resets += 1
        self._after_step(cursor)

    def _seek(self, history: np.ndarray, key: bytes) -> _Cursor:
        """A cursor stepped to ``history`` (``int64[L]``): forward from the longest prefix, or
        replayed from a reset."""
        best = None
        for cursor in self._cursors:
            if key.startswith(cursor.key) and (best is None or cursor.length > best.length):
                best = cursor
        if best is None:
            if len(self._cursors) < self.num_cursors:
                best = _Cursor(self.env_fn(), len(self.agents))
                self._cursors.append(best)
            else:
                best = min(self._cursors, key=lambda c: c.last_used)
            self._reset(best)
        env = best.env
        for action in history[best.length :].tolist():
            if best.done:
                raise GameError(f"{self.env_name}: action {action} played after the game ended")
            env.step(action)
            self._after_step(best)
            self._steps += 1
        best.key, best.length = key, len(history)
        self._clock += 1
        best.last_used = self._clock
        return best

    def _observe(self, env, agent: str) -> tuple[np.ndarray, Any]:
        """(``float32[C, H, W]`` observation of ``agent``, its raw action mask)."""
        obs = env.observe(agent)
        if self.mask_in_infos:
            return self._planes(np.asarray(obs)), env.infos[agent].get("action_mask")
        return self._planes(np.asarray(obs["observation"])), obs["action_mask"]

    # ------------------------------------------------------------------ what kernels ask
    def record(self, state: np.ndarray) -> _Record:
        """Everything the kernels ask about ``state`` (``int64[S]``), cached by history."""
        length = int(state[LENGTH])
        history = state[1 : 1 + length]
        key = history.tobytes()
        with self._lock:
            self._queries += 1
            record = self._cache.get(key)
            if record is not None:
                self._hits += 1
                return record
            cursor = self._seek(history, key)
            terminal = cursor.done or length >= self.max_length
            player = self.agent_index.get(cursor.selected, -1)
            views = {}
            if terminal:
                mask = self._no_moves
            else:
                if player < 0:
                    raise GameError(f"{self.env_name}: selected agent {cursor.selected!r} is not in possible_agents")
                view, raw_mask = self._observe(cursor.env, cursor.selected)
                mask = np.array(raw_mask, dtype=np.bool_)
                if mask.shape != self._no_moves.shape or not mask.any():
                    raise GameError(
                        f"{self.env_name}: {cursor.selected}'s action mask {mask.astype(int).tolist()} "
                        f"after {length} actions must be {self.num_actions} flags, one at least set, "
                        "while the game is on"
                    )
                views[player] = view
            if terminal and len(self.agents) == 2:
                self._check_zero_sum(cursor.returns, length)
            returns = tuple(min(1.0, max(-1.0, r)) for r in cursor.returns)
            record = _Record(terminal, player, mask, returns, views)
            if len(self._cache) >= self.cache_size:
                del self._cache[next(iter(self._cache))]  # oldest first
            self._cache[key] = record
            return record

    def _check_zero_sum(self, returns: list[float], length: int) -> None:
        """The search backs one value up as ``v`` for one player and ``-v`` for the other, so a
        finished two-player game must pay its players opposite amounts (before clipping)."""
        total = sum(returns)
        if abs(total) > 1e-6 * max(1.0, *map(abs, returns)):
            rewards = ", ".join(f"{a} {r:+g}" for a, r in zip(self.agents, returns))
            raise GameError(
                f"{self.env_name}: the game ended after {length} actions with summed rewards {rewards} "
                f"(total {total:+g}); the search needs zero-sum games, where they sum to 0"
            )

    def check_agent(self, agent: int) -> int:
        if not 0 <= agent < len(self.agents):
            raise GameError(f"{self.env_name}: no agent {agent}; agents are 0..{len(self.agents) - 1}")
        return agent

    def observation(self, state: np.ndarray, agent: int) -> np.ndarray:
        """``float32[C, H, W]``: what agent ``agent`` observes (-1: the agent to move)."""
        with self._lock:
            record = self.record(state)
            agent = self.check_agent(record.player if agent < 0 else agent)
            view = record.views.get(agent)
            if view is None:
                length = int(state[LENGTH])
                cursor = self._seek(state[1 : 1 + length], state[1 : 1 + length].tobytes())
                view = record.views[agent] = self._observe(cursor.env, self.agents[agent])[0]
            return view

    def render_text(self, state: np.ndarray) -> str:
        with self._lock:
            record = self.record(state)
            length = int(state[LENGTH])
            history = state[1 : 1 + length]
            lines = []
            if self.ansi:
                lines.append(str(self._seek(history, history.tobytes()).env.render()))
            played = " ".join(map(str, history.tolist())) or "none"
            lines.append(f"{self.env_name} after {length} actions: {played}")
            if record.terminal:
                scores = ", ".join(f"{a} {r:+g}" for a, r in zip(self.agents, record.returns))
                lines.append(f"game over; scores: {scores}")
            else:
                legal = " ".join(map(str, np.flatnonzero(record.mask)))
                lines.append(f"{self.agents[record.player]} to move; legal: {legal}")
            return "\n".join(lines)

    @property
    def stats(self) -> AecStats:
        return AecStats(self._queries, self._hits, self._steps, self._resets)


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
