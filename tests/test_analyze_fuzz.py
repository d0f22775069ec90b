"""The analysis engine never dies of its input: any JSON value in any field, huge and
non-finite numbers, deep nesting, long lines, invalid UTF-8. Every query (every non-blank
line) gets exactly one response, its id echoed when it is a usable id, every response is one
valid JSON line, and the engine keeps serving. Fuzzed with hypothesis on ``AnalysisEngine``
and on ``serve`` over byte streams, then once through the real ``selfplay analyze`` process.

The evaluator is a cheap numpy function and searches are at most 4 visits: what is tested is
what the engine does with input, not the network.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import games
from selfplay.evaluation.analysis import QUERY_FIELDS, AnalysisEngine
from selfplay.tools.analyze import MAX_LINE_CHARS, _encode, serve
from selfplay.model.checkpoint import save_checkpoint
from selfplay.model.network import NetConfig, build_network

REPO = Path(__file__).resolve().parents[1]
MAX_VISITS = 4
RESPONSE_FIELDS = {
    "id", "terminal", "to_play", "best_move", "best_move_text", "value", "raw_value",
    "visits", "solved", "returns", "moves", "policy",
}
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _tilted(obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic stand-in network: logits favour low columns, value from the first plane."""
    n, a = mask.shape
    logits = -np.tile(np.arange(a, dtype=np.float32), (n, 1)) / a  # float32[N, A]
    value = np.tanh(obs.reshape(n, -1).sum(axis=1) / 10).astype(np.float32)  # float32[N]
    return logits, value


@pytest.fixture(scope="module")
def engine() -> AnalysisEngine:
    engine = AnalysisEngine(games.make("connect4"), _tilted, default_visits=2, max_batch=8, max_visits=MAX_VISITS)
    engine.warm_up()  # compile the search once, outside the examples
    return engine


# ----------------------------------------------------------------------------- strategies
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=8)  # lone surrogates included
#: Integers past int64 and past Python's 4300-digit limit; built lazily (hypothesis prints its
#: strategies, and such an int cannot be printed).
BIG_INTS = st.sampled_from([63, 64, 300, 4300, 5000]).flatmap(lambda d: st.sampled_from([1, -1]).map(lambda s: s * 10**d))
NUMBERS = st.integers() | BIG_INTS | st.floats() | st.sampled_from([1e999, -1e999, float("nan"), 7.9, 3.0, -0.0])
SCALARS = st.none() | st.booleans() | NUMBERS | ANY_TEXT
JSONISH = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3), max_leaves=8)


def _deep(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


ODD = JSONISH | st.sampled_from([400, 2000]).map(_deep)  # nesting near and past the recursion limit
FIELDS = {
    "id": st.text(max_size=6) | st.integers(-(2**70), 2**70) | ODD,
    "game": st.sampled_from(["connect4", "tictactoe", "chess"]) | ODD,
    "options": st.fixed_dictionaries({}, optional={"width": ODD | st.just(7), "height": ODD, "lineup": ODD}) | ODD,
    "moves": st.lists(st.integers(0, 6), max_size=12) | st.lists(ODD, max_size=3) | ODD,
    "visits": st.integers(-1, MAX_VISITS + 1) | ODD,
    "include_policy": st.booleans() | ODD,
    "max_moves": st.integers(-1, 8) | ODD,
    "includePolicy": st.booleans() | ODD,
    "maxMoves": st.integers(-1, 8) | ODD,
}
QUERIES = st.fixed_dictionaries({}, optional={**FIELDS, "visit": ODD, "\ud800": ODD})
ANY_QUERY = QUERIES | QUERIES.map(lambda q: {"id": "x", **q}) | ODD  # not always an object


def _usable_id(query) -> bool:
    qid = query.get("id") if isinstance(query, dict) else None
    return isinstance(qid, (str, int)) and not isinstance(qid, bool)


def _check_response(query, response) -> None:
    """One response for ``query``: its id when usable, one-line error or the answer fields,
    writable as one JSON line."""
    assert isinstance(response, dict) and "id" in response
    assert response["id"] == (query["id"] if _usable_id(query) else None)
    if "error" in response:
        assert set(response) == {"id", "error"}
        error = response["error"]
        assert isinstance(error, str) and error and "\n" not in error and len(error) <= 300
    else:
        assert isinstance(query, dict) and set(query) <= set(QUERY_FIELDS) | {"includePolicy", "maxMoves"}
        assert set(response) <= RESPONSE_FIELDS and 0 <= response["visits"] <= MAX_VISITS
        assert response["terminal"] or response["best_move"] in range(7)
    line = _encode(response)
    assert "\n" not in line and line.isascii()
    decoded = json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in a response"))
    assert decoded["id"] == response["id"] or response["id"] is not None and abs(response["id"]) > 10**4000


# ----------------------------------------------------------------------------- the engine
@settings(SETTINGS, max_examples=300)
@given(st.lists(ANY_QUERY, max_size=5))
def test_the_engine_answers_any_queries(engine, queries):
    responses = engine.analyze(queries)
    assert len(responses) == len(queries)
    for query, response in zip(queries, responses):
        _check_response(query, response)


@pytest.mark.parametrize(
    "query, error",
    [
        ({"id": "1", "moves": [], "options": {"width": 1e999}}, "option 'width' of connect4 takes an integer, got inf"),
        ({"id": "2", "options": {"width": 7.9}}, "takes an integer, got 7.9"),
        ({"id": "3", "options": {"width": 10**5000}}, "width=<integer of ~5001 digits>"),
        ({"id": "4", "visits": 10**5000}, '"visits" must be in 0..4, got <integer of ~5001 digits>'),
        ({"id": "5", "moves": _deep(5000)}, "moves[0] must be an integer, got <list>"),
        ({"id": "6", "visits": float("nan")}, '"visits" must be an integer, got nan'),
        ({"id": "7", "options": {1: 2}}, "cannot read the query: TypeError: keywords must be strings"),
        ({"id": "8", "x" * 5000: 1}, "unknown field 'xxxxx"),
    ],
)
def test_bad_values_get_their_own_one_line_error(engine, query, error):
    good = {"id": "good", "visits": 1}
    responses = engine.analyze([good, query, good])
    assert responses[1] == {"id": query["id"], "error": responses[1]["error"]}
    assert error in responses[1]["error"] and len(responses[1]["error"]) <= 300
    assert "error" not in responses[0] and "error" not in responses[2]


def test_an_id_too_long_to_print_is_answered_and_written(engine):
    huge = 10**5000  # possible from Python only: JSON input stops at 4300 digits
    (response,) = engine.analyze([{"id": huge, "visits": 1}])
    assert response["id"] == huge and "error" not in response
    written = json.loads(_encode(response))
    assert written["id"] is None and "could not be written as JSON" in written["error"]


@pytest.mark.parametrize(
    "evaluator",
    [
        lambda obs, mask: 1 / 0,
        lambda obs, mask: None,
        lambda obs, mask: (np.zeros((1, 1)), np.zeros(1)),
        lambda obs, mask: (np.full(mask.shape, np.nan), np.zeros(len(obs))),
        lambda obs, mask: (np.zeros(mask.shape), np.full(len(obs), np.inf)),
        lambda obs, mask: _deep(100_000),  # RecursionError in numpy
    ],
    ids=["raises", "None", "wrong shape", "NaN logits", "inf value", "deep list"],
)
def test_any_evaluator_failure_is_per_query_errors(evaluator):
    engine = AnalysisEngine(games.make("connect4"), evaluator, default_visits=2)
    queries = [{"id": 1, "visits": 0}, {"id": 2, "visits": 2}, {"id": 3, "moves": [9]}, {"id": 4, "visits": 1}]
    responses = engine.analyze(queries)
    assert [r["id"] for r in responses] == [1, 2, 3, 4]
    assert all(set(r) == {"id", "error"} for r in responses)
    assert all(r["error"].startswith("evaluation failed: ") for r in responses if r["id"] != 3)


def test_a_failure_outside_any_group_answers_the_rest(engine, monkeypatch):
    """If the engine itself fails half way through, what is left still gets an answer."""
    original = AnalysisEngine._answer_groups

    def fails_after_the_first_group(self, queries, stop=None):
        groups = original(self, queries, stop)
        yield next(groups)
        raise MemoryError("out of memory")

    monkeypatch.setattr(AnalysisEngine, "_answer_groups", fails_after_the_first_group)
    responses = engine.analyze([{"id": "bad", "moves": [9]}, {"id": "a", "visits": 1}, {"id": "b", "visits": 2}])
    assert responses[0]["id"] == "bad" and "moves[0]" in responses[0]["error"]
    assert responses[1:] == [{"id": i, "error": "internal error: MemoryError: out of memory"} for i in "ab"]


# ----------------------------------------------------------------------------- the line loop
MAX_LINE = 1000  # serve's line limit in these tests (the command's is 1 MiB)


def _json_line(query) -> bytes:
    """``query`` as Python's json writes it (NaN, Infinity; an int past 4300 digits as text)."""
    try:
        return json.dumps(query, allow_nan=True).encode()
    except (ValueError, RecursionError):  # an int of more than 4300 digits, or deep nesting
        return b'{"id": "big", "visits": ' + b"9" * 5000 + b"}"


LINES = (
    ANY_QUERY.map(lambda q: (q, _json_line(q)))
    | st.binary(max_size=40).map(lambda b: (None, b.replace(b"\n", b"")))  # not UTF-8, not JSON
    | st.sampled_from([b"[" * 100_000, b"{" * 3000, b" " * 50, b"\xff" * 2 * MAX_LINE, b'"' + b"a" * MAX_LINE + b'"',
                       b'{"id": "nan", "visits": NaN}', b'{"id": 7, "moves": [Infinity]}', b'{"id": "z", "visits": 1e999}',
                       b'{"id": "\\ud800", "visits": 1}', b"{\"id\": 1}\r{\"id\": 2}"]).map(lambda b: (None, b))
)


def _serve_bytes(engine, raw: bytes, max_line_chars: int = MAX_LINE) -> list[dict]:
    """``serve`` on ``raw`` read as ``main`` reads stdin; the parsed response lines."""
    stdin = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", errors="replace")
    out = io.StringIO()
    written = serve(engine, stdin, out, batch_wait_ms=1, max_line_chars=max_line_chars)
    lines = out.getvalue().splitlines()
    assert written == len(lines)
    no_constants = lambda c: pytest.fail(f"{c} in a response")  # noqa: E731
    return [json.loads(line, parse_constant=no_constants) for line in lines]


def _expected_responses(raw: bytes, max_line_chars: int = MAX_LINE) -> int:
    """One response per line that is not blank or is too long, as the engine reads lines."""
    text = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", errors="replace").read()
    return sum(1 for line in text.split("\n") if len(line) > max_line_chars or line.strip())


@settings(SETTINGS, max_examples=150)
@given(st.lists(LINES, max_size=8))
def test_serve_answers_every_line_of_any_bytes(engine, lines):
    last = b'{"id": "last", "moves": [3], "visits": 1}'
    raw = b"\n".join([line for _, line in lines] + [last])
    responses = _serve_bytes(engine, raw)
    assert len(responses) == _expected_responses(raw)
    assert all(set(r) == {"id", "error"} or set(r) <= RESPONSE_FIELDS for r in responses)
    # Every query with a usable id, on a line short enough to read, is answered under that id.
    expected = Counter(str(q["id"]) for q, line in lines if _usable_id(q) and len(line) <= MAX_LINE)
    answered = Counter(str(r["id"]) for r in responses)
    assert expected + Counter(["last"]) <= answered
    assert [r for r in responses if r["id"] == "last"][-1]["visits"] == 1  # and the engine still serves


def test_serve_the_issue_queries(engine):
    raw = b"\n".join([
        b'{"id": "1", "moves": [], "options": {"width": 1e999}}',
        b'{"id": "2", "moves": [], "options": {"width": Infinity}}',
        b'{"id": 3, "visits": ' + b"9" * 5000 + b"}",
        b"[" * 100_000,
        b'{"id": "\\ud800", "visits": 1}',
        b'\xff\xfe{"id": 5}',
        b'{"id": 6, "moves": [' + b"0," * (MAX_LINE_CHARS // 2) + b"0]}",
        b'{"id": "ok", "moves": [3], "visits": 2}',
    ]) + b"\n"
    answered = _serve_bytes(engine, raw, max_line_chars=MAX_LINE_CHARS)  # the command's limit
    assert len(answered) == 8
    responses = {r["id"]: r for r in answered}
    errors = sorted(r["error"] for r in answered if r["id"] is None)
    assert "option 'width' of connect4 takes an integer, got inf" in responses["1"]["error"]
    assert "got inf" in responses["2"]["error"]
    assert responses["\ud800"]["visits"] == 1 and responses["ok"]["visits"] == 2
    assert errors[:2] == [f"line longer than {MAX_LINE_CHARS} characters", "malformed JSON: Expecting value: line 1 column 1 (char 0)"]
    assert errors[2].startswith("malformed JSON: ValueError: ") and "4300 digits" in errors[2]  # Python's words
    assert errors[3:] == ["malformed JSON: nested too deeply"]


def test_an_infinite_batch_wait_does_not_overflow(engine):
    out = io.StringIO()
    for wait in (float("inf"), float("nan"), -1.0):
        assert serve(engine, io.StringIO('{"id": 1, "visits": 1}\n{"id": 2, "visits": 0}\n'), out, batch_wait_ms=wait) == 2


# ----------------------------------------------------------------------------- the command
def test_the_command_answers_the_issue_query_and_keeps_serving(tmp_path):
    """The query that used to kill ``selfplay analyze``, then a normal one: an error, then an
    answer, and exit code 0 at end of input."""
    game = games.make("connect4")
    torch.manual_seed(0)
    net = build_network(NetConfig(kind="resnet", channels=8, blocks=1, hidden=8), game.obs_shape, game.num_actions)
    save_checkpoint(tmp_path, 1, net.eval(), game=game)
    stderr = open(tmp_path / "stderr.txt", "w")  # a file, not a pipe: nobody must drain it
    process = subprocess.Popen(
        [sys.executable, "-m", "selfplay", "analyze", "--checkpoint", str(tmp_path), "--visits", "4"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
    )
    watchdog = threading.Timer(120, process.kill)  # a hang fails the test instead of the suite
    watchdog.start()
    try:
        process.stdin.write(b'{"id": "1", "moves": [], "options": {"width": 1e999}}\n')
        process.stdin.flush()
        first = json.loads(process.stdout.readline() or b"null")
        assert first == {"id": "1", "error": "option 'width' of connect4 takes an integer, got inf"}, (
            (tmp_path / "stderr.txt").read_text()
        )
        process.stdin.write(b'{"id": "2", "moves": [3, 3]}\n')
        process.stdin.close()
        rest = [json.loads(line) for line in process.stdout.read().splitlines()]
        assert process.wait() == 0
    finally:
        watchdog.cancel()
        process.kill()
        stderr.close()
    assert [r["id"] for r in rest] == ["2"] and rest[0]["visits"] == 4 and rest[0]["to_play"] == 0
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text()
