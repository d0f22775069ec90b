"""The play session of ``selfplay play``, without pygame: what the window shows and the person
and the agent change.

* :class:`PlaySession`: the game itself: positions, whose turn it is, the agent's moves, undo,
  the move a click on a cell means. ``selfplay play-text``, the window
  (:mod:`selfplay.tools.play_window`) and the tests drive it.
* :class:`Difficulty`: the agent's levels (search visits, or the levels of a league ladder) that
  the window steps through; :func:`visit_levels` builds them for a searching agent.
* :func:`check_screenshot_moves`: whether a screenshot's move count can come without a click.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import games
from games.core import Game
from games.render import action_at, action_cells, caption

from ..evaluation.agents import Agent, MCTSAgent, NetworkAgent

__all__ = [
    "MCTS_ROLLOUTS",
    "NETWORK_VISITS",
    "Difficulty",
    "PlayError",
    "PlaySession",
    "check_screenshot_moves",
    "visit_levels",
]


class PlayError(ValueError):
    """Bad input to ``selfplay play`` (a move out of turn, no display, ...): one line."""


@dataclass
class PlaySession:
    """One person against ``agent`` in ``game``; the person plays player ``human``, or every
    player when ``both_sides`` (analysis only: the agent never moves).

    ``states[i]`` (int64[S]) is the position after ``actions[:i]``; ``values[i]`` is what the
    agent thought of the position after its own move ``actions[i]`` (from its point of view,
    [-1, 1]; NaN for the person's moves and for agents that give no value).
    """

    game: Game
    agent: Agent
    human: int = 0
    seed: int = 0
    both_sides: bool = False
    states: list[np.ndarray] = field(init=False)
    actions: list[int] = field(init=False, default_factory=list)
    values: list[float] = field(init=False, default_factory=list)
    _cells: tuple[bytes, np.ndarray] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.human < self.game.num_players:
            raise PlayError(f"the human player must be in 0..{self.game.num_players - 1}, got {self.human}")
        self.states = [self.game.initial_state()]

    # ---------------------------------------------------------------- position
    @property
    def state(self) -> np.ndarray:
        """int64[S]: the current position."""
        return self.states[-1]

    @property
    def over(self) -> bool:
        return self.game.is_terminal(self.state)

    @property
    def human_to_move(self) -> bool:
        return not self.over and (self.both_sides or self.game.to_play(self.state) == self.human)

    @property
    def agent_to_move(self) -> bool:
        return not self.over and not self.human_to_move

    def result(self) -> str:
        """``"You win."``, ``"You lose."``, ``"Draw."`` (or the score): the person's outcome;
        with ``both_sides``, who won (``"player_0 (red) wins"``)."""
        if self.both_sides:
            return caption(self.game, self.state)
        score = float(self.game.returns(self.state)[self.human])
        return {1.0: "You win.", -1.0: "You lose.", 0.0: "Draw."}.get(score, f"Score {score:+.2f}.")

    # ---------------------------------------------------------------- moves
    def play(self, action: int) -> None:
        """The person plays ``action``. Raises a one-line error when it is not their turn or the
        move is illegal (the position is unchanged)."""
        self._check_turn()
        self._push(int(action), math.nan)

    def play_text(self, text: str) -> None:
        """The person plays the move written ``text`` (``game.parse_action``)."""
        self._check_turn()
        self._push(self.game.parse_action(text, self.state), math.nan)

    def play_line(self, texts: list[str]) -> None:
        """Play the moves written ``texts`` from the current position, whoever is to move (a
        starting position: ``--moves``). All or nothing: a bad move leaves the position as it was."""
        start = len(self.actions)
        try:
            for i, text in enumerate(texts):
                try:
                    self._push(self.game.parse_action(text, self.state), math.nan)
                except games.GameError as e:
                    raise PlayError(f"move {i + 1} of the line ({text!r}): {e}") from None
        except PlayError:
            del self.states[start + 1 :], self.actions[start:], self.values[start:]
            raise

    def _check_turn(self) -> None:
        if not self.human_to_move:
            raise PlayError("the game is over" if self.over else "it is not your turn")

    def waits_for_person(self, moves: int) -> bool:
        """Whether the game can reach ``moves`` moves only by the person's clicks from here: it is
        short of them, not over, and the person is to move with a choice (the agent's moves and
        the person's forced ones play themselves). With ``both_sides`` every move is the person's."""
        return len(self.actions) < moves and self.human_to_move and self.forced_move() is None

    def forced_move(self) -> int | None:
        """The person's only legal move when no click can make it (a pass in Othello)."""
        if not self.human_to_move:
            return None
        legal = self.game.legal_actions(self.state)
        return int(legal[0]) if len(legal) == 1 and self.cells()[legal[0], 0] < 0 else None

    def agent_move(self) -> tuple[int, float]:
        """Let the agent move in the current position; returns its move and value."""
        action, value = self.think()
        self.commit(action, value)
        return action, value

    def think(self, stop: Callable[[], bool] | None = None) -> tuple[int, float]:
        """The agent's move in the current position and its value (NaN if it gives none),
        without playing it. ``stop`` (polled by searching agents) ends a search early with its
        best move so far."""
        return self.thinker()(stop)

    def thinker(self) -> Callable[[Callable[[], bool] | None], tuple[int, float]]:
        """:meth:`think` on the current position, as a call to make later, on a thread: it holds
        the position, the agent and the seed, so the session may change meanwhile."""
        if not self.agent_to_move:
            raise PlayError("it is not the agent's turn")
        agent, states = self.agent, self.state[None].copy()
        moves = np.array([len(self.actions)], np.int64)
        seed = self.seed + len(self.actions)

        def think(stop: Callable[[], bool] | None = None) -> tuple[int, float]:
            if hasattr(agent, "think"):  # a searching agent: it can stop, and it gives a value
                actions, values = agent.think(states, moves, seed, stop=stop)
                return int(actions[0]), float(values[0])
            return int(agent.act(states, moves, seed)[0]), math.nan

        return think

    def commit(self, action: int, value: float) -> None:
        """Play the agent's move (from :meth:`think`) in the current position."""
        if not self.agent_to_move:
            raise PlayError("it is not the agent's turn")
        self._push(action, value)

    def _push(self, action: int, value: float) -> None:
        self.states.append(self.game.next_state(self.state, action))  # GameError if illegal
        self.actions.append(action)
        self.values.append(value)

    def undo(self) -> bool:
        """Take back the person's last move and every agent move after it (with ``both_sides``:
        the last move). False when the person has not moved yet."""
        mover = [self.game.to_play(s) for s in self.states[:-1]]
        mine = [i for i, p in enumerate(mover) if self.both_sides or p == self.human]
        if not mine:
            return False
        del self.states[mine[-1] + 1 :], self.actions[mine[-1] :], self.values[mine[-1] :]
        return True

    def restart(self, swap: bool = False) -> None:
        """A new game; with ``swap`` the person plays the next player (for two players: the
        other side)."""
        if swap:
            self.human = (self.human + 1) % self.game.num_players
        self.states, self.actions, self.values = [self.game.initial_state()], [], []

    # ---------------------------------------------------------------- cells
    def cells(self) -> np.ndarray:
        """``int64[A, 2]``: the cell each legal move acts on now (``games.render.action_cells``),
        computed once per position."""
        key = self.state.tobytes()
        if self._cells is None or self._cells[0] != key:
            self._cells = (key, action_cells(self.game, self.state))
        return self._cells[1]

    def action_at(self, row: int, col: int) -> int | None:
        """The person's legal move that a click on cell ``(row, col)`` means (the move onto that
        cell; in Connect Four the move into that column), ``None`` when there is none or it is
        not the person's turn."""
        if not self.human_to_move:
            return None
        return action_at(self.game, self.state, row, col, self.cells())

    def last_cell(self) -> tuple[int, int] | None:
        """The cell the last move acted on (``None`` before the first move or for a pass)."""
        if not self.actions:
            return None
        row, col = action_cells(self.game, self.states[-2])[self.actions[-1]]
        return (int(row), int(col)) if row >= 0 else None

    # ---------------------------------------------------------------- words
    def mover_name(self, ply: int) -> str:
        """Who made move ``ply`` (0-based): ``"you"``, ``"agent"``, or with ``both_sides`` the
        player (the unit, in the arena)."""
        state = self.states[ply]
        if not self.both_sides:
            return "you" if self.game.to_play(state) == self.human else "agent"
        return self.game.agent_names[self.game.agent_to_move(state)]

    def describe_last(self, agent_name: str) -> str:
        """One line about the last move: who played what, and the agent's value after its move."""
        if not self.actions:
            return ""
        action, value = self.actions[-1], self.values[-1]
        who = self.mover_name(len(self.actions) - 1)
        who = agent_name if who == "agent" else who
        text = f"{who} played {self.game.action_to_text(action)}"
        if not math.isnan(value):
            text += f" (value {value:+.2f} for it)"
        return text


# ------------------------------------------------------------------------------ difficulty


@dataclass
class Difficulty:
    """The agent's strengths a person can pick from, weakest first: ``labels[i]`` names level
    ``i`` and ``make(i)`` builds its agent (once; kept). ``index`` is the level in play."""

    labels: tuple[str, ...]
    make: Callable[[int], Agent]
    index: int = 0
    _agents: dict[int, Agent] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.index < len(self.labels):
            raise PlayError(f"level {self.index + 1} is out of 1..{len(self.labels)}")

    @classmethod
    def fixed(cls, agent: Agent) -> Difficulty:
        """One level: an agent without a strength setting (random, greedy, a script)."""
        return cls((agent.name,), lambda _: agent)

    @property
    def agent(self) -> Agent:
        if self.index not in self._agents:
            self._agents[self.index] = self.make(self.index)
        return self._agents[self.index]

    @property
    def label(self) -> str:
        return self.labels[self.index]

    def step(self, delta: int) -> bool:
        """Move ``delta`` levels up (or down); False at either end."""
        index = min(max(self.index + delta, 0), len(self.labels) - 1)
        changed, self.index = index != self.index, index
        return changed


#: Search visits a network agent's difficulty steps through (0: the raw policy), and rollouts
#: for pure MCTS; the agent's own setting is added when it is not one of them.
NETWORK_VISITS = (0, 16, 50, 100, 200, 400, 800, 1600, 3200)
MCTS_ROLLOUTS = (10, 30, 100, 300, 1000, 3000, 10000, 30000)


def visit_levels(agent: Agent) -> Difficulty:
    """Levels by search size for a searching agent (``agent`` at its own level), else one level."""
    if isinstance(agent, NetworkAgent):
        base = agent.name.rsplit("@", 1)[0]
        steps = sorted({*NETWORK_VISITS, agent.visits})
        labels = tuple(f"{base}@{v}" + (" (raw policy)" if v == 0 else " visits") for v in steps)

        def network(i: int) -> Agent:
            return agent if steps[i] == agent.visits else NetworkAgent(agent.game, agent.evaluator, steps[i], config=agent.config,
                                                                       name=f"{base}@{steps[i]}")  # fmt: skip

        return Difficulty(labels, network, steps.index(agent.visits))
    if isinstance(agent, MCTSAgent):
        steps = sorted({*MCTS_ROLLOUTS, agent.rollouts})

        def mcts(i: int) -> Agent:
            return agent if steps[i] == agent.rollouts else MCTSAgent(agent.game, steps[i])

        return Difficulty(tuple(f"mcts:{r}" for r in steps), mcts, steps.index(agent.rollouts))
    return Difficulty.fixed(agent)


def check_screenshot_moves(session: PlaySession, after_moves: int) -> None:
    """A screenshot is taken with nobody at the window: one line when ``after_moves`` needs a
    move of the person's from here (the agent plays only its own side), which would never come."""
    if session.waits_for_person(after_moves):
        moves = len(session.actions)
        raise PlayError(
            f"--after-moves {after_moves} needs your moves (move {moves + 1} is yours), and a --screenshot waits "
            f"for no click: give them with --moves, or ask for at most {moves} moves"
        )
