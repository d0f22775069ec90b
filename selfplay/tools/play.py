"""``selfplay play``: play a game against an agent in a pygame window.

    selfplay play connect4                                  # against the brain shipped in the package
    selfplay play arena                                     # the shipped ladder, at level 3 (Up/Down change it)
    selfplay play --agent runs/connect4-20261123-1200       # the game comes from the checkpoint
    selfplay play connect4 --agent mcts:1000 --second       # you move second
    selfplay play --agent runs/league-c4/ladder --level 2   # a difficulty ladder, at level 2
    selfplay play connect4 --analysis-only --overlay        # move for both sides, see the analysis

The window (:mod:`selfplay.tools.play_window`, keys in ``docs/play.md``) draws the board with the
last move marked and a preview of where a click plays, a side panel (whose turn, the result, the
moves, the agent's strength) and, on Tab, the analysis overlay: the search of ``selfplay analyze``
on the position, its win probability and top moves. This module holds what needs no pygame:

* :class:`PlaySession`: the game itself: positions, whose turn it is, undo, the move a click
  on a cell means. ``selfplay play-text`` and the tests drive it directly.
* :class:`Difficulty`: the agent's levels (search visits, or the levels of a league ladder) that
  the window steps through.
* :func:`load_opponent` / :func:`load_difficulty`: agents from the command line's specs.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

import games
from games.core import Game
from games.render import action_at, action_cells, caption

from ..evaluation.agents import SPEC_HELP, Agent, MCTSAgent, NetworkAgent, load_agent, network_search_config, played_search
from .args import integer, number

__all__ = [
    "Difficulty",
    "PlayError",
    "PlaySession",
    "add_arguments",
    "check_screenshot_moves",
    "load_difficulty",
    "load_opponent",
    "main",
    "run_window",
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


# ------------------------------------------------------------------------------ loading


def load_opponent(
    spec: str | None,
    game_name: str | None,
    options: list[str] | None,
    visits: int | None,
    device: str = "cpu",
    level: int | None = None,
) -> tuple[Game, Agent]:
    """The game and the agent ``spec`` names (:func:`selfplay.evaluation.agents.load_agent`,
    or a league ladder at ``level``). A checkpoint or ladder records its game, so ``game_name``
    may then be left out; a baseline or ONNX file needs it. ``spec`` None: the ladder shipped
    for the game (at its start level), else the brain shipped for it, else greedy. ``visits``
    None: 200, or for a ladder the visits its levels were measured at."""
    game, difficulty = load_difficulty(spec, game_name, options, visits, device, level)
    return game, difficulty.agent


def load_difficulty(
    spec: str | None,
    game_name: str | None,
    options: list[str] | None,
    visits: int | None,
    device: str = "cpu",
    level: int | None = None,
) -> tuple[Game, Difficulty]:
    """:func:`load_opponent`'s game, and the levels its agent can be set to (:class:`Difficulty`):
    a ladder's levels, search sizes around a searching agent's own, or that agent alone."""
    from ..league.ladder import is_ladder

    if spec is None or spec == "pretrained":
        spec, options = _pretrained_or_greedy(spec, game_name, options)
    path = Path(os.path.expanduser(spec))
    if is_ladder(path):
        return _ladder_difficulty(path, game_name, options, visits, device, level)
    if level is not None:
        raise PlayError(f"--level picks a level of a league ladder; {spec!r} is not one (selfplay league ladder DIR writes one)")
    visits = 200 if visits is None else visits
    if path.suffix in (".json", ".safetensors") or path.is_dir():
        return _checkpoint_agent(path, game_name, options, visits, device)
    if not game_name:
        raise PlayError(f"agent {spec!r} does not say which game it plays; name the game: selfplay play GAME --agent {spec}")
    game = games.make(game_name, **games.parse_options(options))
    return game, visit_levels(load_agent(spec, game, visits=visits, device=device))


def _pretrained_or_greedy(spec: str | None, game_name: str | None, options: list[str] | None) -> tuple[str, list[str] | None]:
    """The opponent when none is named (``spec`` None): the difficulty ladder shipped for the
    game, else the brain shipped for it (:mod:`selfplay.pretrained`), else greedy; for
    ``pretrained``, the brain. With no ``-o`` options, a game whose brain plays other options
    opens with those (6x6 Othello), and says so. Returns (spec, options)."""
    from ..evaluation.agents import AgentError, pretrained_path
    from ..pretrained import ladder_for_game, variants

    if not game_name:
        raise PlayError("name the game to play, e.g. selfplay play connect4 (or give --agent CHECKPOINT)")
    game = games.make(game_name, **games.parse_options(options))
    ladder = ladder_for_game(game) if spec is None else None
    if ladder is not None:
        return str(ladder.path), options
    try:
        return str(pretrained_path(game)), options
    except AgentError:
        others = variants(game.name)
        if not options and others:
            brain = others[0]
            flags = " ".join(f"-o {k}={v}" for k, v in brain.options.items())
            print(f"{game.name}: playing with {flags}, the options of its shipped brain (give -o options to choose)")
            return str(brain.path), [f"{k}={v}" for k, v in brain.options.items()]
        if spec == "pretrained":
            raise
        print(f"no pretrained brain ships for {game.name} with these options: playing greedy (--agent chooses)")
        return "greedy", options


def _checkpoint_agent(
    path: Path, game_name: str | None, options: list[str] | None, visits: int, device: str, name: str | None = None
) -> tuple[Game, Difficulty]:
    from .analyze import load_game_and_evaluator

    namespace = argparse.Namespace(checkpoint=str(path), game=game_name, option=options, device=device, threads=1,
                                   require_value=visits > 0)  # a brain without a value plays its raw policy
    game, evaluator = load_game_and_evaluator(namespace)
    label = name or (path.name if path.is_dir() else f"{path.parent.name}/{path.stem}")
    search = network_search_config(max(visits, 1), **played_search(path))  # a brain card's or the run's
    return game, visit_levels(NetworkAgent(game, evaluator, visits, config=search, name=f"{label}@{visits}"))


def _ladder_difficulty(
    path: Path, game_name: str | None, options: list[str] | None, visits: int | None, device: str, level: int | None
) -> tuple[Game, Difficulty]:
    """A league ladder's levels, each its checkpoint (or brain) at its own visits where the
    ladder names them per level (a shipped ladder), else at the ladder's, or at ``visits`` when
    given. ``level`` None: the ladder's ``start_level``, else 1."""
    from ..league.ladder import read_ladder

    directory, ladder = read_ladder(path)
    levels = ladder["levels"]
    chosen = int(ladder.get("start_level", 1)) if level is None else level
    if not 1 <= chosen <= len(levels):
        raise PlayError(f"{directory}: the ladder has levels 1..{len(levels)}, not {chosen}")

    def visits_of(i: int) -> int:
        return visits if visits is not None else int(levels[i].get("visits", ladder.get("visits", 0)))

    loaded: dict[int, tuple[Game, Agent]] = {}

    def load(i: int) -> tuple[Game, Agent]:
        if i not in loaded:
            checkpoint = directory / levels[i]["checkpoint"]
            game, found = _checkpoint_agent(checkpoint, game_name, options, visits_of(i), device, name=f"level {i + 1}")
            loaded[i] = game, found.agent
        return loaded[i]

    game, _ = load(chosen - 1)  # checks the game and options, and fails early on a bad checkpoint
    per_level = visits is None and all("visits" in e for e in levels)
    labels = tuple(f"level {e['level']} (Elo {e.get('elo', '?')}" + (f", {visits_of(i)} visits)" if per_level else ")")
                   for i, e in enumerate(levels))
    return game, Difficulty(labels, lambda i: load(i)[1], chosen - 1)


# ------------------------------------------------------------------------------ the command


def check_screenshot_moves(session: PlaySession, after_moves: int) -> None:
    """A screenshot is taken with nobody at the window: one line when ``after_moves`` needs a
    move of the person's from here (the agent plays only its own side), which would never come."""
    if session.waits_for_person(after_moves):
        moves = len(session.actions)
        raise PlayError(
            f"--after-moves {after_moves} needs your moves (move {moves + 1} is yours), and a --screenshot waits "
            f"for no click: give them with --moves, or ask for at most {moves} moves"
        )


def run_window(session: PlaySession, agent_name: str | None = None, **options) -> None:
    """Show ``session`` in a pygame window and play it until the window is closed (or Esc);
    ``options`` are :class:`selfplay.tools.play_window.PlayWindow`'s and its ``run``'s."""
    from .play_window import PlayWindow

    run_options = {k: options.pop(k) for k in ("max_frames", "screenshot", "after_moves") if k in options}
    PlayWindow(session, agent_name=agent_name, **options).run(**run_options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("game", nargs="?", help="game name (optional when --agent is a checkpoint or a ladder)")
    parser.add_argument("--agent", help=f"your opponent: {SPEC_HELP}, or a league ladder directory (default: the "
                        "ladder shipped for the game, else pretrained when a brain ships for it, else greedy)")
    parser.add_argument("--level", type=integer(1), help="with a ladder (as --agent, or the one shipped for the game): "
                        "the level to start at (1 is the weakest; default: the ladder's start level, else 1)")
    parser.add_argument("--visits", type=integer(0), help="search visits per move of a network agent (0: raw policy; default 200, or a ladder's own)")
    parser.add_argument("--second", action="store_true", help="let the agent move first")
    parser.add_argument("--analysis-only", action="store_true", help="make both sides' moves yourself (the agent only analyzes)")
    parser.add_argument("--overlay", action="store_true", help="start with the analysis overlay on (Tab toggles it)")
    parser.add_argument("--analysis-visits", type=integer(1), default=200, help="visits of the overlay's analysis (selfplay analyze's search)")
    parser.add_argument("--move-time", type=number(0.05, 3600), default=10.0, help="the most seconds the agent thinks about one move")
    parser.add_argument("--moves", help="moves to play first, comma-separated in the game's notation (e.g. 4,4,3)")
    parser.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="game option (repeatable)")
    parser.add_argument("--device", default="cpu", help="where a network runs: cpu, cuda, ...")
    parser.add_argument("--seed", type=integer(0), default=0, help="the agent's random seed")
    parser.add_argument("--size", type=integer(120, 4096), nargs=2, metavar=("W", "H"), help="board size in pixels")
    parser.add_argument("--screenshot", metavar="FILE", help="save the window as an image (PNG) once it is idle, then quit")
    parser.add_argument("--after-moves", type=integer(0), default=0, help="with --screenshot: wait until this many moves are played")


def main(args: argparse.Namespace) -> int:
    if args.after_moves and not args.screenshot:
        raise PlayError("--after-moves says when to take a --screenshot; give --screenshot FILE too")
    game, difficulty = load_difficulty(args.agent, args.game, args.option, args.visits, args.device, args.level)
    session = PlaySession(game, difficulty.agent, human=1 if args.second else 0, seed=args.seed, both_sides=args.analysis_only)
    if args.moves:
        session.play_line([m.strip() for m in args.moves.split(",") if m.strip()])
    if args.screenshot:
        check_screenshot_moves(session, args.after_moves)  # before a window opens, not never
    run_window(
        session,
        difficulty=difficulty,
        overlay=args.overlay,
        analysis_visits=args.analysis_visits,
        move_time=args.move_time,
        size=tuple(args.size) if args.size else None,
        screenshot=args.screenshot,
        after_moves=args.after_moves,
    )
    return 0
