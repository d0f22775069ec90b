"""The command line: listing, terminal play, one-line errors with exit code 2."""

import io
import json
import subprocess
import sys

import pytest

from selfplay.tools.cli import main


def run_cli(*args, stdin=""):
    proc = subprocess.run(
        [sys.executable, "-m", "selfplay", *args], input=stdin, capture_output=True, text=True, timeout=300
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_games_lists_every_game_with_options(capsys):
    assert main(["games", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"tictactoe", "connect4", "othello", "gomoku", "arena"} <= set(rows)
    assert rows["connect4"]["options"]["width"]["default"] == 7
    assert rows["connect4"]["actions"] == 7


@pytest.mark.parametrize(
    "args, message",
    [
        (["play-text", "chess"], "unknown game 'chess'"),
        (["play-text", "connect4", "-o", "depth=3"], "unknown option 'depth'"),
        (["play-text", "connect4", "-o", "width"], "not KEY=VALUE"),
        (["nonsense"], "invalid choice"),
        # numeric flags: finite and in range, or argparse's one line (no run that never ends)
        (["bench", "games", "--seconds", "nan"], "argument --seconds: must be a finite number"),
        (["bench", "search", "--seconds", "inf"], "argument --seconds: must be a finite number"),
        (["bench", "search", "--batch", "0"], "argument --batch: must be >= 1"),
        (["play-text", "tictactoe", "--visits", "-1"], "argument --visits: must be >= 0"),
        (["play", "tictactoe", "--size", "0", "0"], "argument --size: must be in 120..4096"),
        (["analyze", "--checkpoint", "x", "--batch-wait-ms", "inf"], "argument --batch-wait-ms: must be a finite"),
        (["analyze", "--checkpoint", "x", "--max-batch", "two"], "argument --max-batch: must be an integer"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("move, message", [("zz", "cannot read move 'zz'"), ("9", "column 9 is off the board"),
                                           ("8", "column 8 is off the board")])
def test_bad_move_in_a_script_is_exit_2(move, message, monkeypatch, capsys):
    # connect4 column 8 does not exist on 7 columns; "8" and "9" must both be refused. In this
    # process (stdin a file, not a terminal: a script); the next test runs the command in its own.
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{move}\n"))
    assert main(["play-text", "connect4"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_illegal_move_in_a_script_is_exit_2():
    code, out, err = run_cli("play-text", "tictactoe", "--opponent", "random", stdin="b2\nb2\n")
    assert code == 2 and "illegal move 'b2'" in err and "Traceback" not in err


def test_a_mistyped_or_illegal_move_at_a_terminal_is_asked_again():
    """stdin a TTY (a pseudo-terminal here): bad moves are answered with the reason and the same
    question; the game goes on. Scripts stop at a bad move instead (exit 2, above)."""
    import os
    import pty

    terminal, their_end = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "selfplay", "play-text", "tictactoe", "--opponent", "random"],
        stdin=their_end, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=0,
    )
    os.close(their_end)

    def until_prompt() -> str:
        seen = ""
        while not (seen.endswith("): ") and " to move (" in seen[seen.rfind("\n") + 1 :]):
            ch = proc.stdout.read(1)
            assert ch, f"the game ended early: {seen[-500:]}"
            seen += ch
        return seen

    try:
        until_prompt()
        answers = []
        for move in ("zz", "b2", "b2", "quit"):
            os.write(terminal, f"{move}\n".encode())
            answers.append(until_prompt() if move != "quit" else "")
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        os.close(terminal)
        if proc.poll() is None:
            proc.kill()
    assert "cannot read move 'zz'" in answers[0] and "try again" in answers[0]
    assert " 2 . X ." in answers[1] and "random played" in answers[1]
    assert "illegal move 'b2'" in answers[2] and "try again" in answers[2]


def test_a_whole_game_in_the_terminal():
    """Answer each prompt with the first legal move it offers, until the game ends with a result."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "selfplay", "play-text", "connect4", "--opponent", "greedy"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=0,
    )
    seen, moves = "", 0
    while True:
        ch = proc.stdout.read(1)
        if not ch:
            break
        seen += ch
        line = seen[seen.rfind("\n") + 1 :]
        if line.endswith("): ") and " to move (" in line:  # "player_0 to move (1, 2, ...): "
            legal = line[line.rindex("(") + 1 : -3].split(", ")
            proc.stdin.write(legal[0] + "\n")
            moves += 1
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert moves >= 4 and any(r in seen for r in ("You win.", "You lose.", "Draw."))


def _commands() -> list[list[str]]:
    """Every command and bench subcommand, from the parser itself (a new one is covered too)."""
    import argparse

    from selfplay.tools.cli import build_parser

    def subcommands(parser):
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return actions[0].choices if actions else {}

    top = subcommands(build_parser([]))
    return [[]] + [[name] for name in top] + [["bench", name] for name in subcommands(top["bench"])]


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "selfplay")
def test_every_help_page_prints(command, capsys):
    """--help formats every help string ('95%' unescaped once crashed `selfplay --help`)."""
    argv = command + ["--help"]
    with pytest.raises(SystemExit) as exit_info:
        from selfplay.tools.cli import build_parser

        build_parser(argv).parse_args(argv)
    assert exit_info.value.code == 0
    assert "usage: " in capsys.readouterr().out


# The first import of torch in a fresh `selfplay` process: what OMP_WAIT_POLICY was at that moment
# (OpenMP reads it once, when torch loads), then the command line's exit code.
_WATCH_TORCH = """
import os, sys

class FirstTorchImport:
    policy = "torch never imported"

    def find_spec(self, name, path=None, target=None):
        if name == "torch" and FirstTorchImport.policy == "torch never imported":
            FirstTorchImport.policy = os.environ.get("OMP_WAIT_POLICY")
        return None

sys.meta_path.insert(0, FirstTorchImport())
from selfplay.tools.cli import main

code = main(sys.argv[1:])
print(f"OMP_WAIT_POLICY when torch loaded: {FirstTorchImport.policy}; exit {code}")
"""


@pytest.mark.parametrize("command", [["train", "tictactoe"], ["league", "tictactoe"]], ids=" ".join)
def test_a_training_command_sets_a_passive_omp_wait_policy_before_torch_loads(command, tmp_path):
    """docs/training.md, "CPU threads": a learner's spinning OpenMP threads make it tens of times
    slower on shared cores. Setting OMP_WAIT_POLICY after torch is imported does nothing, and
    building the parser of `selfplay train` imports torch, so the program must set it first."""
    import os
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-c", _WATCH_TORCH, *command, "--preset", "tiny", "--print-config"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "OMP_WAIT_POLICY when torch loaded: PASSIVE; exit 0"
