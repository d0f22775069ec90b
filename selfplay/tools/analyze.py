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

* :func:`serve`: the line loop (a reader thread, batching by arrival, a flush per answer) around
  :class:`selfplay.evaluation.analysis.AnalysisEngine`, which validates, batches, searches and
  builds the responses.
* :func:`add_arguments` / :func:`main`: the command (checkpoint or ``.onnx`` file in, loop out).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import queue
import sys
import threading
from dataclasses import dataclass
from typing import Any, TextIO

from ..evaluation.analysis import AnalysisEngine, problem_line
from ..evaluation.networks import load_game_and_evaluator
from .args import integer, number

__all__ = ["MAX_LINE_CHARS", "add_arguments", "main", "serve"]

#: The longest query line read, in characters; a longer one is answered with an error unread.
#: The longest real query (a 10,000-move arena game) is under 50,000 characters.
MAX_LINE_CHARS = 1 << 20


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
        print(f"selfplay analyze: input ended: {problem_line(e)}", file=sys.stderr, flush=True)
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
        return _MalformedLine(f"malformed JSON: {problem_line(e)}")


def _encode(response: dict[str, Any]) -> str:
    """``response`` as one JSON line that any reader can take. ASCII only (``ensure_ascii``):
    a lone surrogate from a ``\\ud800`` escape goes back out as the same escape, never as bytes
    that UTF-8 cannot hold. A response that cannot be written (an id of 5000 digits, from
    Python) becomes an error that can."""
    try:
        return json.dumps(response, separators=(",", ":"), allow_nan=False, ensure_ascii=True)
    except Exception as e:
        problem = f"the response could not be written as JSON: {problem_line(e)}"
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
