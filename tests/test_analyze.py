"""The analysis engine: the documented response fields and their points of view, errors that
leave the engine serving, batching (one evaluator call per search step for a whole batch, the
same answers batched or alone), a forced win found by search with an untrained network, and the
real stdin/stdout loop in a subprocess.

Networks are tiny and untrained; what is checked is what the engine does with any network.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import games
from selfplay.evaluation.analysis import ANALYSIS_SEARCH, AnalysisEngine, AnalysisError
from selfplay.tools.analyze import add_arguments, main, serve
from selfplay.model.checkpoint import save_checkpoint
from selfplay.model.inference import load_evaluator, onnx_bytes
from selfplay.model.network import NetConfig, build_network

REPO = Path(__file__).resolve().parents[1]
NET = NetConfig(kind="resnet", channels=8, blocks=1, hidden=8)
RESPONSE_FIELDS = {
    "id", "terminal", "to_play", "best_move", "best_move_text", "value", "raw_value",
    "visits", "solved", "returns", "moves", "policy",
}
MOVE_FIELDS = {"move", "move_text", "visits", "q", "proven", "prior"}


# ----------------------------------------------------------------------------- fixtures
def _saved_network(directory: Path, name: str, seed: int):
    game = games.make(name)
    torch.manual_seed(seed)
    model = build_network(NET, game.obs_shape, game.num_actions).eval()  # batch norm: running stats
    save_checkpoint(directory, 1, model, game=game)
    return game, model


@pytest.fixture(scope="module")
def c4_run(tmp_path_factory):
    """(run directory, game, model): an untrained Connect Four network saved as a checkpoint."""
    directory = tmp_path_factory.mktemp("c4_run")
    game, model = _saved_network(directory, "connect4", seed=1)
    return directory, game, model


@pytest.fixture(scope="module")
def ttt_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ttt_run")
    game, model = _saved_network(directory, "tictactoe", seed=2)
    return directory, game, model


@pytest.fixture(scope="module")
def c4_engine(c4_run):
    directory, game, _ = c4_run
    return AnalysisEngine(game, load_evaluator(directory, game), default_visits=32)


@pytest.fixture(scope="module")
def ttt_engine(ttt_run):
    directory, game, _ = ttt_run
    return AnalysisEngine(game, load_evaluator(directory, game), default_visits=32)


class RowByRow:
    """Evaluates each position alone and records every call's batch size. Row by row, a
    position's network outputs do not depend on its batch (batched kernels may differ in the
    last bit), so batched and lone answers can be compared exactly."""

    def __init__(self, evaluator):
        self.evaluator = evaluator
        self.batch_sizes: list[int] = []

    def __call__(self, obs, mask):
        self.batch_sizes.append(len(obs))
        rows = [self.evaluator(obs[i : i + 1], mask[i : i + 1]) for i in range(len(obs))]
        return np.concatenate([r[0] for r in rows]), np.concatenate([np.reshape(r[1], -1) for r in rows])


def _check_answer(game, response, moves, visits):
    """Everything a non-terminal answer promises, checked against the game."""
    state = game.play(moves)
    legal = game.legal_mask(state)
    assert set(response) == RESPONSE_FIELDS
    assert response["terminal"] is False and response["returns"] is None
    assert response["to_play"] == game.to_play(state)
    policy = np.array(response["policy"])
    assert policy.shape == (game.num_actions,)
    assert np.all(policy[~legal] == 0) and np.all(policy[legal] > 0)
    assert policy.sum() == pytest.approx(1.0, abs=1e-5)
    entries = response["moves"]
    assert [set(e) for e in entries] == [MOVE_FIELDS] * len(entries)
    assert sorted(e["move"] for e in entries) == list(np.flatnonzero(legal))
    for e in entries:
        assert e["move_text"] == game.action_to_text(e["move"])
        assert e["prior"] == policy[e["move"]]
        if e["visits"] == 0:
            assert e["q"] is None
        else:
            assert -1.0 <= e["q"] <= 1.0
    assert entries[0]["move"] == response["best_move"]
    assert response["best_move_text"] == game.action_to_text(response["best_move"])
    assert legal[response["best_move"]]
    assert -1.0 <= response["value"] <= 1.0 and -1.0 <= response["raw_value"] <= 1.0
    assert sum(e["visits"] for e in entries) == response["visits"]
    assert response["visits"] == visits or (response["solved"] and response["visits"] < visits)


# ----------------------------------------------------------------------------- answers
def test_search_answer_has_the_documented_fields(c4_engine):
    game = c4_engine.game
    moves = [0, 0, 0, 0, 0, 0, 3]  # column 1 is full: action 0 is illegal
    (response,) = c4_engine.analyze([{"id": "q1", "game": "connect4", "moves": moves, "visits": 48}])
    assert response["id"] == "q1"
    _check_answer(game, response, moves, visits=48)
    assert response["policy"][0] == 0
    assert response["visits"] == 48 and not response["solved"]
    visits = [e["visits"] for e in response["moves"][1:]]
    assert visits == sorted(visits, reverse=True)  # after the best move: most visited first


def test_default_visits_and_the_initial_position(c4_engine):
    (response,) = c4_engine.analyze([{"id": 7}])
    _check_answer(c4_engine.game, response, [], visits=c4_engine.default_visits)
    assert response["id"] == 7 and response["to_play"] == 0


def test_raw_network_answer_is_the_networks_masked_softmax_and_value(c4_run, c4_engine):
    _, game, model = c4_run
    moves = [3, 3, 4, 0, 0, 0, 0, 0, 0]
    (raw,) = c4_engine.analyze([{"id": "raw", "moves": moves, "visits": 0}])
    _check_answer(game, raw, moves, visits=0)
    state = game.play(moves)
    with torch.no_grad():
        logits, value = model(torch.from_numpy(game.encode(state))[None])
    legal = torch.from_numpy(game.legal_mask(state))
    expected = torch.softmax(logits[0].masked_fill(~legal, -torch.inf), 0).numpy()
    np.testing.assert_allclose(raw["policy"], expected, atol=1e-5)
    assert raw["value"] == raw["raw_value"] == pytest.approx(float(value[0]), abs=1e-5)
    assert all(e["visits"] == 0 and e["q"] is None for e in raw["moves"])
    assert raw["best_move"] == int(np.argmax(expected))
    priors = [e["prior"] for e in raw["moves"]]
    assert priors == sorted(priors, reverse=True)
    # A search of the same position reports the same network view beside its own.
    (searched,) = c4_engine.analyze([{"id": "s", "moves": moves, "visits": 16}])
    np.testing.assert_allclose(searched["policy"], raw["policy"], atol=1e-6)
    assert searched["raw_value"] == pytest.approx(raw["raw_value"], abs=1e-6)


def test_values_are_from_the_side_to_move(ttt_engine):
    """X a1, O b2, X c3, O a3, X c1: X threatens b1 and c2 at once and O, to move, has no
    line to complete. Lost for O whatever the network thinks; the solver proves it."""
    moves = [0, 4, 8, 6, 2]
    (response,) = ttt_engine.analyze([{"id": 1, "moves": moves, "visits": 400}])
    assert response["to_play"] == 1
    assert response["solved"] and response["value"] == -1.0
    assert all(e["q"] == -1.0 for e in response["moves"] if e["visits"] > 0)
    # One move later, from X's side, the same search reports a proven win.
    (after,) = ttt_engine.analyze([{"id": 2, "moves": moves + [1], "visits": 400}])
    assert after["to_play"] == 0 and after["solved"] and after["value"] == 1.0


def _minimax(game, state) -> dict[int, float]:
    """Exact value of every legal move for the player to move (plain recursion; tic-tac-toe)."""

    @functools.lru_cache(maxsize=None)
    def value(key: tuple) -> float:
        s = np.array(key, dtype=np.int64)
        return max(move_value(s, int(a)) for a in game.legal_actions(s))

    def move_value(s, a) -> float:
        t = game.next_state(s, a)
        if game.is_terminal(t):
            return float(game.returns(t)[game.to_play(s)])
        mover_changes = game.to_play(t) != game.to_play(s)
        return -value(tuple(t)) if mover_changes else value(tuple(t))

    return {int(a): move_value(state, int(a)) for a in game.legal_actions(state)}


def test_search_finds_a_forced_win_with_an_untrained_network(ttt_engine):
    """After X b1, O a3, X's one winning move is a1, two moves from any line: no one-ply trick.
    The network is untrained; search and the solver find it."""
    game = ttt_engine.game
    moves = [1, 6]
    exact = _minimax(game, game.play(moves))
    winning = {a for a, v in exact.items() if v == 1.0}
    assert len(winning) == 1 and len(exact) == 7  # the position is what the docstring says
    (response,) = ttt_engine.analyze([{"id": "win", "moves": moves, "visits": 3000}])
    assert response["best_move"] in winning
    assert response["solved"] and response["value"] == 1.0
    for e in response["moves"]:  # proven moves report their exact value
        if e["q"] in (1.0, -1.0):
            assert exact[e["move"]] == e["q"]
        if e["proven"]:
            assert exact[e["move"]] == e["q"]
    assert response["moves"][0]["proven"] and response["moves"][0]["q"] == 1.0  # the proof of the root


def test_a_stopped_analysis_answers_with_the_visits_it_has(c4_engine):
    polls: list[int] = []
    stop = lambda: len(polls.append(1) or polls) > 10  # noqa: E731
    (response,) = c4_engine.analyze([{"id": "s", "moves": [3, 3], "visits": 5000}], stop=stop)
    assert 0 < response["visits"] < 5000 and sum(e["visits"] for e in response["moves"]) == response["visits"]


def test_terminal_position_gets_its_result(ttt_engine):
    game = ttt_engine.game
    moves = [0, 3, 1, 4, 2]  # X completes the top row
    (response,) = ttt_engine.analyze([{"id": "over", "moves": moves}])
    assert set(response) == RESPONSE_FIELDS
    assert response["terminal"] is True and response["solved"] is True
    assert response["returns"] == list(game.returns(game.play(moves))) == [1.0, -1.0]
    assert response["moves"] == [] and response["best_move"] is None and response["value"] is None
    assert response["policy"] == [0.0] * game.num_actions


def test_max_moves_and_include_policy(c4_engine):
    snake, kata = c4_engine.analyze(
        [
            {"id": "a", "visits": 8, "max_moves": 2, "include_policy": False},
            {"id": "b", "visits": 8, "maxMoves": 2, "includePolicy": False},
        ]
    )
    assert snake == {**kata, "id": "a"}
    assert "policy" not in snake and len(snake["moves"]) == 2
    assert snake["moves"][0]["move"] == snake["best_move"]
    (none,) = c4_engine.analyze([{"id": "c", "visits": 8, "max_moves": 0}])
    assert none["moves"] == [] and len(none["policy"]) == 7


def test_matching_game_options_are_accepted(c4_engine):
    queries = [
        {"id": 1, "game": "connect4", "options": {"width": 7, "height": 6}, "visits": 0},
        {"id": 2, "options": {"width": "7"}, "visits": 0},  # strings and defaults, as in games.make
        {"id": 3, "options": {}, "visits": 0},
    ]
    responses = c4_engine.analyze(queries)
    assert [r.get("error") for r in responses] == [None] * 3
    np.testing.assert_allclose(responses[0]["policy"], responses[1]["policy"], atol=1e-6)
    np.testing.assert_allclose(responses[0]["policy"], responses[2]["policy"], atol=1e-6)


# ----------------------------------------------------------------------------- bad queries
BAD_QUERIES = [
    ("not an object", [3, 3], None, "JSON object"),
    ("no id", {"moves": [3]}, None, '"id"'),
    ("id of a wrong type", {"id": [1], "moves": [3]}, None, '"id"'),
    ("unknown game", {"id": "g", "game": "chess"}, "g", "chess"),
    ("another registered game", {"id": "t", "game": "tictactoe"}, "t", "tictactoe"),
    ("other options", {"id": "o", "options": {"width": 8}}, "o", "width"),
    ("unknown option", {"id": "u", "options": {"depth": 2}}, "u", "depth"),
    ("options not an object", {"id": "on", "options": [7]}, "on", '"options"'),
    ("illegal move", {"id": "i", "moves": [0, 0, 0, 0, 0, 0, 0]}, "i", "moves[6]"),
    ("move out of range", {"id": "r", "moves": [3, 7]}, "r", "moves[1]"),
    ("negative move", {"id": "n", "moves": [-1]}, "n", "moves[0]"),
    ("move as text", {"id": "s", "moves": ["4"]}, "s", "moves[0]"),
    ("move as float", {"id": "f", "moves": [3.0]}, "f", "moves[0]"),
    ("move as bool", {"id": "b", "moves": [True]}, "b", "moves[0]"),
    ("moves not a list", {"id": "m", "moves": 3}, "m", '"moves"'),
    ("negative visits", {"id": "v", "visits": -1}, "v", '"visits"'),
    ("visits as text", {"id": "vt", "visits": "100"}, "vt", '"visits"'),
    ("visits as bool", {"id": "vb", "visits": True}, "vb", '"visits"'),
    ("too many visits", {"id": "vm", "visits": 10**9}, "vm", '"visits"'),
    ("include_policy not a bool", {"id": "p", "include_policy": 1}, "p", '"include_policy"'),
    ("negative max_moves", {"id": "x", "max_moves": -1}, "x", '"max_moves"'),
    ("both spellings", {"id": "2", "maxMoves": 1, "max_moves": 1}, "2", "not both"),
    ("unknown field", {"id": "k", "visit": 100}, "k", "'visit'"),
]


@pytest.mark.parametrize("query, qid, fragment", [q[1:] for q in BAD_QUERIES], ids=[q[0] for q in BAD_QUERIES])
def test_a_bad_query_gets_an_error_and_the_rest_are_answered(c4_engine, query, qid, fragment):
    good = {"id": "good", "moves": [3], "visits": 4}
    responses = c4_engine.analyze([good, query, dict(good, id="good2")])
    assert len(responses) == 3
    assert set(responses[1]) == {"id", "error"} and responses[1]["id"] == qid
    assert fragment in responses[1]["error"] and "\n" not in responses[1]["error"]
    assert [r["id"] for r in (responses[0], responses[2])] == ["good", "good2"]
    assert "error" not in responses[0] and "error" not in responses[2]


def test_a_move_after_the_game_ended_is_an_error(ttt_engine):
    (response,) = ttt_engine.analyze([{"id": 5, "moves": [0, 3, 1, 4, 2, 5]}])
    assert response["id"] == 5 and "moves[5]" in response["error"] and "over" in response["error"]


def test_a_failing_evaluator_answers_with_errors_and_the_engine_recovers(c4_run):
    directory, game, _ = c4_run
    good = load_evaluator(directory, game)
    calls = {"n": 0}

    def flaky(obs, mask):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("device lost")
        return good(obs, mask)

    engine = AnalysisEngine(game, flaky)
    first = engine.analyze([{"id": 1, "visits": 4}, {"id": 2, "visits": 0}])
    assert [r["id"] for r in first] == [1, 2]
    assert sum("device lost" in r.get("error", "") for r in first) == 1  # the failed group only
    again = engine.analyze([{"id": 3, "visits": 4}])
    assert "error" not in again[0] and again[0]["visits"] == 4


# ----------------------------------------------------------------------------- batching
POSITIONS = [[], [3], [3, 3, 4], [0, 1, 2, 3, 4, 5], [3, 2, 3, 2, 3], [6, 6, 6]]
#: Positions five or more plies from any four in a row: a small search meets no finished game.
OPENINGS = [[], [3], [0, 6], [1, 5], [0, 1, 2, 3, 4, 5], [6, 6, 6]]


def test_batched_answers_equal_lone_answers(c4_run):
    directory, game, _ = c4_run
    engine = AnalysisEngine(game, RowByRow(load_evaluator(directory, game)), seed=5)
    queries = [
        {"id": f"q{i}", "moves": moves, "visits": visits}
        for i, (moves, visits) in enumerate(zip(POSITIONS * 2, [0, 8, 24] * 4))
    ]
    batched = engine.analyze(queries)
    alone = [engine.analyze([q])[0] for q in queries]
    assert [r["id"] for r in batched] == [q["id"] for q in queries]
    assert batched == alone
    for q, r in zip(queries, batched):
        _check_answer(game, r, q["moves"], q["visits"])


def test_one_evaluator_call_per_search_step_for_the_whole_batch(c4_run):
    directory, game, _ = c4_run
    recorder = RowByRow(load_evaluator(directory, game))
    engine = AnalysisEngine(game, recorder)
    visits = 12
    responses = engine.analyze([{"id": i, "moves": m, "visits": visits} for i, m in enumerate(OPENINGS)])
    assert all(r["visits"] == visits for r in responses)
    # The roots' expansion, then one call per simulation step, each for every position.
    assert recorder.batch_sizes == [len(OPENINGS)] * (visits + 1)

    recorder.batch_sizes.clear()
    engine.analyze([{"id": i, "moves": m, "visits": 0} for i, m in enumerate(OPENINGS)])
    assert recorder.batch_sizes == [len(OPENINGS)]


def test_large_queries_are_split_into_searches_of_bounded_size(c4_run):
    directory, game, _ = c4_run
    recorder = RowByRow(load_evaluator(directory, game))
    engine = AnalysisEngine(game, recorder, default_visits=10, max_batch=4, max_visits=20)
    responses = engine.analyze([{"id": i, "moves": m, "visits": 0} for i, m in enumerate(POSITIONS)])
    assert [r["id"] for r in responses] == list(range(len(POSITIONS)))
    assert recorder.batch_sizes == [4, 2]  # max_batch
    recorder.batch_sizes.clear()
    engine.analyze([{"id": i, "visits": 10} for i in range(3)])
    assert recorder.batch_sizes == [2] * 11 + [1] * 11  # at most max_visits nodes per search


# ----------------------------------------------------------------------------- the line loop
def test_serve_answers_every_line_and_cheap_groups_first(c4_engine):
    lines = [
        json.dumps({"id": "search", "moves": [3], "visits": 16}),
        "{not json",
        "",
        json.dumps({"id": "raw", "moves": [3], "visits": 0}),
        json.dumps({"id": "bad", "moves": [99]}),
        "[1, 2]",
        json.dumps({"id": "search2", "visits": 16}),
    ]
    out = io.StringIO()
    # A long wait is never spent: end of input arrives with the lines and ends the batch.
    written = serve(c4_engine, io.StringIO("\n".join(lines) + "\n"), out, batch_wait_ms=60_000)
    responses = [json.loads(line) for line in out.getvalue().splitlines()]
    assert written == len(responses) == 6  # the blank line is no query
    # Malformed lines, then bad queries, then the raw network, then the search.
    assert [r["id"] for r in responses] == [None, "bad", None, "raw", "search", "search2"]
    assert "malformed JSON" in responses[0]["error"]


def test_serve_batches_of_at_most_max_batch(c4_run):
    directory, game, _ = c4_run
    recorder = RowByRow(load_evaluator(directory, game))
    engine = AnalysisEngine(game, recorder, max_batch=3)
    queries = "".join(json.dumps({"id": i, "visits": 0}) + "\n" for i in range(7))
    out = io.StringIO()
    assert serve(engine, io.StringIO(queries), out, batch_wait_ms=60_000) == 7
    assert sorted(json.loads(line)["id"] for line in out.getvalue().splitlines()) == list(range(7))
    assert recorder.batch_sizes == [3, 3, 1]


# ----------------------------------------------------------------------------- the command
def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_main_serves_an_onnx_file_for_the_named_game(c4_run, tmp_path, monkeypatch, capsys):
    _, game, model = c4_run
    path = tmp_path / "brain.onnx"
    path.write_bytes(onnx_bytes(model, game.obs_shape))
    with pytest.raises(AnalysisError, match="name the game it plays"):
        main(_args("--checkpoint", str(path)))
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"id": 1, "moves": [3]}\n{"id": 2, "visits": 0}\n'))
    assert main(_args("--checkpoint", str(path), "--game", "connect4", "--visits", "8")) == 0
    responses = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(responses) == {1, 2}
    _check_answer(game, responses[1], [3], visits=8)
    _check_answer(game, responses[2], [], visits=0)


def test_main_checks_game_flags_against_the_checkpoint(c4_run, monkeypatch, capsys):
    directory = str(c4_run[0])
    with pytest.raises(games.GameError, match="tictactoe"):
        main(_args("--checkpoint", directory, "--game", "tictactoe"))
    with pytest.raises(games.GameError, match="width=8"):
        main(_args("--checkpoint", directory, "-o", "width=8"))
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"id": "x", "visits": 0}\n'))
    assert main(_args("--checkpoint", directory, "--game", "connect4", "-o", "width=7")) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "x"


def test_analysis_search_has_no_noise():
    assert ANALYSIS_SEARCH.dirichlet_fraction == 0 and ANALYSIS_SEARCH.temperature_moves == 0
    assert ANALYSIS_SEARCH.solver and ANALYSIS_SEARCH.root_policy == "puct"


def test_subprocess_answers_each_query_as_it_arrives(c4_run, tmp_path):
    """The real loop: a query is answered while stdin stays open, a bad line does not stop the
    engine, and end of input ends it with exit code 0."""
    directory, game, _ = c4_run
    stderr = open(tmp_path / "stderr.txt", "w")  # a file, not a pipe: nobody must drain it
    process = subprocess.Popen(
        [sys.executable, "-m", "selfplay.tools.analyze", "--checkpoint", str(directory), "--visits", "16"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
    )
    watchdog = threading.Timer(180, process.kill)  # a hang fails the test instead of the suite
    watchdog.start()
    try:
        def ask(line: str) -> dict:
            process.stdin.write(line + "\n")
            process.stdin.flush()
            answer = process.stdout.readline()
            assert answer, f"no answer; stderr: {(tmp_path / 'stderr.txt').read_text()}"
            return json.loads(answer)

        first = ask(json.dumps({"id": "q1", "game": "connect4", "moves": [3, 3, 4]}))
        assert first["id"] == "q1"
        _check_answer(game, first, [3, 3, 4], visits=16)
        oops = ask("{oops")
        assert oops["id"] is None and "malformed JSON" in oops["error"]
        second = ask(json.dumps({"id": "q2", "moves": [3], "visits": 0}))
        assert second["id"] == "q2" and second["visits"] == 0
        process.stdin.write(json.dumps({"id": "last", "moves": [9]}) + "\n")
        process.stdin.close()
        rest = process.stdout.read().splitlines()
        assert process.wait() == 0
    finally:
        watchdog.cancel()
        process.kill()
        stderr.close()
    assert [json.loads(line)["id"] for line in rest] == ["last"]
    assert "ready" in (tmp_path / "stderr.txt").read_text()
