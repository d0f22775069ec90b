"""The pygame window of ``selfplay play``: a :class:`~selfplay.tools.session.PlaySession` on screen.

Layout: the board and its caption (``games.render.draw``) at the top left, at
``games.render.default_size`` unless ``size`` says otherwise; the side panel on the right (the
status: whose turn, thinking, the result; the agent and its level; the analysis; the moves;
the keys); a strip along the bottom for typed moves and notes.

Two kinds of work run on daemon threads (:class:`~selfplay.tools.job.Job`), so the window stays
live and a closed window never waits for them: the agent's move, stopped at ``move_time``
seconds, and the overlay's analysis, :class:`~selfplay.evaluation.analysis.AnalysisEngine` on
the position shown. Each
job is keyed by the position (and agent) it works on: a result for a position no longer shown
is dropped, and a job whose position went away is told to stop (the search polls for it
between steps, every few milliseconds).

Keys: click a cell to move (Connect Four: anywhere in a column); type a move and Enter;
Space: the move with no cell (wait, pass); Tab: the analysis overlay; Up/Down: the agent's
level; Ctrl+A: analysis only (you move for both sides); Ctrl+Z: undo; Ctrl+N: new game; Ctrl+S:
new game with sides swapped; Esc: clear the typing, or quit.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from games.core import GameError
from games.render import (
    BoardGeometry,
    board_geometry,
    default_size,
    draw,
    draw_last_move,
    draw_preview,
    player_name,
)
from search import RolloutEvaluator

from ..evaluation.agents import NetworkAgent
from ..evaluation.analysis import AnalysisEngine
from .job import Job
from .play_widgets import DIM, ERROR, GOOD, TEXT, PanelLine, draw_analysis, draw_lines, draw_refusal, draw_top_moves
from .session import Difficulty, PlayError, PlaySession, check_screenshot_moves

__all__ = ["INFO_HEIGHT", "PANEL_MIN_HEIGHT", "PANEL_WIDTH", "PlayWindow"]

PANEL_WIDTH = 300  # pixels of the side panel
PANEL_MIN_HEIGHT = 460  # the window is at least this tall above the strip, for the panel
INFO_HEIGHT = 30  # pixels of the strip along the bottom: typing and notes
REFUSAL_SECONDS = 0.8  # how long a refused click stays marked
JOIN_SECONDS = 0.4  # how long closing waits for each stopped job before it leaves it behind
BACKGROUND, PANEL = (28, 28, 28), (38, 38, 40)
KEYS = (
    "click: move    Space: wait or pass",
    "Enter: play the typed move",
    "Tab: analysis    Up/Down: level",
    "Ctrl+A: both sides    Ctrl+Z: undo",
    "Ctrl+N: new    Ctrl+S: swap    Esc: quit",
)


class PlayWindow:
    """``session`` in a pygame window. ``difficulty``: the levels Up/Down step through (default:
    the session's agent alone); ``overlay``: start with the analysis shown; ``analysis_visits``:
    its search size; ``move_time``: the most seconds the agent thinks; ``size``: the board's
    ``(width, height)`` in pixels, caption included. :meth:`run` opens the window."""

    def __init__(
        self,
        session: PlaySession,
        agent_name: str | None = None,
        difficulty: Difficulty | None = None,
        overlay: bool = False,
        analysis_visits: int = 200,
        move_time: float = 10.0,
        size: tuple[int, int] | None = None,
        fps: float = 30,
    ) -> None:
        self.session = session
        self.difficulty = difficulty or Difficulty.fixed(session.agent)
        self.agent_name = agent_name
        self.overlay = overlay
        self.analysis_visits = analysis_visits
        self.move_time = move_time
        self.fps = fps
        self.board_size = size or default_size(session.game)
        self.typed = ""
        self.note, self.note_is_error = "click a cell or type a move; Tab: analysis; Esc: quit", False
        self.hover: tuple[int, int] | None = None
        self.refused: tuple[tuple[int, int], float] | None = None  # (cell, until)
        self.thinking: Job | None = None
        self.analyzing: Job | None = None
        self.analysis: tuple[Any, dict[str, Any]] | None = None  # (key, response) of the last analysis
        self._failed: Any = None  # the key the agent failed on: not retried
        self._failed_analysis: Any = None  # the key the analysis failed on: not retried
        self._engines: dict[int, AnalysisEngine] = {}
        self.screen = None

    # ------------------------------------------------------------------ the loop
    def run(self, max_frames: int | None = None, screenshot: str | Path | None = None, after_moves: int = 0) -> None:
        """Play until the window is closed or Esc (or ``max_frames`` frames, for tests). With
        ``screenshot``: save the window's picture there once ``after_moves`` moves are played
        and nothing is left to wait for (the agent's move, the overlay's analysis), then close;
        a :class:`PlayError` once those moves need one of the person's (nobody clicks)."""
        self.open()
        try:
            frame = 0
            while max_frames is None or frame < max_frames:
                frame += 1
                if not self.frame():
                    return
                if screenshot is not None and self.settled(after_moves):
                    self.save(screenshot)
                    return
                if screenshot is not None:  # the agent's moves can hand the turn over before the count
                    check_screenshot_moves(self.session, after_moves)
                self.clock.tick(self.fps)
        finally:
            self.close()

    def open(self) -> None:
        """Open the window (:meth:`run` does; tests step :meth:`frame` themselves)."""
        import pygame

        width, height = self.board_size
        try:
            pygame.display.init()
            self.screen = pygame.display.set_mode((width + PANEL_WIDTH, max(height, PANEL_MIN_HEIGHT) + INFO_HEIGHT))
        except pygame.error as e:
            raise PlayError(f"cannot open a window ({e}); `selfplay play-text` plays in the terminal") from None
        self._set_caption()
        self.clock = pygame.time.Clock()
        self.board = self.screen.subsurface(pygame.Rect(0, 0, width, height))

    def frame(self) -> bool:
        """One frame: handle the waiting events, start or finish background work, draw and show.
        False, before drawing, once the window is to close."""
        import pygame

        if not self._handle_events(pygame.event.get()):
            return False
        self._update()
        self._draw()
        pygame.display.flip()
        return True

    def close(self) -> None:
        """Stop the background work and close the window. The jobs are told to stop and given a
        moment each; their threads are daemons, so one still inside a long evaluator call never
        holds up the process's exit."""
        import pygame

        for job in (self.thinking, self.analyzing):
            if job is not None:
                job.cancel()
        for job in (self.thinking, self.analyzing):
            if job is not None:
                job.join(JOIN_SECONDS)
        pygame.display.quit()

    def _set_caption(self) -> None:
        import pygame

        pygame.display.set_caption(f"selfplay: {self.session.game.version_tag} against {self.name}")

    def save(self, path: str | Path) -> None:
        """Save the window's picture (the display surface, as shown) to ``path`` (PNG by its name)."""
        import pygame

        try:
            pygame.image.save(self.screen, str(path))
        except (pygame.error, OSError) as e:
            raise PlayError(f"cannot save the screenshot {path}: {e}") from None

    def settled(self, after_moves: int = 0) -> bool:
        """Whether a screenshot shows what was asked: enough moves, and neither the agent's move
        nor the overlay's analysis still to come."""
        s = self.session
        if len(s.actions) < after_moves and not s.over:
            return False
        if self.thinking is not None or s.agent_to_move:
            return False
        return not self.overlay or self.shown_analysis() is not None

    @property
    def name(self) -> str:
        """The agent's name, as shown."""
        return self.agent_name or self.session.agent.name

    @property
    def geometry(self) -> BoardGeometry:
        return board_geometry(self.session.game, self.session.state, self.board_size)

    # ------------------------------------------------------------------ input
    def _handle_events(self, events) -> bool:
        """Handle ``events`` in order; False once the window is to close."""
        import pygame

        for event in events:
            if event.type == pygame.QUIT:
                return False
            if event.type == pygame.MOUSEMOTION:
                self.hover = self.geometry.cell_at(event.pos)
            elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
                self._click(event.pos)
            elif event.type == pygame.KEYDOWN and not self._key(event):
                return False
        return True

    def _click(self, pos: tuple[int, int]) -> None:
        cell = self.geometry.cell_at(pos)
        if cell is None:
            return
        s = self.session
        if s.over:
            self._refuse(cell, f"the game is over ({s.result()}); Ctrl+N starts a new one")
        elif not s.human_to_move:
            self._refuse(cell, f"{self.name} is thinking: wait for its move")
        elif (action := s.action_at(*cell)) is None:
            self._refuse(cell, self._why_not())
        else:
            self._play(lambda: s.play(action))

    def _why_not(self) -> str:
        """Why a click on the board meant no move, with what to do instead."""
        s = self.session
        free = [a for a in s.game.legal_actions(s.state) if s.cells()[a, 0] < 0]
        hint = f"; Space plays {s.game.action_to_text(free[0])}" if len(free) == 1 else ""
        return f"illegal: no legal move of yours on that cell{hint}"

    def _refuse(self, cell: tuple[int, int], why: str) -> None:
        self.refused = (cell, time.monotonic() + REFUSAL_SECONDS)
        self._say(why, error=True)

    def _play(self, move: Callable[[], None]) -> None:
        """Play the person's ``move`` (a call on the session), or say why it is refused."""
        try:
            move()
        except (GameError, PlayError) as e:
            self._say(str(e), error=True)
            return
        self.refused = None
        self._say(self.session.describe_last(self.name))

    def _say(self, text: str, error: bool = False) -> None:
        self.note, self.note_is_error = text, error

    def _key(self, event) -> bool:
        """Handle a key press; False once the window is to close."""
        import pygame

        key, ctrl = event.key, bool(event.mod & pygame.KMOD_CTRL)
        s = self.session
        if key == pygame.K_ESCAPE:
            if not self.typed:
                return False
            self.typed = ""
        elif ctrl and key == pygame.K_z:
            self._say("took back the last move" if s.undo() else "nothing to take back")
        elif ctrl and key in (pygame.K_n, pygame.K_s):
            s.restart(swap=key == pygame.K_s)
            self._say("new game: " + self._sides())
        elif ctrl and key == pygame.K_a:
            s.both_sides = not s.both_sides
            self._say(self._sides())
        elif key == pygame.K_TAB:
            self.overlay = not self.overlay
            self._say(f"analysis {'on' if self.overlay else 'off'}")
        elif key in (pygame.K_UP, pygame.K_DOWN):
            self._change_level(1 if key == pygame.K_UP else -1)
        elif key in (pygame.K_RETURN, pygame.K_KP_ENTER):
            if self.typed.strip():
                self._play(lambda text=self.typed: s.play_text(text))
            self.typed = ""
        elif key == pygame.K_SPACE and not self.typed:
            self._play_cell_free_move()
        elif key == pygame.K_BACKSPACE:
            self.typed = self.typed[:-1]
        elif event.unicode and event.unicode.isprintable() and not ctrl:
            self.typed += event.unicode
        return True

    def _play_cell_free_move(self) -> None:
        """Space: the person's one legal move that acts on no cell (wait, pass)."""
        s = self.session
        if not s.human_to_move:
            self._say("not your turn" if not s.over else "the game is over", error=True)
            return
        free = [int(a) for a in s.game.legal_actions(s.state) if s.cells()[a, 0] < 0]
        if len(free) != 1:
            self._say("no move without a cell here (wait, pass): click a cell", error=True)
            return
        self._play(lambda: s.play(free[0]))

    def _change_level(self, delta: int) -> None:
        if not self.difficulty.step(delta):
            self._say(f"{self.difficulty.label}: the {'strongest' if delta > 0 else 'weakest'} level", error=True)
            return
        try:
            self.session.agent = self.difficulty.agent
        except ValueError as e:  # a ladder level that cannot be loaded
            self.difficulty.step(-delta)
            self._say(f"cannot load that level: {e}", error=True)
            return
        self._set_caption()
        self._say(f"agent: {self.difficulty.label}")

    def _sides(self) -> str:
        s = self.session
        if s.both_sides:
            return "analysis only: you move for both sides"
        return f"you are {player_name(s.game, s.human)}, {self.name} is {player_name(s.game, 1 - s.human)}"

    # ------------------------------------------------------------------ background work
    def _position_key(self) -> tuple:
        """What a job's result depends on: the moves so far (hence the position) and the agent."""
        return tuple(self.session.actions), id(self.session.agent)

    def _update(self) -> None:
        """Start, finish or drop background work; play a forced move for the person."""
        s = self.session
        key = self._position_key()
        if self.thinking is not None and (self.thinking.key != key or not s.agent_to_move):
            self.thinking.cancel()  # the position or the agent changed: its move is moot
            self.thinking = None
        if self.thinking is not None and self.thinking.done:
            self._finish_thinking()
        if self.thinking is None and s.agent_to_move and self._failed != key:
            self.thinking = Job(s.thinker(), key, self.move_time)
        if (forced := s.forced_move()) is not None:
            self._play(lambda: s.play(forced))
            self._say(f"{self.session.describe_last(self.name)}: the only move")
        self._update_analysis()

    def _finish_thinking(self) -> None:
        job, self.thinking = self.thinking, None
        if job.error is not None:
            self._failed = job.key
            self._say(f"{self.name} failed to move: {job.error}", error=True)
            return
        self.session.commit(*job.result)
        self._say(self.session.describe_last(self.name))

    def _update_analysis(self) -> None:
        key = self._position_key()
        job = self.analyzing
        if job is not None and (job.key != key or not self.overlay):
            job.cancel()
            self.analyzing = job = None
        if job is not None and job.done:
            self.analyzing = None
            problem = job.error or (job.result or {}).get("error")
            if problem:
                self._failed_analysis = job.key  # not retried: the same position would fail again
                self._say(f"the analysis failed: {problem}", error=True)
            else:
                self.analysis = job.key, job.result
        wanted = self.overlay and self.analyzing is None and self._failed_analysis != key
        if wanted and self.shown_analysis() is None:
            engine = self._engine()
            query = {"id": 0, "moves": list(self.session.actions), "visits": self.analysis_visits}
            self.analyzing = Job(lambda stop: engine.analyze([query], stop=stop)[0], key)

    def shown_analysis(self) -> dict[str, Any] | None:
        """The analysis (an ``AnalysisEngine`` response) of the position shown, once it is done."""
        if self.analysis is not None and self.analysis[0] == self._position_key():
            return self.analysis[1]
        return None

    def _engine(self) -> AnalysisEngine:
        """``selfplay analyze``'s engine on the agent's network (pure MCTS for an agent without one)."""
        agent = self.session.agent
        evaluator = agent.evaluator if isinstance(agent, NetworkAgent) else None
        key = id(evaluator)
        if key not in self._engines:
            self._engines[key] = AnalysisEngine(
                self.session.game,
                evaluator if evaluator is not None else RolloutEvaluator(),
                default_visits=self.analysis_visits,
                max_visits=max(self.analysis_visits, 100_000),
            )
        return self._engines[key]

    # ------------------------------------------------------------------ drawing
    def _draw(self) -> None:
        import pygame

        s = self.session
        game, state, geometry = s.game, s.state, self.geometry
        self.screen.fill(BACKGROUND)
        draw(game, state, self.board)
        if (cell := s.last_cell()) is not None:
            draw_last_move(game, state, self.board, cell)
        analysis = self.shown_analysis() if self.overlay else None
        if analysis is not None and not analysis["terminal"]:
            draw_top_moves(self.board, geometry, game, s.cells(), analysis)
        if (action := self._hovered_action()) is not None:
            row, col = s.cells()[action]
            draw_preview(game, state, self.board, (int(row), int(col)))  # where it lands
        if self.refused is not None and time.monotonic() < self.refused[1]:
            draw_refusal(self.board, geometry, self.refused[0])
        width, height = self.screen.get_size()
        panel = pygame.Rect(self.board_size[0], 0, PANEL_WIDTH, height - INFO_HEIGHT)
        self.screen.fill(PANEL, panel)
        self._draw_panel(panel.inflate(-24, -20), analysis)
        self._draw_strip(pygame.Rect(0, height - INFO_HEIGHT, width, INFO_HEIGHT))

    def _hovered_action(self) -> int | None:
        """The move a click would play where the mouse is, if the person may click now."""
        if self.hover is None or self.thinking is not None:
            return None
        return self.session.action_at(*self.hover)

    def _draw_panel(self, rect, analysis: dict[str, Any] | None) -> None:
        import pygame

        s = self.session
        y = draw_lines(self.screen, rect, [
            PanelLine(f"{s.game.name}: {self._sides()}", DIM, 18),
            PanelLine(*self._status(), size=28, bold=True),
            PanelLine(f"agent: {self.difficulty.label}" + ("   (Up/Down)" if len(self.difficulty.labels) > 1 else ""), TEXT, 20),
            PanelLine(size=8),
        ])
        if self.overlay:
            agent = None if s.both_sides else (1 - s.human, self.name)
            y = draw_analysis(self.screen, pygame.Rect(rect.x, y, rect.width, rect.bottom - y), s.game, analysis,
                              self.analysis_visits, agent)
        keys = [PanelLine(k, DIM, 16) for k in KEYS]
        keys_top = rect.bottom - len(keys) * 16
        moves = self._move_lines(max((keys_top - y - 30) // 18, 0))
        draw_lines(self.screen, pygame.Rect(rect.x, y, rect.width, keys_top - y), moves)
        draw_lines(self.screen, pygame.Rect(rect.x, keys_top, rect.width, rect.bottom - keys_top), keys)

    def _status(self) -> tuple[str, tuple[int, int, int]]:
        """The panel's headline and its colour: the result, who is to move, or the agent thinking."""
        s = self.session
        if s.over:
            outcome = s.result()
            return outcome, GOOD if outcome == "You win." else ERROR if outcome == "You lose." else TEXT
        if self._failed == self._position_key() and s.agent_to_move:
            return f"{self.name} failed", ERROR
        if self.thinking is not None:
            dots = "." * (1 + int(self.thinking.elapsed * 3) % 3)
            return f"thinking{dots} {self.thinking.elapsed:.1f}/{self.move_time:g} s", (250, 210, 90)
        if s.both_sides:
            return f"{player_name(s.game, s.game.to_play(s.state))} to move", TEXT
        return "your move", GOOD

    def _move_lines(self, room: int) -> list[PanelLine]:
        """The last moves that fit in ``room`` lines, under a heading."""
        s = self.session
        if not s.actions or room < 2:
            return []
        lines = []
        for ply in range(max(len(s.actions) - (room - 1), 0), len(s.actions)):
            who = s.mover_name(ply)
            who = self.name if who == "agent" else who
            lines.append(PanelLine(f"{ply + 1}. {who}: {s.game.action_to_text(s.actions[ply])}", TEXT, 18))
        return [PanelLine(f"moves ({len(s.actions)})", DIM, 18), *lines]

    def _draw_strip(self, rect) -> None:
        """The bottom strip: what is typed, else the last note, else what a click would play."""
        s = self.session
        self.screen.fill((20, 20, 20), rect)
        if self.typed:
            text, colour = f"> {self.typed}_", TEXT
        elif (action := self._hovered_action()) is not None:
            text, colour = f"click plays {s.game.action_to_text(action)}", DIM
        else:
            text, colour = self.note, ERROR if self.note_is_error else TEXT
        draw_lines(self.screen, rect.inflate(-16, -8), [PanelLine(text, colour, 20)])
