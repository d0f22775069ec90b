"""The analysis engine behind ``selfplay analyze`` and the play window's overlay: queries in,
responses out, no I/O.

A query names a position by the action indices played from the initial position, and how many
search visits to spend on it (0: the raw network, one evaluation). Every value in a response is
from the point of view of the player to move in the analyzed position: the root ``value``, the
network's ``raw_value`` and each move's ``q``. Queries given together are answered together:
all positions with the same visit count are searched as one batch, one evaluator call per
search step, so the network sees batches as large as the queries. A bad query gets
``{"id": ..., "error": "..."}`` and the engine keeps answering. The protocol, field by field, is
in ``docs/analysis.md``; the JSON-lines server that reads queries from stdin is
:mod:`selfplay.tools.analyze`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Sequence

import numpy as np

import games
from games.core import Game, GameError, short_repr
from search import Search, SearchConfig
from search.evaluators import is_native
from search.tree import ROOT

__all__ = [
    "ANALYSIS_SEARCH",
    "AnalysisEngine",
    "AnalysisError",
    "QUERY_FIELDS",
    "error_response",
    "problem_line",
]


#: The search settings of an analysis: no root noise, the most visited move, and MCTS-Solver so
#: that positions the search proves get their exact value. ``num_simulations`` is set per query.
ANALYSIS_SEARCH = SearchConfig(num_simulations=1, dirichlet_fraction=0.0, temperature_moves=0, solver=True, reuse_tree=False)

#: Fields a query may carry. KataGo's spellings ``includePolicy`` and ``maxMoves`` are accepted too.
QUERY_FIELDS = ("id", "game", "options", "moves", "visits", "include_policy", "max_moves")
_ALIASES = {"includePolicy": "include_policy", "maxMoves": "max_moves"}
_MAX_ERROR_CHARS = 300  # an error message is cut to this


class AnalysisError(GameError):
    """A query (or engine setting) that cannot be used: one line, returned as ``"error"``."""


def _show(value: Any, limit: int = 60) -> str:
    """``repr`` of a value from a query, cut short (never raises): error messages stay one short line."""
    return short_repr(value, limit)


def problem_line(error: BaseException) -> str:
    """One line about ``error``: a GameError's own message, otherwise its type and message."""
    try:
        text = str(error)
    except Exception:  # a message that cannot be printed (an int of 5000 digits)
        text = ""
    if not isinstance(error, GameError):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


def _integer(value: Any, name: str, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``, or an :class:`AnalysisError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise AnalysisError(f"{name} must be an integer, got {_show(value)}")
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise AnalysisError(f"{name} must be in {bounds}, got {_show(value)}")
    return int(value)


def _number(x: float) -> float | None:
    """A float for JSON: 6 significant digits (float32 carries about 7), None for NaN."""
    x = float(x)
    return None if math.isnan(x) else float(f"{x:.6g}")


def _masked_softmax(logits: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``float32[N, A]``: softmax of ``logits`` over the legal actions ``masks`` (bool[N, A]),
    0 elsewhere, computed as the search computes its prior (float64, uniform where the legal
    logits do not give a finite positive total)."""
    x = np.where(masks, logits.astype(np.float64), -np.inf)
    top = x.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.where(masks, np.exp(x - top), 0.0)
        total = e.sum(axis=1, keepdims=True)
        ok = (total > 0) & np.isfinite(total)
        uniform = masks / np.maximum(masks.sum(axis=1, keepdims=True), 1)
        return np.where(ok, e / np.where(ok, total, 1.0), uniform).astype(np.float32)


@dataclass(frozen=True)
class _Query:
    """A validated query."""

    index: int  # position in the list given to the engine
    id: str | int
    state: np.ndarray  # int64[S]: the position after the query's moves
    visits: int  # 0: the raw network
    include_policy: bool
    max_moves: int | None  # entries in "moves" (None: every legal move)


@dataclass(frozen=True)
class _Analysis:
    """What one evaluation or search found for one position; values from its player to move."""

    priors: np.ndarray  # float32[A]: the network's prior (masked softmax), 0 on illegal moves
    visit_counts: np.ndarray  # int[A]: root visits per move (0 for the raw network)
    q_values: np.ndarray  # float32[A]: mean value of each move; NaN where unvisited
    proven: np.ndarray  # bool[A]: the move's q is exact (the solver proved it)
    value: float  # the search's root value (exact when solved), or the network's value
    raw_value: float  # the network's value of the position
    best_move: int
    simulations: int
    solved: bool


class AnalysisEngine:
    """Answers analysis queries (dicts, as parsed from JSON) for one game and one evaluator.

    ``evaluator``: any search evaluator (``(obs float32[N, C, H, W], mask bool[N, A]) ->
    (logits float32[N, A], value float32[N])``, value from the player to move); the native
    ``search.RolloutEvaluator`` works for searches but has no raw answer (visits 0).
    ``default_visits``: for queries without ``"visits"``. ``max_batch``: the most positions one
    search holds; a search also holds at most about ``max_visits`` tree nodes in all, so a batch
    of large queries is split into several searches. ``search_config``: settings other than
    ``num_simulations`` (default :data:`ANALYSIS_SEARCH`). ``seed``: every query's search gets
    this seed, so an answer does not depend on which queries share its batch.
    """

    def __init__(
        self,
        game: Game,
        evaluator: Any,
        default_visits: int = 200,
        max_batch: int = 64,
        search_config: SearchConfig | None = None,
        seed: int = 0,
        max_visits: int = 100_000,
    ) -> None:
        if not isinstance(game, Game):
            raise AnalysisError(f"game must be a games.Game, got {type(game).__name__}")
        if not (callable(evaluator) or is_native(evaluator)):
            raise AnalysisError(f"evaluator must be callable (obs, mask) -> (logits, value), got {type(evaluator).__name__}")
        if search_config is not None and not isinstance(search_config, SearchConfig):
            raise AnalysisError(f"search_config must be a SearchConfig, got {type(search_config).__name__}")
        self.game = game
        self.evaluator = evaluator
        self.max_visits = _integer(max_visits, "max_visits", 1)
        self.default_visits = _integer(default_visits, "default_visits", 0, self.max_visits)
        self.max_batch = _integer(max_batch, "max_batch", 1)
        self.search_config = search_config or ANALYSIS_SEARCH
        self.seed = _integer(seed, "seed", 0)

    # ------------------------------------------------------------------ answering
    def analyze(self, queries: Sequence[Any], stop: Callable[[], bool] | None = None) -> list[dict[str, Any]]:
        """One response per query, in the order of ``queries``. Never raises for a bad query:
        its response is ``{"id": ..., "error": "..."}``. ``stop``: polled between search steps
        (``search.Search.run``); once it returns true, the searches end early and answer with
        the visits they have (a window uses it to drop an analysis nobody waits for)."""
        responses: list[dict[str, Any] | None] = [None] * len(queries)
        for answered in self._answer(queries, stop):
            for index, response in answered:
                responses[index] = response
        return responses  # type: ignore[return-value]

    def analyze_iter(
        self, queries: Sequence[Any], stop: Callable[[], bool] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """The responses to ``queries`` in groups, each as soon as it is ready: errors and
        finished games first, then the raw-network answers, then each search, fewest visits
        first. Every query is answered exactly once. ``stop`` as in :meth:`analyze`."""
        for answered in self._answer(queries, stop):
            yield [response for _, response in answered]

    def _answer(
        self, queries: Sequence[Any], stop: Callable[[], bool] | None = None
    ) -> Iterator[list[tuple[int, dict[str, Any]]]]:
        """(index, response) groups, every index of ``queries`` exactly once, whatever fails:
        a failure the groups did not turn into errors themselves answers what is left."""
        pending = set(range(len(queries)))
        try:
            for answered in self._answer_groups(queries, stop):
                pending.difference_update(index for index, _ in answered)
                yield answered
        except Exception as e:
            problem = f"internal error: {problem_line(e)}"
            yield [(index, error_response(queries[index], problem)) for index in sorted(pending)]

    def _answer_groups(
        self, queries: Sequence[Any], stop: Callable[[], bool] | None
    ) -> Iterator[list[tuple[int, dict[str, Any]]]]:
        immediate: list[tuple[int, dict[str, Any]]] = []
        groups: dict[int, list[_Query]] = {}
        for index, raw in enumerate(queries):
            try:
                query = self._parse(index, raw)
                if self.game.is_terminal(query.state):
                    immediate.append((index, self._terminal_response(query)))
                else:
                    groups.setdefault(query.visits, []).append(query)
            except GameError as e:
                immediate.append((index, error_response(raw, str(e))))
            except Exception as e:  # RecursionError, MemoryError, ...: this query's answer, not the engine's end
                immediate.append((index, error_response(raw, f"cannot read the query: {problem_line(e)}")))
        if immediate:
            yield immediate
        for visits in sorted(groups):
            group = groups[visits]
            size = min(self.max_batch, max(1, self.max_visits // max(visits, 1)))
            for start in range(0, len(group), size):
                chunk = group[start : start + size]
                try:
                    found = self._evaluate(chunk) if visits == 0 else self._search(chunk, visits, stop)
                    answered = [(q.index, self._response(q, a)) for q, a in zip(chunk, found)]
                except Exception as e:  # the evaluator failed: answer, and keep serving
                    problem = f"evaluation failed: {problem_line(e)}"
                    answered = [(q.index, error_response({"id": q.id}, problem)) for q in chunk]
                yield answered

    def warm_up(self) -> None:
        """Run a tiny search and a raw evaluation, so the first query does not pay for loading
        compiled kernels or starting the network."""
        warm = [{"id": 0, "visits": 2}]
        if callable(self.evaluator):
            warm.append({"id": 1, "visits": 0})
        for response in self.analyze(warm):
            if "error" in response:
                raise AnalysisError(f"the engine failed its first search: {response['error']}")

    # ------------------------------------------------------------------ queries
    def _parse(self, index: int, raw: Any) -> _Query:
        if not isinstance(raw, dict):
            raise AnalysisError(f"a query must be a JSON object, got {_show(raw)}")
        query = dict(raw)
        for alias, name in _ALIASES.items():
            if alias in query:
                if name in query:
                    raise AnalysisError(f"give {name!r} or {alias!r}, not both")
                query[name] = query.pop(alias)
        if "id" not in query:
            raise AnalysisError('a query needs an "id" (a string or an integer)')
        qid = query["id"]
        if isinstance(qid, bool) or not isinstance(qid, (str, int)):
            raise AnalysisError(f'"id" must be a string or an integer, got {_show(qid)}')
        unknown = sorted(set(query) - set(QUERY_FIELDS))
        if unknown:
            raise AnalysisError(f"unknown field {_show(unknown[0])}; a query has {', '.join(QUERY_FIELDS)}")
        self._check_game(query.get("game"), query.get("options"))
        visits = _integer(query.get("visits", self.default_visits), '"visits"', 0, self.max_visits)
        include_policy = query.get("include_policy", True)
        if not isinstance(include_policy, bool):
            raise AnalysisError(f'"include_policy" must be true or false, got {_show(include_policy)}')
        max_moves = query.get("max_moves")
        if max_moves is not None:
            max_moves = _integer(max_moves, '"max_moves"', 0)
        return _Query(index, qid, self._position(query.get("moves", [])), visits, include_policy, max_moves)

    def _check_game(self, name: Any, options: Any) -> None:
        game = self.game
        if name is not None and name != game.name:
            raise AnalysisError(f"this engine analyzes {game.name} (its network's game), not {_show(name)}")
        if options is None:
            return
        if not isinstance(options, dict):
            raise AnalysisError(f'"options" must be an object such as {{"width": 7}}, got {_show(options)}')
        if options == dict(game.options):
            return
        asked = games.make(game.name, **options)  # fills in defaults; GameError for a bad option
        if dict(asked.options) != dict(game.options):
            mine = ", ".join(f"{k}={v}" for k, v in game.options.items())
            raise AnalysisError(f"options {_show(options)} differ from this engine's {game.name} ({mine})")

    def _position(self, moves: Any) -> np.ndarray:
        """``int64[S]``: the state after ``moves`` (action indices) from the initial position."""
        game = self.game
        if not isinstance(moves, (list, tuple)):
            raise AnalysisError(f'"moves" must be a list of action indices, got {_show(moves)}')
        state = game.initial_state()
        for i, move in enumerate(moves):
            action = _integer(move, f"moves[{i}]", 0, game.num_actions - 1)
            try:
                state = game.next_state(state, action)
            except GameError as e:
                raise AnalysisError(f"moves[{i}]: {e}") from None
        return state

    # ------------------------------------------------------------------ evaluating
    def _evaluate(self, chunk: list[_Query]) -> list[_Analysis]:
        """The raw network on every position of ``chunk``: one evaluator call."""
        if not callable(self.evaluator):
            raise AnalysisError(f"{type(self.evaluator).__name__} has no raw answer; ask for visits >= 1")
        game = self.game
        obs = np.stack([game.encode(q.state) for q in chunk])  # float32[N, C, H, W]
        masks = np.stack([game.legal_mask(q.state) for q in chunk])  # bool[N, A]
        logits, values = self.evaluator(obs, masks)
        logits = np.asarray(logits, dtype=np.float32)
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        n, A = masks.shape
        if logits.shape != (n, A) or values.shape != (n,):
            raise AnalysisError(f"evaluator returned logits {logits.shape} and value {values.shape}; expected ({n}, {A}) and ({n},)")
        if np.isnan(logits).any() or not np.isfinite(values).all():
            raise AnalysisError("evaluator returned NaN logits or non-finite values")
        priors = _masked_softmax(logits, masks)
        found = []
        for b in range(n):
            best = int(np.argmax(np.where(masks[b], priors[b], -1.0)))
            found.append(
                _Analysis(
                    priors=priors[b],
                    visit_counts=np.zeros(A, np.int64),
                    q_values=np.full(A, np.nan, np.float32),
                    proven=np.zeros(A, np.bool_),
                    value=float(values[b]),
                    raw_value=float(values[b]),
                    best_move=best,
                    simulations=0,
                    solved=False,
                )
            )
        return found

    def _search(self, chunk: list[_Query], visits: int, stop: Callable[[], bool] | None = None) -> list[_Analysis]:
        """One batched search of ``visits`` simulations over every position of ``chunk``."""
        config = replace(self.search_config, num_simulations=visits, capacity=0, reuse_tree=False)
        states = np.stack([q.state for q in chunk])  # int64[B, S]
        search = Search(self.game, states, config, seed=[self.seed] * len(chunk))
        result = search.run(self.evaluator, stop=stop)
        raw_values = search.tree.node_raw_value[:, ROOT]  # float32[B]: evaluator's root value
        return [
            _Analysis(
                priors=result.priors[b],
                visit_counts=result.visit_counts[b],
                q_values=result.q_values[b],
                proven=result.proven[b],
                value=float(result.root_values[b]),
                raw_value=float(raw_values[b]),
                best_move=int(result.actions[b]),
                simulations=int(result.simulations[b]),
                solved=bool(result.solved[b]),
            )
            for b in range(len(chunk))
        ]

    # ------------------------------------------------------------------ responses
    def _response(self, query: _Query, found: _Analysis) -> dict[str, Any]:
        game = self.game
        legal = game.legal_actions(query.state)
        # best move first, then by visits, then by prior
        order = sorted(
            legal, key=lambda a: (a != found.best_move, -int(found.visit_counts[a]), -float(found.priors[a]), int(a))
        )
        if query.max_moves is not None:
            order = order[: query.max_moves]
        response: dict[str, Any] = {
            "id": query.id,
            "terminal": False,
            "to_play": game.to_play(query.state),
            "best_move": found.best_move,
            "best_move_text": game.action_to_text(found.best_move),
            "value": _number(found.value),
            "raw_value": _number(found.raw_value),
            "visits": found.simulations,
            "solved": found.solved,
            "returns": None,
            "moves": [
                {
                    "move": int(a),
                    "move_text": game.action_to_text(a),
                    "visits": int(found.visit_counts[a]),
                    "q": _number(found.q_values[a]),
                    "proven": bool(found.proven[a]),
                    "prior": _number(found.priors[a]),
                }
                for a in order
            ],
        }
        if query.include_policy:
            response["policy"] = [_number(p) for p in found.priors]
        return response

    def _terminal_response(self, query: _Query) -> dict[str, Any]:
        """A finished game: its exact result, one score per player, and nothing to play."""
        response: dict[str, Any] = {
            "id": query.id,
            "terminal": True,
            "to_play": None,
            "best_move": None,
            "best_move_text": None,
            "value": None,
            "raw_value": None,
            "visits": 0,
            "solved": True,
            "returns": [_number(r) for r in self.game.returns(query.state)],
            "moves": [],
        }
        if query.include_policy:
            response["policy"] = [0.0] * self.game.num_actions
        return response


def error_response(raw: Any, message: str) -> dict[str, Any]:
    """``{"id", "error"}`` for a query that cannot be answered; the id is echoed when it is one."""
    qid = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(qid, bool) or not isinstance(qid, (str, int)):
        qid = None
    message = " ".join(message.split())
    if len(message) > _MAX_ERROR_CHARS:
        message = message[: _MAX_ERROR_CHARS - 3] + "..."
    return {"id": qid, "error": message}
