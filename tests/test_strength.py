"""The solver-judged strength benchmark: a perfect evaluator makes no errors, its opposite
errs everywhere, and the report and the cache hold what they should."""

import numpy as np
import pytest

import games
from games.connect4_solver import ILLEGAL, outcomes_from_state
from selfplay.evaluation.strength import error_rates, format_report, load_positions


@pytest.fixture(scope="module")
def small():
    return games.make("connect4", width=5, height=4)  # the solver answers 5x4 at once


def _state_from_obs(game, planes):
    """Rebuild a connect4 state (int64[3]: player_0 stones, all stones, ply) from the mover's planes."""
    width, height = game.options["width"], game.options["height"]
    mine, theirs = planes[0] > 0.5, planes[1] > 0.5
    ply = int(mine.sum() + theirs.sum())
    p0 = mine if ply % 2 == 0 else theirs
    bits = lambda board: sum(1 << (c * (height + 1) + (height - 1 - r)) for r, c in zip(*np.nonzero(board)))
    return np.array([bits(p0), bits(mine | theirs), ply], np.int64)


def _oracle(game, sign, value_sign=0):
    """An evaluator whose policy prefers the solver's best moves (sign=+1) or worst (sign=-1),
    and whose value is ``value_sign`` times the solved result for the side to move."""

    def evaluate(obs, mask):
        logits = np.zeros(mask.shape, np.float32)
        values = np.zeros(len(obs), np.float32)
        for i, planes in enumerate(obs):
            outcomes = outcomes_from_state(game, _state_from_obs(game, planes)).astype(np.float32)
            logits[i] = np.where(outcomes == ILLEGAL, -9.0, sign * outcomes)
            values[i] = value_sign * outcomes[outcomes != ILLEGAL].max()
        return logits, values

    return evaluate


def test_positions_are_cached_and_reproducible(small, tmp_path):
    first = load_positions(small, 5, seed=1, cache=tmp_path)
    assert (tmp_path / "connect4-5x4-n5-seed1.json").exists()
    again = load_positions(small, 5, seed=1, cache=tmp_path)
    assert set(first) == set(again) == {"beginning", "middle"}  # 20 cells: no end stage
    for stage in first:
        assert [p.moves for p in first[stage]] == [p.moves for p in again[stage]]
        for p in first[stage]:
            legal = p.outcomes[p.outcomes != ILLEGAL]
            assert legal.min() < legal.max()  # every position admits an error


def test_a_perfect_player_makes_no_errors_and_its_opposite_only_errors(small, tmp_path):
    positions = load_positions(small, 6, seed=0, cache=tmp_path)
    perfect = error_rates(small, _oracle(small, +1), positions, visits=0)
    assert perfect["raw"]["all"]["errors"] == 0 and perfect["raw"]["all"]["positions"] == 12
    worst = error_rates(small, _oracle(small, -1), positions, visits=0)
    assert worst["raw"]["all"]["rate"] == 1.0
    lo, hi = worst["raw"]["all"]["ci95"]
    assert lo < 1.0 <= hi


def test_search_repairs_a_bad_prior(small, tmp_path):
    """Search with value backups finds better moves than the worst possible prior points at."""
    positions = load_positions(small, 6, seed=0, cache=tmp_path)
    report = error_rates(small, _oracle(small, -1), positions, visits=400)
    assert report["search"]["all"]["rate"] < report["raw"]["all"]["rate"]
    text = format_report(report)
    assert "raw network" in text and "400 visits" in text and "beginning" in text


def test_the_value_one_ply_deeper_is_judged_apart_from_the_policy(small, tmp_path):
    """A solved value behind the worst policy: the value player makes no errors where the raw
    policy errs everywhere; the value turned upside down errs (only won-at-once moves save it)."""
    positions = load_positions(small, 6, seed=0, cache=tmp_path)
    solved = error_rates(small, _oracle(small, -1, value_sign=+1), positions, visits=0, value=True)
    assert solved["value"]["all"]["errors"] == 0 and solved["value"]["all"]["positions"] == 12
    assert solved["raw"]["all"]["rate"] == 1.0
    upside_down = error_rates(small, _oracle(small, +1, value_sign=-1), positions, visits=0, value=True)
    assert upside_down["value"]["all"]["errors"] > 0 and upside_down["raw"]["all"]["errors"] == 0
    assert "value, 1 ply" in format_report(solved)
    assert "value" not in error_rates(small, _oracle(small, +1), positions, visits=0)  # opt-in


def test_only_connect4_has_a_solver(tmp_path):
    with pytest.raises(games.GameError, match="needs the connect4 solver"):
        load_positions(games.make("tictactoe"), 3, cache=tmp_path)


def test_the_default_positions_ship_with_selfplay_and_agree_with_the_solver(tmp_path):
    """The standard board's set (50 per stage, seed 0) loads without solving (the cache is empty),
    and its answers are the solver's: checked on the end-stage positions, which solve fast."""
    game = games.make("connect4")
    positions = load_positions(game, 50, seed=0, cache=tmp_path)
    assert {stage: len(rows) for stage, rows in positions.items()} == {"beginning": 50, "middle": 50, "end": 50}
    assert not list(tmp_path.iterdir())  # nothing was solved or written
    for stage, (low, high) in {"beginning": (8, 14), "middle": (15, 28), "end": (29, 41)}.items():
        assert all(low <= len(p.moves) <= high for p in positions[stage])
    for p in positions["end"][:10]:
        np.testing.assert_array_equal(p.outcomes, outcomes_from_state(game, game.play(list(p.moves))))
