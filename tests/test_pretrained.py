"""The brains shipped in the package: each loads, fits the size budget, says how to reproduce it
and what it measured (a match of each card replayed here, game for game), and plays well;
``selfplay play`` opens against them with no --agent; ``selfplay pretrained make`` writes a card
from real matches and never leaves half a brain; ``pretrained exploit`` puts a brain's
exploitability on its card; ``pretrained make-ladder`` ships a difficulty ladder with one card."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import games
from commands import run_here
from export.runtime import Brain
from selfplay.evaluation.agents import AgentError, load_agent
from selfplay.evaluation.matches import play_match
from selfplay.model.checkpoint import save_checkpoint
from selfplay.model.network import NetConfig, build_network
from selfplay.pretrained import BRAIN, CARD_FILE, HERE, LADDER, for_game, ladder_for_game, shipped
from selfplay.tools.pretrained_cmd import DEFAULT_SEED

MAX_BYTES = 2 * 2**20  # one brain (each level of a ladder too)
MAX_TOTAL_BYTES = 6 * 2**20  # every brain the package ships, together

#: What ships (the issue: Connect Four, the arena and 6x6 Othello), keyed by directory name.
EXPECTED = {
    "connect4": ("connect4", {"width": 7, "height": 6}),
    "arena": ("arena", dict(games.make("arena").options)),
    "othello6": ("othello", {"size": 6}),
}


def test_the_package_ships_a_brain_for_connect4_the_arena_and_6x6_othello():
    found = {p.name: (p.game, dict(p.options)) for p in shipped() if p.kind == BRAIN}
    assert found == EXPECTED


def test_the_shipped_brains_fit_the_size_budget_each_and_together():
    models = sorted(HERE.rglob("*.onnx"))
    assert len(models) >= len(EXPECTED)
    for model in models:
        assert model.stat().st_size < MAX_BYTES, model
    assert sum(m.stat().st_size for m in models) < MAX_TOTAL_BYTES


def _cheapest_row(matches: list[dict]) -> dict:
    """The card's match that replays fastest: a raw policy (0 visits) against a script or a
    baseline other than pure MCTS if there is one, else against the fewest rollouts; then the
    fewest games."""
    def cost(m: dict) -> tuple:
        rollouts = int(m["opponent"].split(":")[1]) if m["opponent"].startswith("mcts:") else 0
        return (m["visits"], rollouts, m["games"])

    return min(matches, key=cost)


#: The most search a replay in the default suite may cost: simulations per move times games.
#: The arena ladder's upper levels have no cheaper row (50-200 visits, 200 games of up to 60
#: turns: 20-90 s each, a third of the suite); they replay under ``-m slow``. Levels 1 and 2
#: (the raw policy, 10 visits) and every brain's raw row still replay in every run.
REPLAY_BUDGET = 2000


def _shipped_rows() -> list:
    """``(shipped directory, brain directory under it)`` of every brain and ladder level that has
    matches on its card; those whose cheapest row exceeds :data:`REPLAY_BUDGET` marked slow."""
    rows = []
    for found in shipped():
        if found.kind == BRAIN:
            rows.append((found.name, ".", found.card["strength"]["matches"]))
        else:
            rows += [(found.name, e["brain"], e["strength"]["matches"]) for e in found.card["levels"]
                     if e.get("strength", {}).get("matches")]
    return [pytest.param(name, level, marks=[pytest.mark.slow] if _cost(_cheapest_row(matches)) > REPLAY_BUDGET else [])
            for name, level, matches in rows]


def _cost(row: dict) -> int:
    return row["visits"] * row["games"]


@pytest.mark.parametrize("name, level", _shipped_rows())
def test_a_cards_cheapest_match_replays_exactly(name, level):
    """The card holds what its commands measured: the cheapest of its matches, played again here
    with the card's seed, openings and search, gives the same wins, draws and losses."""
    found = next(p for p in shipped() if p.name == name)
    card = found.card
    strength = card["strength"] if found.kind == BRAIN else next(e for e in card["levels"] if e["brain"] == level)["strength"]
    row = _cheapest_row(strength["matches"])
    seed = strength.get("seed", card.get("seed", DEFAULT_SEED))  # cards made before they recorded it: make's default
    game = games.make(found.game, **found.options)
    search = {k: v for k, v in card.get("search", {}).items() if k != "visits"}
    agent = load_agent(str(found.path / level), game, visits=row["visits"], search=search)
    result = play_match(game, agent, load_agent(row["opponent"], game), row["games"], seed=seed,
                        opening_moves=row["opening_moves"], stop_when_decided=False)
    assert (result.wins, result.draws, result.losses) == (row["wins"], row["draws"], row["losses"]), result.summary()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_shipped_brain_fits_the_budget_and_its_card_says_how_it_was_made_and_what_it_measured(name):
    brain = next(p for p in shipped() if p.name == name)
    model = brain.path / "brain.onnx"
    assert model.stat().st_size < MAX_BYTES
    card = brain.card
    assert card["bytes"] == model.stat().st_size
    assert card["reproduce"] and all(c.startswith("selfplay ") for c in card["reproduce"])
    assert card["training"]["minutes"] > 0 and card["training"]["machine"]
    matches = card["strength"]["matches"]
    assert {m["visits"] for m in matches} >= {0, 200}  # the raw policy, what an engine runs, and with search
    for m in matches:
        assert m["wins"] + m["draws"] + m["losses"] == m["games"] >= 100
        assert m["score"] == pytest.approx((m["wins"] + m["draws"] / 2) / m["games"])
        assert m["ci95"][0] <= m["score"] <= m["ci95"][1]
    game = games.make(brain.game, **brain.options)
    assert for_game(game) == brain
    assert Brain.load(brain.path).manifest.value["present"]  # it can search
    # `selfplay pretrained` shows the worst opponent's score (with search) on its line
    worst = min((m for m in matches if m["visits"]), key=lambda m: m["score"])
    assert f"worst {100 * worst['score']:.1f}% vs {worst['opponent']}" in brain.describe()
    exploitability = card.get("exploitability")
    if exploitability is not None:
        assert exploitability["command"].startswith(f"selfplay pretrained exploit {name} ")
        assert f"exploitability {100 * exploitability['search']['score']:.1f}%" in brain.describe()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_shipped_brains_raw_policy_beats_random(name):
    game_name, options = EXPECTED[name]
    game = games.make(game_name, **options)
    result = play_match(game, load_agent("pretrained", game, visits=0), load_agent("random", game), 20, seed=3,
                        stop_when_decided=False)
    # no loss; in the arena, random's scattered units sometimes run out the 60-turn clock (a draw:
    # the arena card's raw row against random is 134/66/0), elsewhere the brain wins nearly every game
    assert result.losses == 0 and result.score >= (0.75 if game_name == "arena" else 0.9), result.summary()


def test_the_shipped_connect4_brain_meets_its_card_against_the_solver():
    """The card's solver figures are the brain's: its raw policy and its search (with the card's
    settings, as every command loads it) on the shipped benchmark positions, recomputed here, err
    exactly as often as the card says, within issue 12's bar of 4% with search."""
    from selfplay.evaluation.strength import error_rates, load_positions

    game = games.make("connect4")
    brain = for_game(game)
    recorded = brain.card["strength"]["solver"]
    agent = load_agent("pretrained", game, visits=brain.card["search"]["visits"])
    report = error_rates(game, agent.evaluator, load_positions(game, 50, 0), visits=agent.visits, config=agent.config)
    assert report["raw"]["all"]["errors"] == recorded["raw"]["all"]["errors"]
    assert report["search"]["all"]["errors"] == recorded["search"]["all"]["errors"]
    assert recorded["search"]["all"]["rate"] <= 0.04


def test_pretrained_names_only_a_brain_that_plays_the_game_and_its_options():
    with pytest.raises(AgentError, match="no pretrained brain ships for othello\\(size=8\\)"):
        load_agent("pretrained", games.make("othello"))
    with pytest.raises(AgentError, match="no pretrained brain ships for tictactoe"):
        load_agent("pretrained", games.make("tictactoe"))


def test_play_with_no_agent_opens_against_the_shipped_brain(capsys):
    from selfplay.tools.play import PlayError, load_opponent

    game, agent = load_opponent(None, "connect4", None, None)
    assert agent.name == "connect4@200" and game.name == "connect4"
    game, agent = load_opponent(None, "othello", None, None)  # the brain's board, said in one line
    assert dict(game.options) == {"size": 6} and "-o size=6" in capsys.readouterr().out
    game, agent = load_opponent(None, "tictactoe", None, None)  # no brain: greedy, and it says so
    assert agent.name == "greedy" and "playing greedy" in capsys.readouterr().out
    with pytest.raises(PlayError, match="name the game"):
        load_opponent(None, None, None, None)
    with pytest.raises(AgentError, match="no pretrained brain ships for othello"):
        load_opponent("pretrained", "othello", ["size=8"], None)


def test_selfplay_play_with_no_agent_opens_a_window_against_the_shipped_brain(tmp_path, capsys):
    """What ``make play`` runs when there is no training run: the brain moves first (--second)."""
    from selfplay.tools.cli import main as cli_main

    shot = tmp_path / "shot.png"
    assert cli_main(["play", "connect4", "--second", "--screenshot", str(shot), "--after-moves", "1"]) == 0
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------ making one


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    game = games.make("tictactoe")
    torch.manual_seed(0)
    model = build_network(NetConfig(kind="mlp", layers=1, hidden=16), game.obs_shape, game.num_actions).eval()
    root = tmp_path_factory.mktemp("tiny")
    save_checkpoint(root / "run", 3, model, game=game)
    return root / "run"


def _selfplay(*argv: str, process: bool = False) -> subprocess.CompletedProcess:
    """``selfplay ARGV``: its exit code and what it printed. In this process unless ``process``
    (tests/commands.py says why): only test_make_writes_a_brain_and_a_card_of_measured_matches and
    the OMP tests start the command's own."""
    if process:
        return subprocess.run([sys.executable, "-m", "selfplay", *argv], capture_output=True, text=True, timeout=300)
    return run_here(list(argv))


def _make(root, run, *extra, process: bool = False):
    return _selfplay("pretrained", "make", "ttt", str(run), "--root", str(root), "--reproduce", "selfplay train tictactoe --minutes 1",
                     "--opponents", "random", "--games", "4", "--raw-games", "2", "--visits", "4", *extra, process=process)


def test_make_writes_a_brain_and_a_card_of_measured_matches(tmp_path, tiny_run):
    done = _make(tmp_path, tiny_run, process=True)  # the command as a user starts it
    assert done.returncode == 0, done.stderr
    card = json.loads((tmp_path / "ttt" / CARD_FILE).read_text())
    assert card["reproduce"] == ["selfplay train tictactoe --minutes 1"]
    assert [(m["opponent"], m["visits"], m["games"]) for m in card["strength"]["matches"]] == [("random", 4, 4), ("random", 0, 2)]
    assert card["bytes"] == (tmp_path / "ttt" / "brain.onnx").stat().st_size
    assert [p.name for p in shipped(tmp_path)] == ["ttt"]
    assert for_game(games.make("tictactoe"), tmp_path).path == tmp_path / "ttt"
    assert not (tmp_path / ".building").exists()
    listing = _selfplay("pretrained", "--root", str(tmp_path))
    assert listing.stdout.startswith("ttt ") and "at 4 visits" in listing.stdout


def test_a_brain_plays_with_the_search_its_card_was_measured_with(tmp_path, tiny_run):
    from selfplay.tools.play import load_difficulty

    done = _make(tmp_path, tiny_run, "--search", "root_policy=gumbel", "--search", "c_init=0.8")
    assert done.returncode == 0, done.stderr
    brain = tmp_path / "ttt"
    assert json.loads((brain / CARD_FILE).read_text())["search"] == {"root_policy": "gumbel", "c_init": 0.8, "visits": 4}
    game = games.make("tictactoe")
    for path in (brain, brain / "brain.onnx"):
        config = load_agent(str(path), game, visits=4).config
        assert (config.root_policy, config.c_init, config.num_simulations) == ("gumbel", 0.8, 4)
    assert load_agent(str(brain), game, visits=4, search={}).config.root_policy == "puct"  # asked for
    _, difficulty = load_difficulty(str(brain), None, None, visits=4)  # selfplay play --agent DIR
    levels = [difficulty.make(i) for i in range(len(difficulty.labels))]  # every visit count, the raw policy too
    assert len(levels) > 1 and {(a.config.root_policy, a.config.c_init) for a in levels} == {("gumbel", 0.8)}
    (brain / CARD_FILE).unlink()  # an exported brain with no card searches with the default
    assert load_agent(str(brain), game, visits=4).config.root_policy == "puct"
    bad = _make(tmp_path, tiny_run, "--search", "dirichlet_alpha=1")
    assert bad.returncode != 0 and "--search 'dirichlet_alpha=1': expected KEY=VALUE" in bad.stderr


def test_a_failed_make_leaves_the_old_brain_in_place(tmp_path, tiny_run):
    assert _make(tmp_path, tiny_run).returncode == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "ttt").iterdir()}
    failed = _make(tmp_path, tiny_run, "--opponents", "nosuchagent")
    assert failed.returncode != 0 and "unknown agent 'nosuchagent'" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in (tmp_path / "ttt").iterdir()} == before


def test_the_package_data_lists_the_brains():
    """A wheel carries what pyproject's package data names: every shipped file must match it."""
    import tomllib

    patterns = tomllib.loads((HERE.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for brain in shipped():
        for file in (f for f in brain.path.rglob("*") if f.is_file() and "__pycache__" not in f.parts):
            relative = file.relative_to(HERE)
            assert any(relative.match(p) and len(relative.parts) == len(Path(p).parts) for p in patterns["selfplay.pretrained"]), relative
    assert np.all([p.path.parent == HERE for p in shipped()])
    # a ladder's levels, one folder deeper, are named too
    for ladder_file in ("arena_ladder/card.json", "arena_ladder/ladder.json", "arena_ladder/level_1/brain.onnx",
                        "arena_ladder/level_1/brain.json"):
        assert any(Path(ladder_file).match(p) and len(Path(p).parts) == len(Path(ladder_file).parts)
                   for p in patterns["selfplay.pretrained"]), ladder_file


# ------------------------------------------------------------------------------ exploitability

#: A tic-tac-toe exploiter that trains one generation of a few tiny games.
TINY_EXPLOITER = ("--generations 1 --preset tiny --actors 0 --selfplay.games-per-actor 16 "
                  "--selfplay.positions-per-generation 60 --search.num-simulations 4 --search.gumbel-considered 4 "
                  "--learner.batch-size 16 --learner.min-positions 10 --learner.threads 1 --run.progress false --games 4")


def test_make_measures_the_exploitability_and_exploit_adds_it_to_a_card(tmp_path, tiny_run):
    from selfplay.tools.cli import parse_only

    done = _make(tmp_path, tiny_run, "--exploit-minutes", "0", "--exploit-seed", "3",
                 "--exploit-args", f"{TINY_EXPLOITER} --run-dir {tmp_path / 'exploiter'}")
    assert done.returncode == 0, done.stderr[-3000:]
    card = json.loads((tmp_path / "ttt" / CARD_FILE).read_text())
    found = card["exploitability"]
    report = json.loads((tmp_path / "exploiter" / "exploit.json").read_text())  # what run_exploiter measured
    assert (found["generations"], found["seed"], found["games"], found["visits"]) == (1, 3, 4, 4)  # the card's visits
    for part, measured in (("search", report), ("raw", report["raw"])):
        assert [found[part][k] for k in ("wins", "draws", "losses", "score")] == [measured[k] for k in ("wins", "draws", "losses", "score")]
        assert found[part]["wins"] + found[part]["draws"] + found[part]["losses"] == 4
        assert found[part]["ci95"][0] <= found[part]["score"] <= found[part]["ci95"][1]
    # the command on the card measures it again: it parses, and names the budget and the seed
    argv = shlex.split(found["command"])[1:]
    command = parse_only(argv)
    assert (command.action, command.name, getattr(command, "run.seed"), getattr(command, "run.generations")) == ("exploit", "ttt", 3, 1)
    assert card["strength"]["seed"] == DEFAULT_SEED and card["search"]["visits"] == 4
    listing = _selfplay("pretrained", "--root", str(tmp_path))
    assert f"exploitability {100 * found['search']['score']:.1f}% ({found['search']['wins']}/" in listing.stdout
    assert "worst " in listing.stdout and "a 1-generation exploiter at 4 visits" in listing.stdout

    # exploit again on the existing card, another seed: only its exploitability changes
    before = {k: v for k, v in card.items() if k != "exploitability"}
    again = _selfplay("pretrained", "exploit", "ttt", "--root", str(tmp_path), "--seed", "4", "--run-dir",
                      str(tmp_path / "again"), *shlex.split(TINY_EXPLOITER))
    assert again.returncode == 0, again.stderr[-3000:]
    card = json.loads((tmp_path / "ttt" / CARD_FILE).read_text())
    assert {k: v for k, v in card.items() if k != "exploitability"} == before
    assert card["exploitability"]["seed"] == 4 and json.loads((tmp_path / "again" / "exploit.json").read_text())["score"] == card["exploitability"]["search"]["score"]


def _cli(capsys, *argv: str) -> tuple[int, str]:
    """``selfplay ARGV`` in this process: its exit code and what it wrote to stderr."""
    from selfplay.tools.cli import main as cli_main

    code = cli_main(list(argv))
    return code, capsys.readouterr().err


def test_exploit_needs_a_budget_and_a_shipped_brain_in_one_line(tmp_path, tiny_run, capsys):
    assert _make(tmp_path, tiny_run).returncode == 0
    assert _cli(capsys, "pretrained", "exploit", "ttt", "--root", str(tmp_path)) == (
        2, "selfplay: error: give the exploiter a fixed budget: --minutes M (or --generations N)\n")
    code, err = _cli(capsys, "pretrained", "exploit", "chess", "--root", str(tmp_path), "--minutes", "1")
    assert code == 2 and "no shipped brain 'chess'" in err and "brains: ttt" in err
    code, err = _cli(capsys, "pretrained", "make", "ttt", str(tiny_run), "--root", str(tmp_path), "--reproduce", "x",
                     "--exploit-minutes", "1", "--exploit-args=--no-such-flag")
    assert code == 2 and err.strip() == "selfplay: error: --exploit-args: unrecognized arguments: --no-such-flag"
    assert not (tmp_path / ".building").exists()


@pytest.mark.parametrize("argv, passive", [(["pretrained", "exploit", "ttt", "--minutes", "1"], True),
                                           (["pretrained", "make", "ttt", "run", "--reproduce", "x", "--exploit-minutes", "1"], True),
                                           (["pretrained"], False)], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_an_exploiting_command_sets_a_passive_omp_wait_policy_first(argv, passive, tmp_path):
    """An exploiter trains (docs/training.md, "CPU threads"): the program sets OMP_WAIT_POLICY
    before its parser loads torch, as for selfplay train; listing the brains leaves it alone."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    script = ("import os, sys\nfrom selfplay.tools.cli import main\nmain(sys.argv[1:])\n"
              "print(os.environ.get('OMP_WAIT_POLICY'))")
    proc = subprocess.run([sys.executable, "-c", script, *argv, "--root", str(tmp_path)], env=env, cwd=Path(__file__).parents[1],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == ("PASSIVE" if passive else "None"), proc.stderr


# ------------------------------------------------------------------------------ a shipped ladder


@pytest.fixture(scope="module")
def ttt_ladder(tmp_path_factory):
    """A ladder directory as ``selfplay league ladder`` writes it: three tic-tac-toe levels."""
    game = games.make("tictactoe")
    ladder = tmp_path_factory.mktemp("league") / "ladder"
    entries = []
    for level in (1, 2, 3):
        torch.manual_seed(level)
        model = build_network(NetConfig(kind="mlp", layers=1, hidden=16), game.obs_shape, game.num_actions).eval()
        sidecar = save_checkpoint(ladder / f"level-{level}", level, model, game=game)
        entries.append({"level": level, "player": f"main0/g{level}", "elo": 50.0 * level, "elo_interval": [0, 100 * level],
                        "checkpoint": f"level-{level}/{sidecar.name}"})
    (ladder / "ladder.json").write_text(json.dumps({"game": "tictactoe", "game_options": {}, "games_per_pair": 40,
                                                    "visits": 0, "levels": entries}))
    return ladder


def _make_ladder(root, ladder, *extra):
    return _selfplay("pretrained", "make-ladder", "ttt_ladder", str(ladder), "--root", str(root), "--reproduce",
                     "selfplay league tictactoe --minutes 1", "--visits", "0,4,16", "--games", "6", "--opponents",
                     "random", "--start-level", "2", *extra)


def test_make_ladder_ships_every_level_with_one_card_that_replays(tmp_path, ttt_ladder):
    from selfplay.tools.play import load_difficulty

    done = _make_ladder(tmp_path, ttt_ladder, "--plot", str(tmp_path / "plot" / "ladder.png"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "plot" / "ladder.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    home = tmp_path / "ttt_ladder"
    assert sorted(p.name for p in home.iterdir()) == ["card.json", "ladder.json", "level_1", "level_2", "level_3"]
    assert not (tmp_path / ".building").exists()
    [found] = shipped(tmp_path)
    assert found.kind == LADDER and found.game == "tictactoe"
    game = games.make("tictactoe")
    assert ladder_for_game(game, tmp_path) == found and for_game(game, tmp_path) is None  # not a `pretrained` brain
    card = found.card
    levels = card["levels"]
    assert [(e["level"], e["brain"], e["visits"], e["league_elo"]) for e in levels] == [
        (1, "level_1", 0, 50.0), (2, "level_2", 4, 100.0), (3, "level_3", 16, 150.0)]
    assert (card["start_level"], card["min_step_score"], card["seed"]) == (2, 0.6, 0)
    # Elo: level 1 at 0, each level the one below plus its measured step
    assert levels[0]["elo"] == 0.0 and "vs_below" not in levels[0]
    for below, entry in zip(levels, levels[1:]):
        step = entry["vs_below"]
        assert step["wins"] + step["draws"] + step["losses"] == step["games"] == 6
        assert step["meets"] == (step["score"] >= 0.6)
        assert entry["elo"] == pytest.approx(below["elo"] + step["elo_diff"], abs=0.06)
        assert step["elo_ci95"][0] <= step["elo_diff"] <= step["elo_ci95"][1]
    assert card["ordered"] == all(e["vs_below"]["meets"] for e in levels[1:])
    assert card["bytes"] == sum((home / e["brain"] / "brain.onnx").stat().st_size for e in levels)
    # every level against the opponents, at its own visits (the raw policy once)
    assert [[(m["opponent"], m["visits"], m["games"]) for m in e["strength"]["matches"]] for e in levels] == [
        [("random", 0, 6)], [("random", 4, 6)], [("random", 16, 6)]]
    # the card's step of level 3 over level 2, played again: the same games
    upper, lower = (load_agent(str(home / f"level_{k}"), game, visits=v) for k, v in ((3, 16), (2, 4)))
    result = play_match(game, upper, lower, 6, seed=card["seed"] + 3, opening_moves=card["opening_moves"], stop_when_decided=False)
    step = levels[2]["vs_below"]
    assert (result.wins, result.draws, result.losses) == (step["wins"], step["draws"], step["losses"])
    # selfplay play --agent DIR opens at the start level, each level at its own visits
    _, difficulty = load_difficulty(str(home), None, None, visits=None)
    assert difficulty.index == 1 and difficulty.agent.visits == 4
    assert difficulty.labels == tuple(f"level {e['level']} (Elo {e['elo']}, {e['visits']} visits)" for e in levels)
    assert difficulty.step(1) and difficulty.agent.visits == 16 and not difficulty.step(1)
    assert difficulty.step(-2) and difficulty.agent.visits == 0
    listing = _selfplay("pretrained", "--root", str(tmp_path))
    assert listing.stdout.startswith("ttt_ladder ") and "a ladder of 3 levels" in listing.stdout and "opens at level 2" in listing.stdout


def test_make_ladder_picks_the_levels_of_a_league_in_one_command(tmp_path):
    """From a league directory: the levels are picked as `selfplay league ladder` picks them
    (its ladder/ is written in the league), then shipped with the league's ratings beside the
    measured steps, and its minutes on the card."""
    league = tmp_path / "league"
    fast = ["--preset", "tiny", "--selfplay.num-actors", "0", "--selfplay.games-per-actor", "16",
            "--selfplay.positions-per-generation", "100", "--search.num-simulations", "4", "--search.gumbel-considered", "4",
            "--learner.batch-size", "32", "--learner.min-positions", "50", "--learner.threads", "1",
            "--league.min-generations", "2", "--league.max-generations", "3", "--run.progress", "false"]
    trained = _selfplay("league", "tictactoe", "--minutes", "0", "--generations", "4", "--run-dir", str(league), "--no-final", *fast)
    assert trained.returncode == 0, trained.stderr[-3000:]
    done = _selfplay("pretrained", "make-ladder", "ttt_ladder", str(league), "--root", str(tmp_path / "brains"),
                     "--reproduce", "selfplay league tictactoe --minutes 1", "--levels", "3", "--pick-games", "4",
                     "--min-games", "1", "--games", "4", "--opponents", "none", "--visits", "0", "--start-level", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    picked = json.loads((league / "ladder" / "ladder.json").read_text())["levels"]
    card = json.loads((tmp_path / "brains" / "ttt_ladder" / CARD_FILE).read_text())
    assert len(card["levels"]) == len(picked) == 3
    assert [(e["player"], e["league_elo"]) for e in card["levels"]] == [(e["player"], e["elo"]) for e in picked]
    state = json.loads((league / "league.json").read_text())
    assert card["training"]["league"] == "league" and card["training"]["minutes"] == round(state["elapsed"] / 60, 1)
    assert all(e["vs_below"]["games"] == 4 for e in card["levels"][1:])

    # --players: the levels named, in order, one network twice at two visit counts; measured, not mended
    weakest, strongest = picked[0]["player"], picked[-1]["player"]
    named = _selfplay("pretrained", "make-ladder", "ttt_named", str(league), "--root", str(tmp_path / "brains"),
                      "--reproduce", "selfplay league tictactoe --minutes 1", "--players", f"{weakest},{strongest},{strongest}",
                      "--pick-games", "4", "--games", "4", "--opponents", "none", "--visits", "0,0,8", "--start-level", "1")
    assert named.returncode == 0, named.stderr[-3000:]
    index = json.loads((league / "ladder" / "ladder.json").read_text())
    assert [(e["player"], e["visits"]) for e in index["levels"]] == [(weakest, 0), (strongest, 0), (strongest, 8)]
    assert all(e["vs_above"]["wins"] + e["vs_above"]["draws"] + e["vs_above"]["losses"] == 4 for e in index["levels"][:-1])
    card = json.loads((tmp_path / "brains" / "ttt_named" / CARD_FILE).read_text())
    assert [(e["player"], e["visits"]) for e in card["levels"]] == [(weakest, 0), (strongest, 0), (strongest, 8)]
    unknown = _selfplay("pretrained", "make-ladder", "ttt_bad", str(league), "--root", str(tmp_path / "brains"),
                        "--reproduce", "x", "--players", f"{weakest},main0/g999", "--visits", "0", "--start-level", "1")
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr
    assert "no network main0/g999 on disk" in unknown.stderr and not (tmp_path / "brains" / "ttt_bad").exists()


def test_play_with_no_agent_opens_the_shipped_ladder_at_its_start_level(tmp_path, ttt_ladder, monkeypatch):
    import selfplay.pretrained
    from selfplay.tools.play import PlayError, load_difficulty

    assert _make_ladder(tmp_path, ttt_ladder, "--opponents", "none").returncode == 0
    monkeypatch.setattr(selfplay.pretrained, "HERE", tmp_path)  # as if the package shipped it
    game, difficulty = load_difficulty(None, "tictactoe", None, None)
    assert game.name == "tictactoe" and len(difficulty.labels) == 3 and difficulty.index == 1
    assert difficulty.label == "level 2 (Elo {}, 4 visits)".format(shipped()[0].card["levels"][1]["elo"])
    _, difficulty = load_difficulty(None, "tictactoe", None, None, level=3)
    assert difficulty.index == 2 and difficulty.agent.visits == 16
    _, searching = load_difficulty(None, "tictactoe", None, 8)  # --visits: every level at 8
    assert searching.agent.visits == 8
    with pytest.raises(PlayError, match="levels 1..3, not 4"):
        load_difficulty(None, "tictactoe", None, None, level=4)
    with pytest.raises(AgentError, match="no pretrained brain ships for tictactoe"):
        load_agent("pretrained", game)  # `pretrained` is a single brain, never a ladder
    assert all("strength" not in e for e in shipped()[0].card["levels"])  # --opponents none: no matches


def test_make_ladder_refuses_bad_settings_before_exporting(tmp_path, ttt_ladder, capsys):
    for extra, message in ((["--visits", "0,4"], "--visits '0,4': give one count >= 0, or one per level (3 levels)"),
                           (["--start-level", "4"], "--start-level 4: the ladder has levels 1..3"),
                           (["--opponents", "nosuchagent"], "unknown agent 'nosuchagent'")):
        code, err = _cli(capsys, "pretrained", "make-ladder", "ttt_ladder", str(ttt_ladder), "--root", str(tmp_path),
                         "--reproduce", "x", *extra)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "ttt_ladder").exists() and not (tmp_path / ".building" / "ttt_ladder").exists()


@pytest.mark.parametrize("name", [p.name for p in shipped() if p.kind == LADDER])
def test_a_shipped_ladder_is_ordered_by_its_measured_steps(name):
    """What issue 31 asks of a shipped ladder: five levels, each beating the one below in at
    least 60% of 200 games at the levels' visits, opening at level 3, every level's Elo and
    visits on its one card, and ``selfplay play`` offering them."""
    from selfplay.tools.play import load_difficulty

    found = next(p for p in shipped() if p.name == name)
    card = found.card
    assert len(card["levels"]) == 5 and card["start_level"] == 3 and card["ordered"]
    for entry in card["levels"][1:]:
        step = entry["vs_below"]
        assert step["games"] >= 200 and step["score"] >= 0.6 and isinstance(entry["elo"], float) and entry["visits"] >= 0
    _, difficulty = load_difficulty(None, found.game, [f"{k}={v}" for k, v in found.options.items()], None)
    assert difficulty.index == 2 and len(difficulty.labels) == 5


def test_search_settings_read_booleans_as_flags_do():
    """`--search gumbel_rescale=false` turns the rescaling off (Python's bool("false") is True)."""
    from selfplay.pretrained import PretrainedError
    from selfplay.tools.brain_card import parse_search

    assert parse_search(["root_policy=gumbel", "gumbel_rescale=false"]) == {"root_policy": "gumbel", "gumbel_rescale": False}
    assert parse_search(["gumbel_rescale=True", "c_init=0.8"]) == {"gumbel_rescale": True, "c_init": 0.8}
    with pytest.raises(PretrainedError, match="gumbel_rescale must be a bool"):
        parse_search(["gumbel_rescale=maybe"])


def test_a_finished_brain_leaves_another_brain_building_beside_it_alone(tmp_path):
    """Two `pretrained make` runs at once (a brain and a ladder) share `.building/`: the first to
    finish swaps in its own directory and must not delete the other's half-built one."""
    from selfplay.tools.brain_card import building_dir, swap_in

    brain, brain_final = building_dir(tmp_path, "arena")
    ladder, _ = building_dir(tmp_path, "arena_ladder")
    for folder in (brain, ladder):
        folder.mkdir(parents=True)
        (folder / "brain.onnx").write_bytes(b"onnx")
    (brain_final).mkdir()
    (brain_final / "old.txt").write_text("the brain before")
    swap_in(brain, brain_final)
    assert (brain_final / "brain.onnx").is_file() and not (brain_final / "old.txt").exists()
    assert (ladder / "brain.onnx").is_file()  # still building
    swap_in(ladder, tmp_path / "arena_ladder")
    assert not (tmp_path / ".building").exists()  # the last one out removes it


def test_a_card_reads_how_long_a_league_snapshot_trained():
    """A brain made from a league snapshot (snapshots/ckpt-*.json) has no run record: its card
    takes the league's time at the freeze and the generation in the snapshot's name."""
    from types import SimpleNamespace

    from selfplay.model.network import NetConfig
    from selfplay.tools.pretrained_cmd import training_record

    net = NetConfig(channels=32, blocks=3)
    snapshot = SimpleNamespace(meta={"snapshot": "main0/g84", "member": "main0", "elapsed": 2455.9}, net=net,
                               path=Path("runs/league/snapshots/ckpt-000013.json"))
    record = training_record(snapshot, "2 cores")
    assert (record["minutes"], record["generations"], record["snapshot"]) == (40.9, 84, "main0/g84")
    assert record["network"] == net.to_dict() and record["checkpoint"] == "snapshots/ckpt-000013.json"
    trained = SimpleNamespace(meta={"run": {"generation": 130, "elapsed": 1200.0, "games": 900, "positions": 5000}},
                              net=net, path=Path("runs/c4/ckpt-000130.json"))
    record = training_record(trained, "2 cores")
    assert (record["minutes"], record["generations"], record["games"]) == (20.0, 130, 900) and "snapshot" not in record
