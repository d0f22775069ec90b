"""Game plugins: the example package (examples/hex) installed as a user would, trained and played
through the commands by name; broken plugins reported in one line each, never breaking the rest.

The example is installed offline into a temporary directory (pip --target, no build isolation,
no index) and put on PYTHONPATH of the commands run here, so the test venv is never changed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import games
from games.testing import check_game

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "hex"


def selfplay(*args: str, path: Path | None = None, stdin: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(path) if path else "", str(ROOT)) if p)}
    return subprocess.run([sys.executable, "-m", "selfplay", *args], input=stdin, capture_output=True, text=True,
                          env=env, cwd=path or ROOT, timeout=timeout)


@pytest.fixture(scope="module")
def hex_module():
    """The example's module, imported from its file (its rules, without installing it)."""
    spec = importlib.util.spec_from_file_location("selfplay_hex", EXAMPLE / "selfplay_hex.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["selfplay_hex"] = module  # numba's disk cache finds kernels through their module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["selfplay_hex"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """examples/hex installed by pip, offline, into a directory of its own; returns it."""
    work = tmp_path_factory.mktemp("hex")
    shutil.copytree(EXAMPLE, work / "src", ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    target = work / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(work / "src")],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return target


# ----------------------------------------------------------------------------- the example game


@pytest.mark.parametrize("size", [3, 5, 7])
def test_hex_passes_the_interface_checks(hex_module, size):
    check_game(hex_module.make(size=size), num_games=10)


def test_hex_rules_known_answers(hex_module):
    game = hex_module.make(size=3)  # cells: a1 b1 c1 / a2 b2 c2 / a3 b3 c3, rows shifted right
    red_column = [game.parse_action(t) for t in ("a1", "b1", "a2", "b2", "a3")]  # red: a1 a2 a3; blue: b1 b2
    state = game.play(red_column)
    assert game.is_terminal(state) and list(game.returns(state)) == [1.0, -1.0]
    # blue joins left and right along the anti-diagonal neighbours: a3 - b2 - c1
    state = game.play([game.parse_action(t) for t in ("a1", "a3", "a2", "b2", "b3", "c1")])
    assert game.is_terminal(state) and list(game.returns(state)) == [-1.0, 1.0]
    # a1 and b2 do not touch (b2 touches a2, b1, c1, a3, c2, b3): no chain for red down a1, b2, c3
    state = game.play([game.parse_action(t) for t in ("a1", "a2", "b2", "b1", "c3")])
    assert not game.is_terminal(state)
    # no draws: every full board has exactly one winner
    rng = np.random.default_rng(0)
    for _ in range(200):
        state = game.initial_state()
        for a in rng.permutation(9):
            game.apply_action_fn(game.params, state, np.int64(a))
        red, blue = (hex_module._joins(game.params, state[p], *goal) for p, goal in
                     ((0, (game.params[4], game.params[5])), (1, (game.params[2], game.params[3]))))
        assert red != blue


# ----------------------------------------------------------------------------- installed, by name


def test_the_installed_example_lists_checks_trains_and_plays(installed, tmp_path):
    done = selfplay("games", "--json", path=installed)
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert rows["hex"]["source"] == "selfplay-hex 0.1.0" and rows["connect4"]["source"] == "built in"
    assert rows["hex"]["options"]["size"]["default"] == 5 and rows["hex"]["observation"] == [3, 5, 5]

    done = selfplay("check-game", "hex", "-o", "size=4", path=installed)
    assert done.returncode == 0 and "passes" in done.stdout, done.stderr

    run = tmp_path / "run"
    done = selfplay("train", "hex", "-o", "size=3", "--preset", "tiny", "--run-dir", str(run), "--generations", "1",
                    "--minutes", "0", "--selfplay.num-actors", "0", "--selfplay.games-per-actor", "8",
                    "--selfplay.positions-per-generation", "40", "--search.num-simulations", "4",
                    "--search.gumbel-considered", "4", "--learner.min-positions", "10", "--learner.batch-size", "16",
                    "--eval.every", "1", "--eval.games", "2", "--eval.visits", "2", "--eval.opponents", "random",
                    "--run.progress", "false", "--no-final", path=installed)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((run / "config.json").read_text())["game"] == "hex"

    done = selfplay("arena", str(run), "random", "--games", "4", "--visits", "4", "--no-progress", "--json", path=installed)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["game"] == "hex_v1" and result["options"] == {"size": 3}

    done = selfplay("analyze", "--checkpoint", str(run), stdin=json.dumps({"id": "q", "moves": [4], "visits": 8}) + "\n",
                    path=installed)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["id"] == "q" and len(answer["policy"]) == 9 and answer["policy"][4] == 0.0  # b2 is taken

    # without the plugin (as in this process), the checkpoint's game is named in one line
    from selfplay.evaluation.matches import resolve_game

    with pytest.raises(games.GameError, match="checkpoint is for game 'hex_v1', which this version does not know"):
        resolve_game(None, {}, [str(run)])


# ----------------------------------------------------------------------------- broken plugins

BROKEN_KERNEL = '''
import numpy as np
from numba import njit
import games
from games import tictactoe as t

@njit(cache=True)
def outcome(params, state, player):   # returns int64 where the interface says float64
    return 1 if t._has_line(state[player]) else 0

def make():
    import dataclasses
    return dataclasses.replace(t.make(), name="badkernel", outcome_fn=outcome)
'''


@pytest.fixture
def broken(tmp_path) -> Path:
    """A package registering five plugins, four of them broken, by a dist-info on the path."""
    info = tmp_path / "broken_games-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-games\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(
        "[selfplay.games]\nnoimport = broken_import\nbadkernel = broken_kernel\nnotagame = broken_make\n"
        "connect4 = broken_make\nfine = broken_fine\n"
    )
    (tmp_path / "broken_import.py").write_text("import a_module_that_is_not_there\n")
    (tmp_path / "broken_kernel.py").write_text(BROKEN_KERNEL)
    (tmp_path / "broken_make.py").write_text('"""Not a game."""\ndef make():\n    return None\n')
    (tmp_path / "broken_fine.py").write_text(
        '"""Tic-tac-toe again."""\nimport dataclasses\nfrom games import tictactoe\n'
        'def make():\n    return dataclasses.replace(tictactoe.make(), name="fine")\n'
    )
    return tmp_path


def test_broken_plugins_are_one_line_each_and_the_rest_still_works(broken):
    done = selfplay("games", path=broken)
    assert done.returncode == 0
    listed = [line.split(" ")[0] for line in done.stdout.splitlines() if line and not line.startswith(" ")]
    assert listed[:6] == ["tictactoe", "connect4", "othello", "gomoku", "arena", "fine"]
    problems = done.stderr.strip().splitlines()
    assert len(problems) == 4 and all("(broken-games 0.0.1)" in p and "Traceback" not in p for p in problems)
    expected = {
        "noimport": "cannot import broken_import: ModuleNotFoundError: No module named 'a_module_that_is_not_there'",
        "badkernel": "kernel outcome returns int64, not float64 as in outcome(int64[::1], int64[::1], int64) -> float64",
        "notagame": "make() returned NoneType, not a games.Game",
        "connect4": "the name is a built-in game's",
    }
    for name, message in expected.items():
        assert any(f"plugin game '{name}'" in p and message in p for p in problems), (name, problems)

    done = selfplay("train", "badkernel", "--print-config", path=broken)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "plugin game 'badkernel' (broken-games 0.0.1): kernel outcome returns int64" in done.stderr
    done = selfplay("play-text", "fine", "--opponent", "random", stdin="quit\n", path=broken)
    assert done.returncode == 0, done.stderr


def test_a_wrong_kernel_signature_is_named_by_the_game_interface():
    game = games.make("tictactoe")
    from numba import njit

    @njit
    def legal_mask(params, state):  # the mask argument is missing
        return 0

    import dataclasses

    with pytest.raises(games.GameError, match=r"kernel legal_mask does not compile as legal_mask\(int64\[::1\], "
                                              r"int64\[::1\], bool\[::1\]\) -> None: TypeError"):
        dataclasses.replace(game, legal_mask_fn=legal_mask).kernels
