"""``selfplay analyze``: a JSON-lines analysis engine, in the spirit of KataGo's.

One JSON query a line on stdin, one JSON response a line on stdout::

    {"id": "q1", "game": "connect4", "moves": [3, 3, 4], "visits": 200}
    {"id":"q1","terminal":false,"to_play":1,"best_move":2,"best_move_text":"3","value":0.41,...}

A query names a position by the action indices played from the initial position, and how many
search visits to spend on it (0: the raw network, one evaluation). Every value in a response is
from the point of view of the player to move in the analyzed position: the root ``value``, the
network's ``raw_value`` and each move's ``q``. Queries that arrive together are answered
together: all positions with the same visit count are searched as one batch, one evaluator call
per search step, so the network sees batches as large as the queries. Answers may come out of
order (cheaper groups first); each carries its query's ``id``. A bad query gets
``{"id": ..., "error": "..."}`` and the engine keeps serving. The protocol, field by field, is in
``docs/analysis.md``.

* :class:`AnalysisEngine`: validate queries, batch them, search, build responses (no I/O).
* :func:`serve`: the line loop (a reader thread, batching by arrival, a flush per answer).
* :func:`add_arguments` / :func:`main`: the command (checkpoint or ``.onnx`` file in, loop out).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import os
import queue
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TextIO

import numpy as np

import games
from games.core import Game, GameError, short_repr
from search import Search, SearchConfig
from search.evaluators import is_native
from search.tree import ROOT

from .args import integer, number

__all__ = [
    "ANALYSIS_SEARCH",
    "AnalysisEngine",
    "AnalysisError",
    "MAX_LINE_CHARS",
    "QUERY_FIELDS",
    "add_arguments",
    "load_game_and_evaluator",
    "main",
    "serve",
]

#: The search settings of an analysis: no root noise, the most visited move, and MCTS-Solver so
#: that positions the search proves get their exact value. ``num_simulations`` is set per query.
ANALYSIS_SEARCH = SearchConfig(num_simulations=1, dirichlet_fraction=0.0, temperature_moves=0, solver=True, reuse_tree=False)

#: Fields a query may carry. KataGo's spellings ``includePolicy`` and ``maxMoves`` are accepted too.
QUERY_FIELDS = ("id", "game", "options", "moves", "visits", "include_policy", "max_moves")
_ALIASES = {"includePolicy": "include_policy", "maxMoves": "max_moves"}


#: The longest query line read, in characters; a longer one is answered with an error unread.
#: The longest real query (a 10,000-move arena game) is under 50,000 characters.
MAX_LINE_CHARS = 1 << 20
_MAX_ERROR_CHARS = 300  # an error message is cut to this


class AnalysisError(GameError):
    """A query (or engine setting) that cannot be used: one line, returned as ``"error"``."""


def _show(value: Any, limit: int = 60) -> str:
    """``repr`` of a value from a query, cut short (never raises): error messages stay one short line."""
    return short_repr(value, limit)


def _problem(error: BaseException) -> str:
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
            problem = f"internal error: {_problem(e)}"
            yield [(index, _error(queries[index], problem)) for index in sorted(pending)]

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
                immediate.append((index, _error(raw, str(e))))
            except Exception as e:  # RecursionError, MemoryError, ...: this query's answer, not the engine's end
                immediate.append((index, _error(raw, f"cannot read the query: {_problem(e)}")))
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
                    problem = f"evaluation failed: {_problem(e)}"
                    answered = [(q.index, _error({"id": q.id}, problem)) for q in chunk]
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


def _error(raw: Any, message: str) -> dict[str, Any]:
    """``{"id", "error"}`` for a query that cannot be answered; the id is echoed when it is one."""
    qid = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(qid, bool) or not isinstance(qid, (str, int)):
        qid = None
    message = " ".join(message.split())
    if len(message) > _MAX_ERROR_CHARS:
        message = message[: _MAX_ERROR_CHARS - 3] + "..."
    return {"id": qid, "error": message}


# ---------------------------------------------------------------------------- the line loop
_EOF = object()


@dataclass(frozen=True)
class _MalformedLine:
    error: str  # why the line is no query


def _read_lines(stdin: TextIO, lines: queue.Queue, max_chars: int = MAX_LINE_CHARS) -> None:
    """Reader thread: every non-blank line of ``stdin`` into ``lines``, then ``_EOF``. A line
    longer than ``max_chars`` is skipped, unkept, and queued as a :class:`_MalformedLine`."""
    try:
        while line := stdin.readline(max_chars + 1):
            if len(line) > max_chars and not line.endswith("\n"):
                while line and not line.endswith("\n"):  # the rest of the line, a piece at a time
                    line = stdin.readline(max_chars)
                lines.put(_MalformedLine(f"line longer than {max_chars} characters"))
            elif line.strip():
                lines.put(line)
    except Exception as e:  # an unreadable stream ends the input; say why on stderr
        print(f"selfplay analyze: input ended: {_problem(e)}", file=sys.stderr, flush=True)
    finally:
        lines.put(_EOF)


def _parse_line(line: str) -> Any:
    """A parsed query (any JSON value; the engine checks it), or a :class:`_MalformedLine`.
    Python's json also reads ``NaN`` and ``Infinity``; the engine refuses them field by field."""
    try:
        return json.loads(line.strip())
    except RecursionError:
        return _MalformedLine("malformed JSON: nested too deeply")
    except json.JSONDecodeError as e:
        return _MalformedLine(f"malformed JSON: {e}")
    except Exception as e:  # ValueError: an integer of more than 4300 digits
        return _MalformedLine(f"malformed JSON: {_problem(e)}")


def _encode(response: dict[str, Any]) -> str:
    """``response`` as one JSON line that any reader can take. ASCII only (``ensure_ascii``):
    a lone surrogate from a ``\\ud800`` escape goes back out as the same escape, never as bytes
    that UTF-8 cannot hold. A response that cannot be written (an id of 5000 digits, from
    Python) becomes an error that can."""
    try:
        return json.dumps(response, separators=(",", ":"), allow_nan=False, ensure_ascii=True)
    except Exception as e:
        problem = f"the response could not be written as JSON: {_problem(e)}"
        qid = response.get("id") if isinstance(response, dict) else None
        try:
            return json.dumps({"id": qid, "error": problem}, separators=(",", ":"), ensure_ascii=True)
        except Exception:
            return json.dumps({"id": None, "error": problem}, separators=(",", ":"), ensure_ascii=True)


def serve(
    engine: AnalysisEngine, stdin: TextIO, stdout: TextIO, batch_wait_ms: float = 5.0, max_line_chars: int = MAX_LINE_CHARS
) -> int:
    """Answer the JSON queries on ``stdin`` (one a line) on ``stdout`` (one response a line)
    until end of input; return the number of responses written.

    A reader thread queues lines as they arrive. The loop takes the first waiting line, then
    keeps taking lines while each arrives within ``batch_wait_ms`` of the last, up to
    ``engine.max_batch``; so queries sent together are searched together, and a lone query
    waits only ``batch_wait_ms``. Responses are written, and stdout flushed, as each group of
    the batch is ready. At end of input the queries already read are answered. Every non-blank
    line gets exactly one response, whatever it holds: a line that is not JSON, longer than
    ``max_line_chars`` or nested too deeply gets ``{"id": null, "error": ...}``. Stops
    early, quietly, if ``stdout`` is closed by the reader."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(stdin, lines, max_line_chars), name="analysis-stdin", daemon=True).start()
    wait = min(batch_wait_ms / 1000.0, threading.TIMEOUT_MAX) if batch_wait_ms > 0 else 0.0  # NaN: 0
    written = 0
    done = False
    while not done:
        item = lines.get()
        if item is _EOF:
            break
        batch = [item]
        while len(batch) < engine.max_batch:
            try:
                item = lines.get(timeout=wait) if wait > 0 else lines.get_nowait()
            except queue.Empty:
                break
            if item is _EOF:
                done = True
                break
            batch.append(item)
        parsed = [item if isinstance(item, _MalformedLine) else _parse_line(item) for item in batch]
        malformed = [{"id": None, "error": p.error} for p in parsed if isinstance(p, _MalformedLine)]
        queries = [p for p in parsed if not isinstance(p, _MalformedLine)]
        try:
            for responses in itertools.chain([malformed], engine.analyze_iter(queries)):
                for response in responses:
                    stdout.write(_encode(response) + "\n")
                written += len(responses)
                if responses:
                    stdout.flush()
        except BrokenPipeError:
            return written
    return written


# ---------------------------------------------------------------------------- the command
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``selfplay analyze``."""
    parser.add_argument(
        "--checkpoint", required=True, metavar="PATH",
        help="a run directory (its latest checkpoint), ckpt-*.json, ckpt-*.safetensors, an exported brain directory, or an .onnx file",
    )
    parser.add_argument("--game", help="the game (needed for an .onnx file; checked against a checkpoint)")
    parser.add_argument(
        "-o", "--option", action="append", metavar="KEY=VALUE", help="game option, e.g. -o width=8 (repeatable)"
    )
    parser.add_argument("--visits", type=integer(0), default=200, help="search visits for queries that name none (0: raw network)")
    parser.add_argument("--max-visits", type=integer(1), default=100_000, help="the most visits a query may ask for")
    parser.add_argument("--max-batch", type=integer(1), default=64, help="the most queries searched together")
    parser.add_argument(
        "--batch-wait-ms", type=number(0, 60_000), default=5.0,
        help="after a query arrives, how long to wait for the next before answering",
    )
    parser.add_argument("--device", default="cpu", help="where the network runs: cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=integer(1), default=1, help="onnxruntime threads (CPU)")
    parser.add_argument("--seed", type=integer(0), default=0, help="the search's random seed")


def _checkpoint_game(checkpoint: Any) -> Game:
    """The game a checkpoint was trained on, from its version tag and options."""
    name, _, version = checkpoint.game.rpartition("_v")
    if not name or not version.isdigit():
        raise AnalysisError(f"{checkpoint.path.name}: game tag {checkpoint.game!r} is not NAME_vVERSION")
    game = games.make(name, **(checkpoint.game_options or {}))
    if game.version != int(version):
        raise AnalysisError(f"{checkpoint.path.name}: checkpoint is for {checkpoint.game}; this selfplay plays {game.version_tag}")
    if tuple(checkpoint.obs_shape) != tuple(game.obs_shape) or checkpoint.num_actions != game.num_actions:
        raise AnalysisError(
            f"{checkpoint.path.name}: checkpoint has observations {tuple(checkpoint.obs_shape)} and "
            f"{checkpoint.num_actions} actions; {game!r} has {tuple(game.obs_shape)} and {game.num_actions}"
        )
    return game


def load_game_and_evaluator(args: argparse.Namespace) -> tuple[Game, Any]:
    """The game and evaluator that ``--checkpoint``, ``--game``, ``-o`` and ``--device`` name."""
    from export.contract import game_of, is_brain, read_manifest

    from ..model.checkpoint import load_checkpoint
    from ..model.inference import evaluator_for, load_brain_evaluator, load_evaluator

    path = Path(args.checkpoint)
    options = games.parse_options(args.option)
    if path.suffix == ".onnx" and not is_brain(path):
        if not args.game:
            raise AnalysisError(f"{path}: an ONNX file does not record its game; name the game it plays")
        game = games.make(args.game, **options)
        return game, load_evaluator(path, game, device=args.device, threads=args.threads)
    if is_brain(path):  # an exported brain records its game in its manifest, as a checkpoint does
        game = game_of(read_manifest(path), str(path))
        need_value = getattr(args, "require_value", True)  # analysis reports values; play at 0 visits needs none
        evaluator = lambda: load_brain_evaluator(path, game, threads=args.threads, require_value=need_value)  # noqa: E731
    else:
        checkpoint = load_checkpoint(path)
        game = _checkpoint_game(checkpoint)
        evaluator = lambda: evaluator_for(checkpoint.build_model(), game.obs_shape, args.device, threads=args.threads)  # noqa: E731
    if args.game and args.game != game.name:
        raise AnalysisError(f"{path}: checkpoint is for {game!r}, not {args.game}")
    if options:  # given, they must describe the checkpoint's game
        asked = games.make(game.name, **{**dict(game.options), **options})
        if asked.version_tag != game.version_tag or dict(asked.options) != dict(game.options):
            raise AnalysisError(f"{path}: checkpoint is for {game!r}, not {asked!r}")
    return game, evaluator()


def main(args: argparse.Namespace) -> int:
    """``selfplay analyze``: load the network, then answer stdin's queries until end of input."""
    game, evaluator = load_game_and_evaluator(args)
    engine = AnalysisEngine(
        game, evaluator, default_visits=args.visits, max_batch=args.max_batch, seed=args.seed, max_visits=args.max_visits
    )
    engine.warm_up()
    print(
        f"selfplay analyze: ready: {game!r}, {args.visits} visits by default, up to {args.max_batch} "
        f"queries a batch; one JSON query a line",
        file=sys.stderr,
        flush=True,
    )
    # Undecodable bytes must not end the input: they become U+FFFD and a "malformed JSON" answer.
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace") if hasattr(sys.stdin, "buffer") else sys.stdin
    serve(engine, stdin, sys.stdout, args.batch_wait_ms)
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the client left; keep the interpreter's exit flush quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="selfplay analyze", description=__doc__.splitlines()[0])
    add_arguments(_parser)
    try:
        sys.exit(main(_parser.parse_args()))
    except ValueError as _e:  # GameError, CheckpointError, SearchError: one line, exit 2
        print(f"selfplay analyze: error: {_e}", file=sys.stderr)
        sys.exit(2)
