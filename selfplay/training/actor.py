"""Self-play actors: B games at once, one batched network call per search step.

An :class:`Actor` keeps ``games_per_actor`` games in progress in one :class:`search.Search`. Each
search step sends one leaf of every game to the evaluator in one call, so the network sees
batches of B (the evaluator's batch is the number of games, not the number of simulations).
Finished games restart at once, so the batch stays full; a new network (:meth:`Actor.set_weights`)
takes over the games in progress, with fresh trees.

What a move does, per game:

* **Random openings**: with ``random_opening_moves = K`` a game starts after a uniformly random
  number (0 to K) of uniformly random moves, none of them learned. Self-play between strong
  players keeps to a few lines; openings put it in positions good play never reaches (after a
  blunder by either side), where the network must still play well.

* **Playout-cap randomization** (KataGo, Wu 2019): with ``fast_simulations > 0`` a move gets the
  full search (``search.num_simulations``) with probability ``full_search_prob`` and a fast one
  otherwise. Only full-search moves become training positions. Fast moves only advance the game,
  so cheap moves still yield whole games (value targets) while every policy target comes from a
  full search.
* **Resignation** (AlphaZero): from generation ``resign_from_generation`` on, the player to move
  resigns when the root value of a **full** search is below the threshold in force
  (:meth:`Actor.set_resign_threshold`; at first ``resign_value``). A fast, playout-capped search
  never resigns: a handful of simulations is too noisy to end a game on. In a
  ``resign_playout_fraction`` of games nobody resigns. The first time such a game would have seen a
  resignation is noted, and at the end a resignation by a player who did not lose counts as false.
  Played-out games also report their *record lows* (:attr:`SelfPlayStats.resign_samples`): each time
  a full search's root value fell below every earlier one in the game, that value and whether its
  player went on to avoid losing. They say, for any threshold, which games would have seen a
  resignation and whether the first one would have been false:
  :func:`selfplay.training.resign.calibrate_resign_threshold` picks the threshold from them.

A finished game gives one training position per full-search move: ``obs`` (``Game.encode`` of the
position, from the player to move), ``policy`` (the search's target) and ``value``, the game's
final score **for the player to move at that position** (``Game.returns(final)[player]``; a
resigned game scores -1 for the resigner and +1 for the other player).

An actor is driven by plain picklable messages (:mod:`selfplay.training.messages`): ``set_weights``
and ``play`` are the whole interface, so an actor process (:mod:`selfplay.training.processes`),
a Ray actor (:mod:`selfplay.training.ray_actors`) and an actor in the calling process run this
class unchanged.

League games (:class:`Pairings`, :meth:`Actor.set_pairings`). A league learner plays other
networks: each new game draws an opponent (``Pairings.names[k]`` with probability
``Pairings.probs[k]``; :data:`SELF` is self-play) and a seat for the learner. The batch stays one
search: at every step each leaf goes to the network of the player to move at its game's root
(:class:`_RoutedEvaluator`, one call per network present in the batch), so each side searches
with its own network. Trees of versus games are restarted after every move (a subtree built by
one side's network is no use to the other). Only the learner's own full-search moves become
training positions, and each finished versus game is reported in ``SelfPlayStats.results`` as
``[opponent name, learner's seat, learner's score in [-1, 1]]``.

This module does not import torch unless an actor is given torch weights.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

import games
from search import Search
from search.cache import EvaluationCache

from .messages import SCRIPT, SELF, ActorError, ActorSpec, Pairings, Positions, SelfPlayStats, Weights, is_script
from .weights import evaluator_from_weights

__all__ = ["Actor"]


class _CountingEvaluator:
    """Wraps an evaluator to count calls, positions and seconds."""

    def __init__(self, inner: Callable, stats: SelfPlayStats) -> None:
        self.inner = inner
        self.stats = stats
        self.per_game = bool(getattr(inner, "per_game", False))

    def __call__(self, obs: np.ndarray, mask: np.ndarray, *games: np.ndarray):
        start = time.perf_counter()
        out = self.inner(obs, mask, *games)
        self.stats.evaluator_seconds += time.perf_counter() - start
        self.stats.evaluator_calls += 1
        self.stats.evaluations += obs.shape[0]
        return out


class _RoutedEvaluator:
    """Several networks behind one batched search: leaf ``i`` of game ``games[i]`` goes to
    ``evaluators[owner[games[i]]]``, one call per network with all of its leaves."""

    per_game = True

    def __init__(self, evaluators: list[Callable], owner: np.ndarray) -> None:
        self.evaluators = evaluators
        self.owner = owner  # int64[B]: the network evaluating each game's leaves this move

    def __call__(self, obs: np.ndarray, mask: np.ndarray, games: np.ndarray):
        who = self.owner[games]  # [n]
        logits = np.empty(mask.shape, np.float32)
        values = np.empty(mask.shape[0], np.float32)
        for k in np.unique(who):
            rows = np.flatnonzero(who == k)
            part_logits, part_values = self.evaluators[k](obs[rows], mask[rows])
            logits[rows] = np.asarray(part_logits, np.float32).reshape(rows.size, -1)
            values[rows] = np.asarray(part_values, np.float32).reshape(-1)
        return logits, values

class Actor:
    """Plays ``selfplay.games_per_actor`` games at once with the network of the latest
    :meth:`set_weights`, and hands back training positions from the games that finish."""

    def __init__(self, spec: ActorSpec) -> None:
        self.spec = spec
        self.game = games.make(spec.game, **spec.game_options)
        self.config = spec.selfplay
        self.search_config = spec.search
        self.generation = -1
        self._evaluator: Callable | None = None
        # the network's outputs for positions seen since the last new network (None: no cache)
        self._cache = EvaluationCache(spec.selfplay.cache_positions) if spec.selfplay.cache_positions else None
        B = spec.selfplay.games_per_actor
        seeds = np.random.SeedSequence(spec.seed)
        self.rng = np.random.default_rng(seeds.spawn(1)[0])  # playout caps, who never resigns
        self.moves = np.zeros(B, np.int64)  # [B] moves played in each game (the opening included)
        initial = self._openings(np.arange(B))
        self.tree = Search(self.game, initial, spec.search, seed=int(seeds.generate_state(1)[0]))
        self.records: list[list[tuple[np.ndarray, np.ndarray, int, int, float]]] = [[] for _ in range(B)]  # (obs, policy, player, owner, root value)
        self.no_resign = self._draw_no_resign(B)  # [B] games played out whatever the value says
        self.would_resign = np.full(B, -1, np.int64)  # [B] first player who would have resigned, -1 none
        self.resign_threshold = float(spec.selfplay.resign_value)  # resign below this (-1: never)
        self.lowest = np.full(B, np.inf)  # [B] lowest full-search root value so far in a played-out game
        self.lows: list[list[tuple[float, int]]] = [[] for _ in range(B)]  # record lows: (value, player)
        self.pairings: Pairings | None = None  # None: plain self-play
        self.opponent = np.full(B, -1, np.int64)  # [B] index into pairings.names; -1 self-play
        self.learner_seat = np.zeros(B, np.int64)  # [B] the learner's player in a versus game
        self._learning = np.zeros(0, np.bool_)  # [K] pairings.names[k] learns its own moves too
        self._scripted = np.zeros(0, np.bool_)  # [K] pairings.names[k] is a scripted player
        self._opponents: dict[str, Callable] = {}  # name -> evaluator, cached while in the pairings

    # ------------------------------------------------------------------ interface
    def set_weights(self, generation: int, weights: Weights) -> None:
        """Play on with a new network. The games in progress continue; their trees restart,
        since the statistics in them came from the old network."""
        self.set_evaluator(generation, evaluator_from_weights(weights, self.game, self.spec.device, self.spec.threads))

    def set_evaluator(self, generation: int, evaluator: Callable) -> None:
        """:meth:`set_weights` with any evaluator ``(obs, mask) -> (logits, value)`` (in-process
        use: tests, a GPU model shared with the learner)."""
        self._evaluator = evaluator
        if self._cache is not None:
            self._cache.clear()  # its outputs were the old network's
        self.generation = int(generation)
        self.tree.set_roots(self.tree.root_states)

    def set_resign_threshold(self, threshold: float) -> None:
        """Resign below ``threshold`` from the next move on (-1: nobody resigns, while played-out
        games still report their record lows, so a calibration can raise it again)."""
        if not -1 <= threshold <= 1:
            raise ValueError(f"resign threshold must be in [-1, 1], got {threshold}")
        self.resign_threshold = float(threshold)

    def set_pairings(self, pairings: Pairings | None) -> None:
        """Play league games as :class:`Pairings` says (None: plain self-play). Every game in
        progress restarts, since its opponent or learner may have changed."""
        self.pairings = pairings
        if pairings is not None:
            keep = {}
            for name in pairings.names:
                if is_script(name):  # an Agent: act(states, move_numbers, seeds) -> actions
                    keep[name] = self._opponents.get(name) or self._script(name)
                elif name != SELF:
                    keep[name] = self._opponents.get(name) or evaluator_from_weights(
                        pairings.weights[name], self.game, self.spec.device, self.spec.threads)
            self._opponents = keep
            self._learning = np.array([name in pairings.learners for name in pairings.names], np.bool_)
            self._scripted = np.array([is_script(name) for name in pairings.names], np.bool_)
        else:
            self._opponents = {}
            self._learning = self._scripted = np.zeros(0, np.bool_)
        every = np.arange(self.tree.batch_size)
        self.tree.set_roots(self._openings(every))
        self.records = [[] for _ in every]
        self.lows = [[] for _ in every]
        self.no_resign[:] = self._draw_no_resign(every.size)
        self.would_resign[:] = -1
        self.lowest[:] = np.inf
        self._draw_opponents(every)

    def _script(self, name: str) -> Any:
        """The fixed player ``script:SPEC``, as an agent (:mod:`selfplay.evaluation.agents`): the
        game's script SPEC, or the baseline random, greedy or mcts:N."""
        from ..evaluation.agents import is_fixed_player, load_agent

        spec = name[len(SCRIPT):]
        if not is_fixed_player(spec, self.game):
            scripts = [SCRIPT + n for n in self.game.extra.get("scripts", {})]
            raise ActorError(f"{self.game.name} has no scripted player {name!r}; it has: "
                             f"{', '.join([*scripts, SCRIPT + 'random', SCRIPT + 'greedy', SCRIPT + 'mcts:N'])}")
        return load_agent(spec, self.game)

    def _draw_opponents(self, games_: np.ndarray) -> None:
        """Opponents and learner seats for new games ``games_``."""
        if self.pairings is None or not games_.size:
            self.opponent[games_] = -1
            return
        names, probs = self.pairings.names, np.asarray(self.pairings.probs, np.float64)
        picks = self.rng.choice(len(names), size=games_.size, p=probs / probs.sum())
        self.opponent[games_] = np.where(np.array([names[k] == SELF for k in picks]), -1, picks)
        self.learner_seat[games_] = self.rng.integers(0, self.game.num_players, size=games_.size)

    @property
    def resigning(self) -> bool:
        """Resignation is on for the run and this generation: resign, or note who would have."""
        return self.config.resign_value > -1 and self.generation >= self.config.resign_from_generation

    def play(
        self,
        num_positions: int,
        should_stop: Callable[[], bool] | None = None,
        on_progress: Callable[[SelfPlayStats], None] | None = None,
        progress_every: float = 1.0,
    ) -> tuple[Positions, SelfPlayStats]:
        """Play until finished games have produced at least ``num_positions`` training positions
        (or ``should_stop()`` says so; it is asked between moves). Games in progress when it
        returns carry on at the next call. ``on_progress(stats so far)`` is called about every
        ``progress_every`` seconds."""
        if self._evaluator is None:
            raise RuntimeError("Actor.play before set_weights: the actor has no network")
        stats = SelfPlayStats()
        evaluator = _CountingEvaluator(self._evaluator, stats)  # counts what reaches the network
        hits = 0
        if self._cache is not None and not evaluator.per_game:
            hits = self._cache.hits
            evaluator = self._cache.wrap(evaluator)
        parts: list[Positions] = []
        start = last_report = time.perf_counter()
        while stats.positions < num_positions:
            if should_stop is not None and should_stop():
                break
            parts += self._move(evaluator, stats)
            now = time.perf_counter()
            if on_progress is not None and now - last_report >= progress_every:
                stats.seconds = now - start
                if self._cache is not None:
                    stats.cache_hits = self._cache.hits - hits
                on_progress(stats)
                last_report = now
        stats.seconds = time.perf_counter() - start
        if self._cache is not None:
            stats.cache_hits = self._cache.hits - hits
        return Positions.concatenate(parts, self.game), stats

    # ------------------------------------------------------------------ one move of every game
    def _move(self, evaluator: Callable, stats: SelfPlayStats) -> list[Positions]:
        game, config, tree = self.game, self.config, self.tree
        B = tree.batch_size
        if config.fast_simulations > 0:
            full = self.rng.random(B) < config.full_search_prob
            sims = np.where(full, self.search_config.num_simulations, config.fast_simulations)
        else:
            full = np.ones(B, np.bool_)
            sims = np.full(B, self.search_config.num_simulations)
        states = tree.root_states  # [B, S], none terminal: finished games restart below
        players = np.array([game.to_play(s) for s in states])  # [B] player to move
        versus = self.opponent >= 0  # [B] league games against another network or a script
        learners = ~versus | (players == self.learner_seat)  # [B] the learner is to move
        scripted = np.zeros(B, np.bool_)  # [B] a scripted player is to move: no search, no record
        if versus.any() and self._scripted.any():
            scripted = versus & ~learners & self._scripted[np.maximum(self.opponent, 0)]
            sims = np.where(scripted, 0, sims)
            full = full & ~scripted
        if versus.any():  # each side searches with its own network: route leaves by root mover
            names = self.pairings.names
            evaluators = [evaluator] + [self._opponents[name] if name != SELF and not is_script(name) else evaluator
                                        for name in names]
            evaluator = _RoutedEvaluator(evaluators, np.where(learners | scripted, 0, 1 + self.opponent))
        result = tree.run(evaluator, simulations=sims, move_numbers=self.moves)
        actions = result.actions
        if scripted.any():
            actions = actions.copy()
            for k in np.unique(self.opponent[scripted]):  # one batched act per fixed player
                rows = np.flatnonzero(scripted & (self.opponent == k))
                seeds = self.rng.integers(0, 2**62, size=rows.size)
                actions[rows] = self._opponents[self.pairings.names[k]].act(states[rows], self.moves[rows], seeds)
        recorded = full & learners  # the learner learns its own moves...
        if versus.any() and self._learning.any():  # ... and an opponent that learns too, its own (owner k + 1)
            recorded |= full & versus & self._learning[np.maximum(self.opponent, 0)]
        for b in np.flatnonzero(recorded):
            owner = 0 if learners[b] else 1 + int(self.opponent[b])
            self.records[b].append((game.encode(states[b]), result.policy[b].copy(), int(players[b]), owner,
                                    float(result.root_values[b])))
        stats.moves += B
        stats.full_moves += int(full.sum())

        resigned = np.zeros(B, np.bool_)
        if self.resigning:
            values = result.root_values  # [B], the mover's view
            # only a full search may end a game: a playout-capped one is too noisy to trust
            losing = full & (values < self.resign_threshold)
            first_time = losing & self.no_resign & (self.would_resign < 0)
            self.would_resign[first_time] = players[first_time]
            resigned = losing & ~self.no_resign
            for b in np.flatnonzero(full & self.no_resign & (values < self.lowest)):  # record lows
                self.lowest[b] = values[b]
                self.lows[b].append((round(float(values[b]), 4), int(players[b])))
        playing = np.flatnonzero(~resigned)
        if playing.size:
            tree.advance(actions[playing], games=playing)
            fresh = np.flatnonzero(versus & ~resigned)
            if fresh.size and self.search_config.reuse_tree:  # the subtree is the other network's
                tree.set_roots(tree.root_states[fresh], games=fresh)
        self.moves += 1

        finished = resigned | tree.root_terminal
        out = []
        for b in np.flatnonzero(finished):
            if resigned[b]:
                scores = np.ones(game.num_players)
                scores[players[b]] = -1.0
                stats.resignations += 1
            else:
                scores = game.returns(tree.root_states[b])
            out.append(self._finish(b, scores, stats))
        if finished.any():
            restart = np.flatnonzero(finished)
            tree.set_roots(self._openings(restart), games=restart)
            self._draw_opponents(restart)
            self.no_resign[restart] = self._draw_no_resign(restart.size)
            self.would_resign[restart] = -1
            self.lowest[restart] = np.inf
        return out

    def _finish(self, b: int, scores: np.ndarray, stats: SelfPlayStats) -> Positions:
        """The training positions of game ``b``, which ended with ``scores`` (float[players])."""
        records = self.records[b]
        self.records[b] = []
        stats.games += 1
        stats.game_length += int(self.moves[b])
        stats.first_player_score += float(scores[0])
        stats.draws += int(scores[0] == 0)
        if self.opponent[b] >= 0:
            seat = int(self.learner_seat[b])
            stats.results.append([self.pairings.names[self.opponent[b]], seat, float(scores[seat])])
        if self.would_resign[b] >= 0:
            stats.resign_checks += 1
            stats.false_resignations += int(scores[self.would_resign[b]] >= 0)
        if self.lows[b]:
            stats.resign_samples.append([[value, bool(scores[player] >= 0)] for value, player in self.lows[b]])
            self.lows[b] = []
        if not records:
            return Positions.empty(self.game)
        obs, policy, player, owner, root = zip(*records)
        stats.positions += owner.count(0)  # the learner's: what a generation counts
        w = self.config.root_value_weight
        value = ((1 - w) * scores[np.array(player)] + w * np.array(root)).astype(np.float32)  # [T], the mover's view
        return Positions(np.stack(obs), np.stack(policy), value, np.array(owner, np.int16))

    def _openings(self, games_: np.ndarray) -> np.ndarray:
        """int64[G, S]: fresh start positions for ``games_`` (random openings, see the module
        docstring); sets their move numbers."""
        game = self.game
        out = np.stack([game.initial_state()] * games_.size)
        for row, b in enumerate(games_):
            plies = int(self.rng.integers(0, self.config.random_opening_moves + 1)) if self.config.random_opening_moves else 0
            state = out[row]
            for done in range(plies):
                safe = [a for a in game.legal_actions(state) if not game.is_terminal(game.next_state(state, a))]
                if not safe:
                    plies = done
                    break
                state = game.next_state(state, int(self.rng.choice(safe)))
            out[row] = state
            self.moves[b] = plies
        return out

    def _draw_no_resign(self, count: int) -> np.ndarray:
        return self.rng.random(count) < self.config.resign_playout_fraction
