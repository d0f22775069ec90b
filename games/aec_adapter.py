"""The Python side of an external game (:mod:`games.external`): the PettingZoo AEC envs that
answer the kernels' questions about a position, and the cache in front of them.

A position is an action history (the ``int64[S]`` state of :mod:`games.external`:
``[L, a_1, ..., a_L, 0, ...]``). A query (mask, terminal, to-play, outcome, observation) looks the
history up in a bounded cache first. On a miss, a *cursor* env whose history is a prefix of the
asked one is stepped forward (a playout or a tree expansion adds one action: one ``env.step``);
when no cursor is a prefix, the least recently used one is reset and the history replayed.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .core import GameError

__all__ = ["AecAdapter", "AecStats", "CACHE_BYTES", "LENGTH", "MAX_CACHE_SIZE"]

# state layout: state[LENGTH] actions follow, state[1 + i] is the (i + 1)-th action
LENGTH = 0

CACHE_BYTES = 256 << 20  # default cache budget: views, masks and bookkeeping of cached positions
MAX_CACHE_SIZE = 1 << 16


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

