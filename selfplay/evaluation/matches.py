"""Matches between two agents, as ``selfplay arena A B`` plays them (:mod:`selfplay.tools.arena_cmd`).

:func:`play_match` plays ``num_games`` games between agents A and B, many at once: a pool of
``batch_size`` games is in progress, and at every ply each agent's ``act`` is called once, over
all the games in which it is to move (so a network agent's evaluator sees big batches). A finished
game's slot takes the next game.

* Colours: game ``i`` gives A the seat (player, team) ``i % 2``, so A plays both sides equally.
  Seats, not move order: in games whose turns do not alternate (the arena game) ``to_play``
  decides who acts, at every ply.
* Openings: with ``opening_moves = k``, each pair of games (``2j``, ``2j + 1``) starts from the
  same ``k`` uniformly random plies (never one that ends the game), played once with each
  colour. Deterministic agents otherwise replay the same two games.
* Randomness: every move of game ``i`` at ply ``t`` draws from its own seed, a hash of (``seed``,
  ``i``, ``t``), so a game's course depends only on ``seed`` and ``i``, never on which games
  share a batch or on ``batch_size``.
* Early stop: once the SPRT (if given) accepts a hypothesis, or (``stop_when_decided``) once
  the games left cannot change which agent scores more, no new game starts; those in progress
  are finished and counted.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numba import njit, types

from games.core import KERNEL_TYPES, Game, GameError
from games.registry import game_from_tag

from .agents import Agent, AgentError
from .elo import SPRT, elo_from_score, elo_interval

__all__ = ["ArenaError", "GameRecord", "MatchResult", "play_match", "resolve_game"]


class ArenaError(ValueError):
    """Bad input to a match or to ``selfplay arena``: one line."""


@dataclass(frozen=True)
class GameRecord:
    """One finished game of a match."""

    index: int  # game number in the match; games 2j and 2j + 1 share an opening
    a_player: int  # the seat (player, team) agent A played: index % 2
    a_first: bool  # A's side made the first move after the opening
    result: float  # A's final score in [-1, 1] (outcome of a_player): > 0 win, 0 draw, < 0 loss
    plies: int  # moves played, opening included


@dataclass(frozen=True)
class MatchResult:
    """A match between A and B; every count and score from A's point of view."""

    agent_a: str
    agent_b: str
    wins: int
    draws: int
    losses: int
    games: int  # games played (fewer than asked after an early stop)
    score: float  # (wins + draws / 2) / games
    elo_diff: float  # A's Elo minus B's (selfplay.evaluation.elo.elo_from_score)
    elo_ci95: tuple[float, float]  # 95% interval of elo_diff (selfplay.evaluation.elo.elo_interval)
    sprt: str | None  # "H1" (A is elo1 stronger), "H0" (elo0), or None (undecided / no test)
    llr: float | None  # the SPRT's log-likelihood ratio over all games played (None without a test)
    stopped: str | None  # why it stopped early: "sprt", "decided", or None (all games played)
    records: tuple[GameRecord, ...] = field(repr=False)  # in the order the games finished
    sprt_test: SPRT | None = None  # the test that was run, if any

    def summary(self) -> str:
        """One line, e.g. ``A vs B: W/D/L 54/6/40 in 100 games, score 57.0%, Elo +49 (95% -17
        .. +115), SPRT(0, 50): H1, LLR +3.05 (bounds -2.94, +2.94)``."""
        lo, hi = self.elo_ci95
        line = (
            f"{self.agent_a} vs {self.agent_b}: W/D/L {self.wins}/{self.draws}/{self.losses} in {self.games} games, "
            f"score {100 * self.score:.1f}%, Elo {self.elo_diff:+.0f} (95% {lo:+.0f} .. {hi:+.0f})"
        )
        if self.sprt_test is not None and self.llr is not None:
            t = self.sprt_test
            lower, upper = t.bounds
            line += (
                f", SPRT({t.elo0:g}, {t.elo1:g}): {self.sprt or 'undecided'}, "
                f"LLR {self.llr:+.2f} (bounds {lower:+.2f}, {upper:+.2f})"
            )
        if self.stopped == "decided":
            line += ", stopped: the games left could not change the winner"
        return line

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["elo_ci95"] = list(self.elo_ci95)
        out["records"] = [asdict(r) for r in self.records]
        out["sprt_test"] = None if self.sprt_test is None else asdict(self.sprt_test)
        return out


# ------------------------------------------------------------------------------ kernels


@njit(
    types.void(*KERNEL_TYPES, types.int64[::1], types.int64[:, ::1], types.boolean[::1], types.int64[::1]),
    cache=True,
)
def _status(legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, states, terminal, player):
    """Per state: ``terminal`` (bool[P]) and the seat to move (int64[P], -1 when terminal)."""
    for g in range(states.shape[0]):
        terminal[g] = is_terminal(params, states[g])
        player[g] = -1 if terminal[g] else to_play(params, states[g])


@njit(
    types.int64(*KERNEL_TYPES, types.int64[::1], types.int64[:, ::1], types.int64[::1], types.int64[::1], types.int64),
    cache=True,
)
def _apply(legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, states, rows, actions, num_actions):
    """Play ``actions[i]`` in ``states[rows[i]]``; return the first ``i`` whose action is
    illegal (nothing after it is played), or -1."""
    mask = np.zeros(num_actions, dtype=np.bool_)
    for i in range(rows.shape[0]):
        state = states[rows[i]]
        a = actions[i]
        if a < 0 or a >= num_actions:
            return i
        legal_mask(params, state, mask)
        if not mask[a]:
            return i
        apply_action(params, state, a)
    return -1


_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(*columns: Any) -> np.ndarray:
    """int64[G]: a splitmix64 hash of integer columns (broadcast), one seed per row."""
    with np.errstate(over="ignore"):
        h = np.zeros(np.broadcast(*columns).shape, np.uint64)
        for c in columns:
            h = (h ^ np.asarray(c).astype(np.uint64)) + np.uint64(0x9E3779B97F4A7C15)
            h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(31)
    return h.view(np.int64)


_OPENING, _MOVE = 1, 2  # hash domains: opening moves and agents' moves draw from separate seeds


def _opening(game: Game, moves: int, seed: int, pair: int) -> tuple[np.ndarray, int]:
    """(state int64[S], plies played): ``moves`` uniformly random plies from the start, each
    among the moves that do not end the game (stopping early if every move would)."""
    rng = np.random.default_rng(int(_mix([seed], [_OPENING], [pair])[0]) & 0x7FFFFFFFFFFFFFFF)
    state = game.initial_state()
    for ply in range(moves):
        options = [s for s in (game.next_state(state, a) for a in game.legal_actions(state)) if not game.is_terminal(s)]
        if not options:
            return state, ply
        state = options[int(rng.integers(len(options)))]
    return state, moves


# ------------------------------------------------------------------------------ playing


def play_match(
    game: Game,
    agent_a: Agent,
    agent_b: Agent,
    num_games: int,
    seed: int = 0,
    sprt: Any = None,
    progress: bool = False,
    opening_moves: int = 0,
    *,
    batch_size: int | None = None,
    stop_when_decided: bool = True,
) -> MatchResult:
    """Play up to ``num_games`` games between ``agent_a`` and ``agent_b`` (see the module
    docstring for colours, openings, seeds and early stops).

    ``sprt``: None, :class:`selfplay.evaluation.elo.SPRT`, or ``(elo0, elo1[, alpha, beta])``.
    ``batch_size``: games in progress at once (default ``min(num_games, 64)``); larger batches
    feed networks better, smaller ones let an early stop save more games. ``progress``: a tqdm
    bar on stderr.
    """
    if game.num_players != 2:
        raise GameError(f"{game.name}: a match needs a two-player game, not {game.num_players} players")
    if not (isinstance(num_games, (int, np.integer)) and num_games >= 1):
        raise ArenaError(f"num_games must be an integer >= 1, got {num_games!r}")
    if not (isinstance(opening_moves, (int, np.integer)) and opening_moves >= 0):
        raise ArenaError(f"opening_moves must be an integer >= 0, got {opening_moves!r}")
    test = SPRT.of(sprt)
    seed = int(seed) % 2**64  # any integer; the hashes below work on 64 bits
    pool_size = int(batch_size or min(num_games, 64))
    if pool_size < 1:
        raise ArenaError(f"batch_size must be >= 1, got {batch_size}")
    pool_size = min(pool_size, int(num_games))
    agents = (agent_a, agent_b)

    S = game.state_size
    states = np.zeros((pool_size, S), np.int64)
    index = np.full(pool_size, -1, np.int64)  # game number in each slot; -1: empty
    plies = np.zeros(pool_size, np.int64)
    a_first = np.zeros(pool_size, np.bool_)
    started = np.zeros(pool_size, np.bool_)  # an agent has moved (for a_first)
    to_move = np.zeros(pool_size, np.int64)  # seat to move in each live game
    openings: dict[int, tuple[np.ndarray, int]] = {}

    records: list[GameRecord] = []
    counts = np.zeros(3, np.int64)  # A's wins, draws, losses
    next_game, stopped, decision, llr = 0, None, None, None
    bar = _progress(num_games, agents) if progress else None
    try:
        while True:
            if stopped is None:  # fill empty slots with new games
                for slot in np.flatnonzero(index < 0):
                    if next_game >= num_games:
                        break
                    pair = next_game // 2
                    if pair not in openings:
                        openings = {pair: _opening(game, int(opening_moves), seed, pair)}
                    states[slot], plies[slot] = openings[pair]
                    index[slot], started[slot] = next_game, False
                    next_game += 1
            live = np.flatnonzero(index >= 0)
            if live.size == 0:
                break
            terminal = np.zeros(live.size, np.bool_)
            seat = np.zeros(live.size, np.int64)
            _status(*game.kernels, game.params, states[live], terminal, seat)
            to_move[live] = seat
            finished = live[terminal]
            for slot in finished[np.argsort(index[finished])]:  # record in game order
                i = int(index[slot])
                a_player = i % 2
                result = float(game.outcome_fn(game.params, states[slot], a_player))
                records.append(GameRecord(i, a_player, bool(a_first[slot]), result, int(plies[slot])))
                counts[0 if result > 0 else 1 if result == 0 else 2] += 1
                index[slot] = -1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"W/D/L {counts[0]}/{counts[1]}/{counts[2]}", refresh=False)
            if finished.size and stopped is None:
                if test is not None and decision is None:
                    llr, decision = test.decide(*counts)
                    if decision is not None:
                        stopped = "sprt"
                if stopped is None and stop_when_decided and _decided(counts, num_games):
                    stopped = "decided"
            live = np.flatnonzero(index >= 0)
            if live.size == 0:
                continue  # refill (or finish)
            a_seat = index[live] % 2
            first = ~started[live]
            a_first[live[first]] = to_move[live[first]] == a_seat[first]
            started[live] = True
            for who, rows in ((0, live[to_move[live] == a_seat]), (1, live[to_move[live] != a_seat])):
                if rows.size:
                    _move(game, agents[who], states, rows, index, plies, seed)
            plies[live] += 1
    finally:
        if bar is not None:
            bar.close()
    if test is not None:  # the LLR of every game counted; the decision is the one that stopped the match
        llr, last = test.decide(*counts)
        decision = decision or last
    wins, draws, losses = (int(c) for c in counts)
    games_played = wins + draws + losses
    score = (wins + draws / 2) / games_played
    return MatchResult(
        agent_a=agent_a.name,
        agent_b=agent_b.name,
        wins=wins,
        draws=draws,
        losses=losses,
        games=games_played,
        score=score,
        elo_diff=elo_from_score(score, games_played),
        elo_ci95=elo_interval(wins, draws, losses),
        sprt=decision,
        llr=llr,
        stopped=stopped,
        records=tuple(records),
        sprt_test=test,
    )


def _move(
    game: Game, agent: Agent, states: np.ndarray, rows: np.ndarray, index: np.ndarray, plies: np.ndarray, seed: int
) -> None:
    """One batched ``act`` of ``agent`` over the games in ``rows``, then play its moves."""
    seeds = _mix(seed, _MOVE, index[rows], plies[rows])
    actions = np.asarray(agent.act(states[rows].copy(), plies[rows].copy(), seeds))
    if actions.shape != rows.shape or not np.issubdtype(actions.dtype, np.integer):
        got = f"{actions.dtype}{list(actions.shape)}"
        raise AgentError(f"agent {agent.name!r} returned actions {got}, expected int64[{rows.size}]")
    actions = np.ascontiguousarray(actions, dtype=np.int64)
    bad = _apply(*game.kernels, game.params, states, np.ascontiguousarray(rows), actions, game.num_actions)
    if bad >= 0:
        raise AgentError(
            f"agent {agent.name!r} played illegal action {int(actions[bad])} in game {int(index[rows[bad]])} "
            f"(ply {int(plies[rows[bad]])})"
        )


def _decided(counts: np.ndarray, num_games: int) -> bool:
    """Whether the games left cannot change which agent scores more (or that it is a tie)."""
    wins, draws, losses = (int(c) for c in counts)
    left = num_games - wins - draws - losses
    # in half points: A ahead by more than the games left can undo, or the reverse
    margin = 2 * wins + draws - (2 * losses + draws)
    return abs(margin) > 2 * left


def _progress(total: int, agents: tuple[Agent, Agent]):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"{agents[0].name} vs {agents[1].name}", unit="game", file=sys.stderr, leave=False)


def resolve_game(name: str | None, options: dict[str, Any], specs: list[str]) -> Game:
    """The game of a match: ``name`` with ``options``, or the game recorded in the first
    checkpoint among ``specs`` (its version tag and options) when ``name`` is None."""
    import games

    if name is not None:
        return games.make(name, **options)
    for spec in specs:
        checkpoint = _checkpoint_game(spec)
        if checkpoint is not None:
            tag, saved = checkpoint
            return game_from_tag(tag, {**(saved or {}), **options}, spec)  # a built-in, plugin or external game
    raise GameError("no game given: use --game NAME (or give a checkpoint agent, whose game is used)")


def _checkpoint_game(spec: str) -> tuple[str, dict | None] | None:
    """(version tag, options) of the checkpoint ``spec`` names, or None if it names none."""
    from pathlib import Path

    path = Path(spec).expanduser()
    if spec in ("random", "greedy") or spec.startswith("mcts") or not path.exists():
        return None
    from export.contract import is_brain, read_manifest

    if is_brain(path):  # an exported brain records its game in its manifest
        manifest = read_manifest(path)
        return manifest.game["tag"], manifest.game.get("options")
    if path.suffix == ".onnx":  # a bare evaluator model records no game
        return None
    from ..model.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path, verify=False)
    return checkpoint.game, checkpoint.game_options
