"""Any game as a PettingZoo AEC environment: ``games.make_env(name, render_mode=None, **options)``.

One generic class, :class:`GameEnv`, adapts any :class:`games.Game`; no game has code here. The
position lives in one ``int64[S]`` state (read it with ``env.state()``); the env is a thin adapter
over the game's kernels, so search never has to clone an env.

Conventions, as in PettingZoo's classic games:

* agents are ``game.agent_names``; the one to act is ``game.agent_to_move(state)``. Turns need not
  alternate: in the arena every unit is an agent and turns cycle through the living units.
* ``observe(agent)`` is ``{"observation": float32[C, H, W], "action_mask": int8[A]}``: the planes of
  ``game.encode_agent`` from that agent's own point of view, and the legal moves for the acting
  agent (all zeros for every other agent, and for everyone once the game is over).
* rewards are 0 until the end; at the end every agent receives its player's (team's) final score,
  ``game.returns(state)[game.agent_players[i]]``, in [-1, 1]. All agents then terminate together;
  nothing is ever truncated (every game is finite).

Choices of our own:

* an illegal action raises :class:`games.IllegalMoveError` naming the legal moves (PettingZoo's
  classic games wrap the env to end the game with a penalty instead; our CLI and engine never
  play an illegal move on purpose, so one is a bug to report, not a move to punish).
* a unit that dies mid-game stays in ``agents`` until the game ends: it is simply never selected
  again, and at the end it terminates with its team and receives the team's score like every
  other unit. So every agent sees the final reward, and ``agents`` only shrinks through
  PettingZoo's dead-step mechanism after the end.
* the games are deterministic: ``reset(seed=...)`` only seeds ``env.np_random`` (a
  ``numpy.random.Generator``, for PettingZoo's API) and the game ignores it; ``options`` are
  accepted and ignored.
"""

from __future__ import annotations

import operator
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv

from .core import Game, GameError, IllegalMoveError
from .registry import make

__all__ = ["GameEnv", "make_env"]


def make_env(name: str, render_mode: str | None = None, **options: Any) -> GameEnv:
    """The AEC environment of game ``name`` with ``options`` (as for ``games.make``)."""
    return GameEnv(make(name, **options), render_mode=render_mode)


class GameEnv(AECEnv):
    """PettingZoo AEC environment over any :class:`Game` (see the module docstring).

    Attributes beyond PettingZoo's: ``game`` (the :class:`Game`), ``state()`` (a copy of the
    ``int64[S]`` position) and ``np_random`` (seeded by ``reset``; the games do not use it).
    The env is ready to play on construction; ``reset`` starts a new game.
    """

    metadata = {
        "render_modes": ["human", "rgb_array"],
        "name": "game_env",  # replaced per instance by the game's version tag, e.g. "connect4_v1"
        "is_parallelizable": False,
        "render_fps": 4,
    }

    def __init__(
        self, game: Game, render_mode: str | None = None, render_size: tuple[int, int] | None = None
    ):
        """``render_size``: ``(width, height)`` of pictures in pixels (default: ``render.default_size``)."""
        super().__init__()
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise GameError(
                f"unknown render_mode {render_mode!r}; choose from "
                f"{', '.join(self.metadata['render_modes'])} or None"
            )
        self.game = game
        self.render_mode = render_mode
        self.render_size = render_size
        self.metadata = {**GameEnv.metadata, "name": game.version_tag}
        self.possible_agents = list(game.agent_names)
        self._index = {agent: i for i, agent in enumerate(self.possible_agents)}
        A = game.num_actions
        self.observation_spaces = {
            agent: spaces.Dict(
                {
                    "observation": spaces.Box(0.0, 1.0, shape=game.obs_shape, dtype=np.float32),
                    "action_mask": spaces.Box(0, 1, shape=(A,), dtype=np.int8),
                }
            )
            for agent in self.possible_agents
        }
        self.action_spaces = {agent: spaces.Discrete(A) for agent in self.possible_agents}
        int64 = np.iinfo(np.int64)
        self.state_space = spaces.Box(int64.min, int64.max, shape=(game.state_size,), dtype=np.int64)
        self.np_random: np.random.Generator | None = None
        self._window = None
        self._start()

    # ----------------------------------------------------------------- PettingZoo API
    def observation_space(self, agent: str) -> spaces.Dict:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        """Start a new game. ``seed`` seeds ``np_random`` only; ``options`` are ignored."""
        if seed is not None or self.np_random is None:
            self.np_random = np.random.default_rng(seed)
        self._start()
        if self.render_mode == "human":
            self.render()

    def observe(self, agent: str) -> dict[str, np.ndarray]:
        """``{"observation": float32[C, H, W] from agent's view, "action_mask": int8[A]}``."""
        try:
            i = self._index[agent]
        except KeyError:
            raise GameError(f"unknown agent {agent!r}; agents: {', '.join(self.possible_agents)}") from None
        mask = np.zeros(self.game.num_actions, dtype=np.int8)
        if not self.game.is_terminal(self._state) and self.game.agent_to_move(self._state) == i:
            mask[:] = self.game.legal_mask(self._state)
        return {"observation": self.game.encode_agent(self._state, i), "action_mask": mask}

    def step(self, action) -> None:
        """Play ``action`` for ``agent_selection``; ``None`` for an agent that is done.

        Raises :class:`IllegalMoveError` for an illegal action (the position is left unchanged).
        """
        if not self.agents:
            raise GameError(f"{self.game.version_tag}: every agent is done; call reset() to play again")
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        if action is None:
            raise IllegalMoveError(f"{agent} is to move: step(None) is only for agents that are done")
        try:
            action = operator.index(action)
        except TypeError:
            raise IllegalMoveError(f"{agent}: an action is an integer, got {action!r}") from None
        self._state = self.game.next_state(self._state, action)  # raises IllegalMoveError
        self._cumulative_rewards[agent] = 0
        self._clear_rewards()
        if self.game.is_terminal(self._state):
            returns = self.game.returns(self._state)  # float64[N], one per player (team)
            for other in self.agents:
                self.rewards[other] = float(returns[self.game.agent_players[self._index[other]]])
                self.terminations[other] = True
            # Like PettingZoo's classic games: the next agent in order sees the end first.
            self.agent_selection = self.agents[(self.agents.index(agent) + 1) % len(self.agents)]
        else:
            self.agent_selection = self.possible_agents[self.game.agent_to_move(self._state)]
        self._accumulate_rewards()
        if self.render_mode == "human":
            self.render()

    def state(self) -> np.ndarray:
        """``int64[S]``: a copy of the position (PettingZoo's global state)."""
        return self._state.copy()

    def render(self) -> np.ndarray | None:
        """``uint8[height, width, 3]`` in "rgb_array" mode; draws the window in "human" mode."""
        from .render import Window, render_rgb

        if self.render_mode is None:
            gymnasium.logger.warn("render() was called without a render_mode; make_env(name, render_mode=...)")
            return None
        if self.render_mode == "rgb_array":
            return render_rgb(self.game, self._state, self.render_size)
        if self._window is None:
            self._window = Window(self.game, self.render_size, fps=self.metadata["render_fps"])
        self._window.show(self._state)
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None

    # ----------------------------------------------------------------- internals
    def _start(self) -> None:
        self._state = self.game.initial_state()
        self.agents = self.possible_agents[:]
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos = {agent: {} for agent in self.agents}
        self.agent_selection = self.possible_agents[self.game.agent_to_move(self._state)]
        self._skip_agent_selection = None
