"""``selfplay play``: play a game against an agent in a pygame window.

    selfplay play --agent runs/connect4-20261123-1200       # the game comes from the checkpoint
    selfplay play connect4 --agent mcts:1000 --second       # you move second
    selfplay play othello                                   # against the greedy baseline

Click a cell to move (in Connect Four, anywhere in a column), or type a move as text (``4``,
``c3``, ``pass``) and press Enter; this works in every game, the arena included. Ctrl+Z takes
back your last move and the agent's reply, Ctrl+N starts a new game, Ctrl+S starts one with
sides swapped, Esc quits. Under the board the agent's last move and its value (from its own
point of view, in [-1, 1]) are shown. The agent thinks on a thread, so the window stays live.

* :class:`PlaySession`: the game itself, with no pygame: positions, whose turn it is, undo, the
  cell a click means. ``selfplay play-text`` and the tests drive it directly.
* :func:`run_window`: the pygame loop around a session.
"""

from __future__ import annotations

import argparse
import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

import games
from games.core import Game, GameError

from ..evaluation.agents import SPEC_HELP, Agent, NetworkAgent, load_agent
from .args import integer

__all__ = ["PlayError", "PlaySession", "add_arguments", "load_opponent", "main", "run_window"]

INFO_HEIGHT = 30  # pixels of the strip under the caption: the agent's move, your typing, help


class PlayError(ValueError):
    """Bad input to ``selfplay play`` (a move out of turn, no display, ...): one line."""


@dataclass
class PlaySession:
    """One person against ``agent`` in ``game``; the person plays player ``human``.

    ``states[i]`` (int64[S]) is the position after ``actions[:i]``; ``values[i]`` is what the
    agent thought of the position after its own move ``actions[i]`` (from its point of view,
    [-1, 1]; NaN for the person's moves and for agents that give no value).
    """

    game: Game
    agent: Agent
    human: int = 0
    seed: int = 0
    states: list[np.ndarray] = field(init=False)
    actions: list[int] = field(init=False, default_factory=list)
    values: list[float] = field(init=False, default_factory=list)

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
        return not self.over and self.game.to_play(self.state) == self.human

    def result(self) -> str:
        """``"You win."``, ``"You lose."``, ``"Draw."`` (or the score): the person's outcome."""
        score = float(self.game.returns(self.state)[self.human])
        return {1.0: "You win.", -1.0: "You lose.", 0.0: "Draw."}.get(score, f"Score {score:+.2f}.")

    # ---------------------------------------------------------------- moves
    def play(self, action: int) -> None:
        """The person plays ``action``. Raises a one-line error when it is not their turn or the
        move is illegal (the position is unchanged)."""
        if not self.human_to_move:
            raise PlayError("the game is over" if self.over else "it is not your turn")
        self._push(int(action), math.nan)

    def play_text(self, text: str) -> None:
        """The person plays the move written ``text`` (``game.parse_action``)."""
        if not self.human_to_move:
            raise PlayError("the game is over" if self.over else "it is not your turn")
        self._push(self.game.parse_action(text, self.state), math.nan)

    def forced_move(self) -> int | None:
        """The person's only legal move, when they have exactly one (a pass in Othello)."""
        if not self.human_to_move:
            return None
        legal = self.game.legal_actions(self.state)
        return int(legal[0]) if len(legal) == 1 else None

    def agent_move(self) -> tuple[int, float]:
        """Let the agent move in the current position; returns its move and value."""
        action, value = self.think()
        self.commit(action, value)
        return action, value

    def think(self) -> tuple[int, float]:
        """The agent's move in the current position and its value (NaN if it gives none),
        without playing it. Safe to run on a thread while the window shows the position."""
        if self.over or self.human_to_move:
            raise PlayError("it is not the agent's turn")
        states = self.state[None]
        moves = np.array([len(self.actions)], np.int64)
        seed = self.seed + len(self.actions)
        if hasattr(self.agent, "think"):
            actions, values = self.agent.think(states, moves, seed)
            return int(actions[0]), float(values[0])
        return int(self.agent.act(states, moves, seed)[0]), math.nan

    def commit(self, action: int, value: float) -> None:
        """Play the agent's move (from :meth:`think`) in the current position."""
        if self.over or self.human_to_move:
            raise PlayError("it is not the agent's turn")
        self._push(action, value)

    def _push(self, action: int, value: float) -> None:
        self.states.append(self.game.next_state(self.state, action))  # GameError if illegal
        self.actions.append(action)
        self.values.append(value)

    def undo(self) -> bool:
        """Take back the person's last move and every agent move after it. False when the
        person has not moved yet."""
        mover = [self.game.to_play(s) for s in self.states[:-1]]
        mine = [i for i, p in enumerate(mover) if p == self.human]
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

    # ---------------------------------------------------------------- clicks
    def action_at(self, row: int, col: int) -> int | None:
        """The person's legal move that a click on cell ``(row, col)`` of ``game.cells_fn``'s grid
        means: the move that puts a piece on that empty cell or, failing that, the one move that
        puts a piece in that column (Connect Four). ``None`` when no single move matches."""
        game = self.game
        if game.cells_fn is None or not self.human_to_move:
            return None
        before = game.cells_fn(game.params, self.state)
        if not (0 <= row < before.shape[0] and 0 <= col < before.shape[1]):
            return None
        here, column = [], []
        for action in game.legal_actions(self.state):
            after = game.cells_fn(game.params, game.next_state(self.state, action))
            placed = (before == 0) & (after > 0)  # bool[H, W]: cells this move fills
            if placed[row, col]:
                here.append(int(action))
            elif placed[:, col].any():
                column.append(int(action))
        choices = here or column
        return choices[0] if len(choices) == 1 else None

    # ---------------------------------------------------------------- words
    def describe_last(self, agent_name: str) -> str:
        """One line about the last move: who played what, and the agent's value after its move."""
        if not self.actions:
            return ""
        action, value = self.actions[-1], self.values[-1]
        mover = self.game.to_play(self.states[-2])
        who = "you" if mover == self.human else agent_name
        text = f"{who} played {self.game.action_to_text(action)}"
        if not math.isnan(value):
            text += f" (value {value:+.2f} for it)"
        return text


# ------------------------------------------------------------------------------ the window


def run_window(
    session: PlaySession,
    agent_name: str = "agent",
    size: tuple[int, int] | None = None,
    fps: float = 30,
    max_frames: int | None = None,
) -> None:
    """Show ``session`` in a pygame window and play it until the window is closed (or Esc, or
    ``max_frames`` frames, for tests)."""
    import pygame

    from games.render import CAPTION_HEIGHT, cell_at, default_size, draw

    game = session.game
    width, board_height = size or default_size(game)  # board plus caption
    try:
        pygame.display.init()
        screen = pygame.display.set_mode((width, board_height + INFO_HEIGHT))
    except pygame.error as e:
        raise PlayError(f"cannot open a window ({e}); `selfplay play-text` plays in the terminal") from None
    pygame.display.set_caption(f"selfplay: {game.version_tag} against {agent_name}")
    pygame.font.init()
    font = pygame.font.Font(None, INFO_HEIGHT * 2 // 3)
    clock = pygame.time.Clock()
    board = screen.subsurface(pygame.Rect(0, 0, width, board_height))
    typed, note = "", "click a cell or type a move and press Enter; Ctrl+Z undo, Ctrl+N new, Ctrl+S swap, Esc quit"
    thinking: Future | None = None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent")
    frame = 0
    try:
        while max_frames is None or frame < max_frames:
            frame += 1
            for event in pygame.event.get():
                if event.type == pygame.QUIT:
                    return
                if thinking is not None:  # the agent is moving: only quitting is possible
                    if event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE:
                        return
                    continue
                if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
                    cell = cell_at(game, session.state, (width, board_height), event.pos)
                    action = None if cell is None else session.action_at(*cell)
                    if action is not None:
                        session.play(action)
                        note = session.describe_last(agent_name)
                    elif session.human_to_move and cell is not None:
                        note = "no single move there; type the move instead"
                elif event.type == pygame.KEYDOWN:
                    ctrl = event.mod & pygame.KMOD_CTRL
                    if event.key == pygame.K_ESCAPE:
                        if not typed:
                            return
                        typed = ""
                    elif ctrl and event.key == pygame.K_z:
                        note = "took back your last move" if session.undo() else "nothing to take back"
                    elif ctrl and event.key in (pygame.K_n, pygame.K_s):
                        session.restart(swap=event.key == pygame.K_s)
                        note = f"new game: you are player {session.human}"
                    elif event.key in (pygame.K_RETURN, pygame.K_KP_ENTER):
                        try:
                            session.play_text(typed)
                            note = session.describe_last(agent_name)
                        except (GameError, PlayError) as e:
                            note = str(e)
                        typed = ""
                    elif event.key == pygame.K_BACKSPACE:
                        typed = typed[:-1]
                    elif event.unicode and event.unicode.isprintable() and not ctrl:
                        typed += event.unicode
            if thinking is None and not session.over and not session.human_to_move:
                thinking = pool.submit(session.think)
            elif thinking is not None and thinking.done():
                session.commit(*thinking.result())
                thinking, note = None, session.describe_last(agent_name)
            elif thinking is None and (forced := session.forced_move()) is not None and session.game.cells_fn is not None:
                if not any(session.action_at(r, c) == forced for r, c in _cells(game, session.state)):
                    session.play(forced)  # a move no click can make (a pass): play it for the person
                    note = f"you had to play {game.action_to_text(forced)}"

            draw(game, session.state, board)
            line = f"> {typed}" if typed else ("thinking..." if thinking else (session.result() + " " + note if session.over else note))
            strip = pygame.Rect(0, board_height, width, INFO_HEIGHT)
            screen.fill((44, 44, 44), strip)
            text = font.render(line, True, (230, 230, 230))
            screen.blit(text, text.get_rect(midleft=(8, strip.centery)))
            pygame.display.flip()
            clock.tick(fps)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        pygame.display.quit()


def _cells(game: Game, state: np.ndarray) -> Iterable[tuple[int, int]]:
    rows, cols = game.cells_fn(game.params, state).shape
    return ((r, c) for r in range(rows) for c in range(cols))


# ------------------------------------------------------------------------------ the command


def load_opponent(spec: str, game_name: str | None, options: list[str] | None, visits: int, device: str = "cpu") -> tuple[Game, Agent]:
    """The game and the agent ``spec`` names (:func:`selfplay.evaluation.agents.load_agent`). A checkpoint
    records its game, so ``game_name`` may then be left out; a baseline or ONNX file needs it."""
    path = Path(os.path.expanduser(spec))
    if path.suffix in (".json", ".safetensors") or path.is_dir():
        from .analyze import load_game_and_evaluator

        namespace = argparse.Namespace(checkpoint=str(path), game=game_name, option=options, device=device, threads=1,
                                       require_value=visits > 0)  # a brain without a value plays its raw policy
        game, evaluator = load_game_and_evaluator(namespace)
        label = path.name if path.is_dir() else f"{path.parent.name}/{path.stem}"
        return game, NetworkAgent(game, evaluator, visits, name=f"{label}@{visits}")
    if not game_name:
        raise PlayError(f"agent {spec!r} does not say which game it plays; name the game: selfplay play GAME --agent {spec}")
    game = games.make(game_name, **games.parse_options(options))
    return game, load_agent(spec, game, visits=visits, device=device)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("game", nargs="?", help="game name (optional when --agent is a checkpoint)")
    parser.add_argument("--agent", default="greedy", help=f"your opponent: {SPEC_HELP} (default greedy)")
    parser.add_argument("--visits", type=integer(0), default=200, help="search visits per move of a network agent (0: raw policy)")
    parser.add_argument("--second", action="store_true", help="let the agent move first")
    parser.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="game option (repeatable)")
    parser.add_argument("--device", default="cpu", help="where a network runs: cpu, cuda, ...")
    parser.add_argument("--seed", type=integer(0), default=0, help="the agent's random seed")
    parser.add_argument("--size", type=integer(120, 4096), nargs=2, metavar=("W", "H"), help="board size in pixels")


def main(args: argparse.Namespace) -> int:
    game, agent = load_opponent(args.agent, args.game, args.option, args.visits, args.device)
    session = PlaySession(game, agent, human=1 if args.second else 0, seed=args.seed)
    run_window(session, agent_name=agent.name, size=tuple(args.size) if args.size else None)
    return 0
