"""Matches (colours, openings, seeds, batching, early stops, turn orders that do not alternate),
the Elo statistics of one match, Bradley-Terry ratings over many, the rating table, and the
``selfplay arena`` command."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

import games
from selfplay.evaluation.agents import GreedyAgent, MCTSAgent, RandomAgent
from selfplay.evaluation.matches import ArenaError, play_match
from selfplay.tools.arena_cmd import add_arguments, main
from selfplay.evaluation.elo import SPRT, elo_from_score, elo_interval, score_from_elo, score_interval, sprt_llr
from selfplay.evaluation.ratings import RatingTable, fit_bradley_terry, rating_intervals


@pytest.fixture(scope="module")
def c4():
    return games.make("connect4")


class Spy:
    """Wraps an agent; records (move number, state, seat to move) of every position it is asked."""

    def __init__(self, game, agent):
        self.game, self.agent, self.name, self.seen, self.calls = game, agent, agent.name, [], 0

    def act(self, states, move_numbers, rng_seed):
        self.calls += 1
        for s, m in zip(states, move_numbers):
            self.seen.append((int(m), s.tobytes(), self.game.to_play(s)))
        return self.agent.act(states, move_numbers, rng_seed)


# ------------------------------------------------------------------------------ matches


@pytest.mark.parametrize("name", ["tictactoe", "connect4"])
def test_greedy_beats_random(name):
    game = games.make(name)
    result = play_match(game, GreedyAgent(game), RandomAgent(game), 60, seed=1, stop_when_decided=False)
    assert result.games == 60 == result.wins + result.draws + result.losses == len(result.records)
    assert result.score > 0.6 and result.elo_ci95[0] > 0
    assert result.score == pytest.approx((result.wins + result.draws / 2) / 60)


def test_more_rollouts_beat_fewer_on_connect4(c4):
    result = play_match(c4, MCTSAgent(c4, 200), MCTSAgent(c4, 10), 12, seed=0, opening_moves=2, stop_when_decided=False)
    assert result.wins >= 10, result.summary()


def test_colours_alternate_and_agents_move_only_for_their_seat(c4):
    a, b = Spy(c4, RandomAgent(c4)), Spy(c4, RandomAgent(c4))
    result = play_match(c4, a, b, 10, seed=3, stop_when_decided=False)
    assert sorted(r.index for r in result.records) == list(range(10))
    for r in result.records:
        assert r.a_player == r.index % 2 and r.a_first == (r.a_player == 0)  # player 0 moves first
    # each agent saw both seats, and Connect Four alternates: ply parity is the seat to move
    for spy in (a, b):
        assert {seat for _, _, seat in spy.seen} == {0, 1}
        assert all(move % 2 == seat for move, _, seat in spy.seen)
    # one act() per ply at most for each agent, over all games where it is to move
    longest = max(r.plies for r in result.records)
    assert a.calls <= longest and b.calls <= longest


def test_openings_are_random_shared_by_each_pair_and_counted_in_plies(c4):
    a, b = Spy(c4, GreedyAgent(c4)), Spy(c4, GreedyAgent(c4))
    result = play_match(c4, a, b, 16, seed=5, opening_moves=3, stop_when_decided=False)
    # after 3 plies player 1 moves: in even games that is B, in odd games A, from the same openings
    firsts_a = sorted(s for m, s, _ in a.seen if m == 3)
    firsts_b = sorted(s for m, s, _ in b.seen if m == 3)
    assert len(firsts_a) == len(firsts_b) == 8 and firsts_a == firsts_b
    assert len(set(firsts_a)) > 4  # openings differ between pairs
    assert all(r.plies >= 4 for r in result.records)
    assert all(not r.a_first for r in result.records if r.a_player == 0)  # A (seat 0) moved after the opening


def test_a_match_is_reproducible_and_independent_of_batching(c4):
    def run(seed, batch):
        result = play_match(
            c4, MCTSAgent(c4, 24), GreedyAgent(c4), 12, seed=seed, opening_moves=1, batch_size=batch,
            stop_when_decided=False,
        )
        return sorted((r.index, r.result, r.plies) for r in result.records)

    reference = run(7, 12)
    assert run(7, 12) == reference
    assert run(7, 5) == reference and run(7, 1) == reference
    assert run(8, 12) != reference


def test_a_match_of_the_arena_game_with_turns_that_do_not_alternate():
    game = games.make("arena", turn_limit=24)
    a, b = Spy(game, GreedyAgent(game)), Spy(game, MCTSAgent(game, 16))
    result = play_match(game, a, b, 6, seed=2, stop_when_decided=False)
    assert result.games == 6 and all(r.plies <= 24 for r in result.records)
    # the seat to move decides who acts; with three units a side, a side moves twice running
    # after a death, so move numbers need not match seats
    assert {seat for _, _, seat in a.seen} == {0, 1} == {seat for _, _, seat in b.seen}
    assert len(a.seen) + len(b.seen) == sum(r.plies for r in result.records)


def test_sprt_stops_a_lopsided_match_early_and_accepts_the_right_hypothesis(c4):
    options = dict(seed=1, batch_size=8, stop_when_decided=False)
    strong = play_match(c4, GreedyAgent(c4), RandomAgent(c4), 400, sprt=(0, 100), **options)
    assert strong.sprt == "H1" and strong.stopped == "sprt" and strong.games < 100
    assert strong.llr >= SPRT(0, 100).bounds[1] - 1.0  # in-flight games may move it a little
    weak = play_match(c4, RandomAgent(c4), GreedyAgent(c4), 400, sprt=SPRT(0, 100), **options)
    assert weak.sprt == "H0" and weak.games < 100


def test_a_match_stops_when_the_games_left_cannot_change_the_winner(c4):
    result = play_match(c4, GreedyAgent(c4), RandomAgent(c4), 100, seed=1, batch_size=4)
    assert result.stopped == "decided" and result.games < 100
    assert (result.wins - result.losses) > 100 - result.games  # B winning every game left could not catch up
    full = play_match(c4, GreedyAgent(c4), RandomAgent(c4), 100, seed=1, batch_size=4, stop_when_decided=False)
    assert full.stopped is None and full.games == 100


def test_bad_match_input_is_refused(c4):
    with pytest.raises(ValueError, match="num_games"):
        play_match(c4, RandomAgent(c4), RandomAgent(c4), 0)
    with pytest.raises(ValueError, match="elo0 < elo1"):
        play_match(c4, RandomAgent(c4), RandomAgent(c4), 2, sprt=(50, 0))

    class Cheat:
        name = "cheat"

        def act(self, states, move_numbers, rng_seed):
            return np.full(len(states), 3, np.int64)  # column 3 fills up after 6 moves

    with pytest.raises(ValueError, match="cheat.*illegal action 3"):
        play_match(c4, Cheat(), Cheat(), 2)


# ------------------------------------------------------------------------------ one match's statistics


def test_elo_of_an_even_score_is_zero_with_a_symmetric_interval():
    assert elo_from_score(0.5, 100) == 0.0
    lo, hi = elo_interval(40, 20, 40)
    assert lo == pytest.approx(-hi) and 20 < hi < 80
    assert elo_from_score(score_from_elo(150.0), 1000) == pytest.approx(150.0)
    assert elo_from_score(0.76, 100) == pytest.approx(200, abs=3)


def test_elo_stays_finite_at_perfect_scores_and_the_interval_shrinks_with_games():
    ten, hundred = elo_from_score(1.0, 10), elo_from_score(1.0, 100)
    assert math.isfinite(ten) and 0 < ten < hundred and elo_from_score(0.0, 10) == pytest.approx(-ten)
    lo10, hi10 = elo_interval(10, 0, 0)
    lo100, hi100 = elo_interval(100, 0, 0)
    assert 0 < lo10 < ten <= hi10 and lo10 < lo100 and math.isfinite(hi100)
    lo, hi = elo_interval(30, 40, 30)
    lo_decisive, hi_decisive = elo_interval(50, 0, 50)
    assert hi - lo < hi_decisive - lo_decisive  # draws carry less variance than wins and losses
    lo, hi = score_interval(3, 0, 1)
    assert lo < 0.75 < hi


def test_sprt_llr_signs_and_the_small_sample_limit():
    assert sprt_llr(60, 20, 20, 0, 50) > 0 > sprt_llr(20, 20, 60, 0, 50)
    # five straight wins: the likelihood ratio is (s1 / s0)^5, not infinite
    assert sprt_llr(5, 0, 0, 0, 50) == pytest.approx(5 * math.log(score_from_elo(50) / 0.5), rel=1e-2)
    test = SPRT(0, 50)
    assert test.decide(10, 0, 0)[1] is None and test.decide(300, 0, 100)[1] == "H1"
    assert test.decide(100, 200, 100)[1] == "H0"


# ------------------------------------------------------------------------------ Bradley-Terry


def simulate(true: dict[str, float], games_per_pair: int, seed: int) -> list[tuple]:
    """Matches between every two players: a wins / draws (10%) / losses at the Elo model's score."""
    rng = np.random.default_rng(seed)
    out = []
    names = list(true)
    for x, a in enumerate(names):
        for b in names[x + 1 :]:
            s = score_from_elo(true[a] - true[b])
            w, d, l = rng.multinomial(games_per_pair, [s - 0.05, 0.1, 1 - s - 0.05])
            out.append((a, b, int(w), int(d), int(l)))
    return out


def test_bradley_terry_recovers_known_ratings_within_their_intervals():
    true = {"zero": 0.0, "two": 200.0, "four": 400.0}
    results = simulate(true, 400, seed=0)
    fitted = fit_bradley_terry(results, anchor="zero")
    intervals = rating_intervals(results, anchor="zero")
    assert fitted["zero"] == 0.0 and intervals["zero"] == (0.0, 0.0)
    for name in ["two", "four"]:
        assert fitted[name] == pytest.approx(true[name], abs=50)
        lo, hi = intervals[name]
        assert lo <= true[name] <= hi and lo < fitted[name] < hi and hi - lo < 150
    shifted = fit_bradley_terry(results, anchor="two", anchor_rating=1000.0)
    assert shifted["four"] - shifted["zero"] == pytest.approx(fitted["four"] - fitted["zero"])


def test_bradley_terry_depends_on_the_games_not_their_order_or_split():
    results = simulate({"a": 0.0, "b": 120.0, "c": 300.0, "d": -80.0}, 50, seed=1)
    fitted = fit_bradley_terry(results, anchor="a")
    assert fit_bradley_terry(results[::-1], anchor="a") == pytest.approx(fitted)
    flipped = [(b, a, l, d, w) for a, b, w, d, l in results]
    assert fit_bradley_terry(flipped, anchor="a") == pytest.approx(fitted)
    split = [(a, b, w // 2, d // 2, l // 2) for a, b, w, d, l in results]
    split += [(a, b, w - w // 2, d - d // 2, l - l // 2) for a, b, w, d, l in results]
    assert fit_bradley_terry(split, anchor="a") == pytest.approx(fitted)


def test_two_players_match_the_score_and_unbeaten_players_stay_finite():
    two = fit_bradley_terry([("x", "y", 30, 10, 10)], anchor="y", prior_games=2.0)
    assert two["x"] == pytest.approx(elo_from_score((30 + 5 + 1) / 52, 52))  # 2 virtual draws
    unbeaten = fit_bradley_terry([("x", "y", 20, 0, 0), ("y", "z", 5, 5, 5)], anchor="z")
    assert all(math.isfinite(v) for v in unbeaten.values()) and unbeaten["x"] > unbeaten["y"] + 300
    # a weaker prior lets the unbeaten player's rating climb
    assert fit_bradley_terry([("x", "y", 20, 0, 0)], anchor="y", prior_games=0.5)["x"] > unbeaten["x"] - unbeaten["y"]


def test_bradley_terry_uses_indirect_games_and_refuses_bad_results():
    # b and c never met; both were measured against a
    fitted = fit_bradley_terry([("a", "b", 76, 0, 24), ("c", "a", 76, 0, 24)], anchor="a", prior_games=1e-6)
    assert fitted["c"] - fitted["b"] == pytest.approx(2 * elo_from_score(0.76, 100), rel=1e-4)
    with pytest.raises(ValueError, match="itself"):
        fit_bradley_terry([("a", "a", 1, 0, 0)])
    with pytest.raises(ValueError, match=">= 0"):
        fit_bradley_terry([("a", "b", -1, 0, 0)])
    with pytest.raises(ValueError, match="prior_games"):
        fit_bradley_terry([("a", "b", 1, 0, 0)], prior_games=0)


# ------------------------------------------------------------------------------ rating table


def test_rating_table_accumulates_refits_saves_and_loads(tmp_path, c4):
    table = RatingTable.open(tmp_path / "ratings.json", anchor="random")
    assert table.ratings() == {}
    match = play_match(c4, GreedyAgent(c4), RandomAgent(c4), 20, seed=0, stop_when_decided=False)
    table.add(match, step=100)
    table.add("gen1", "random", 15, 2, 3, step=200)
    table.add("gen1", "greedy", 8, 0, 12, step=200)
    ratings = table.ratings()
    assert list(ratings) == ["greedy", "random", "gen1"] and ratings["random"] == 0.0
    assert ratings == pytest.approx(fit_bradley_terry(table.results, anchor="random"))
    payoff = table.payoff()
    assert payoff.shape == (3, 3) and np.isnan(np.diag(payoff)).all()
    assert payoff[2, 0] == pytest.approx(0.4) and payoff[0, 2] == pytest.approx(0.6)
    assert payoff[0, 1] == pytest.approx(match.score)
    path = table.save()
    assert not list(tmp_path.glob(".*tmp*"))  # the atomic write left no temporary file
    saved = json.loads(path.read_text())
    assert saved["ratings"] == pytest.approx(ratings) and saved["matches"][0]["meta"] == {"step": 100}
    again = RatingTable.open(path)
    assert again.results == table.results and again.ratings() == pytest.approx(ratings)
    intervals = again.intervals()
    assert intervals["random"] == (0.0, 0.0) and intervals["gen1"][0] < ratings["gen1"] < intervals["gen1"][1]


def test_rating_table_refuses_files_that_are_not_tables(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad JSON"):
        RatingTable.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"format": "something"}')
    with pytest.raises(ValueError, match="not a selfplay-ratings file"):
        RatingTable.load(tmp_path / "other.json")
    with pytest.raises(ValueError, match="cannot read"):
        RatingTable.load(tmp_path / "missing.json")


# ------------------------------------------------------------------------------ command line


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return main(parser.parse_args(argv))


def test_arena_command_prints_the_match(capsys):
    assert run_cli(["greedy", "random", "--game", "tictactoe", "--games", "20", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("greedy vs random: W/D/L ") and "in 20 games" in out and "Elo +" in out
    assert run_cli(["mcts:20", "random", "--game", "connect4", "--games", "6", "--json", "--sprt", "--all-games"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["game"] == "connect4_v1" and data["games"] == 6 and len(data["records"]) == 6
    assert set(data) >= {"wins", "draws", "losses", "score", "elo_diff", "elo_ci95", "sprt", "llr"}


def test_arena_command_reads_the_game_from_a_checkpoint(tmp_path, capsys):
    from selfplay.model.checkpoint import save_checkpoint
    from selfplay.model.network import NetConfig, build_network

    game = games.make("connect4", width=5, height=4)
    model = build_network(NetConfig(kind="mlp", layers=1, hidden=8), game.obs_shape, game.num_actions)
    save_checkpoint(tmp_path, 1, model, game=game)
    assert run_cli([str(tmp_path), "random", "--games", "4", "--visits", "4", "--json", "--no-progress"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["options"] == {"width": 5, "height": 4} and data["games"] >= 3


def test_arena_command_errors_are_one_line():
    with pytest.raises(ValueError, match="no game given"):
        run_cli(["random", "greedy"])
    with pytest.raises(ValueError, match="unknown agent 'nobody'"):
        run_cli(["nobody", "greedy", "--game", "tictactoe"])
    with pytest.raises(games.GameError, match="unknown game"):
        run_cli(["random", "greedy", "--game", "chess9"])
    with pytest.raises(SystemExit):  # argparse refuses it: selfplay's parser makes that one line
        run_cli(["random", "greedy", "--game", "tictactoe", "--games", "0"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--games", "0"], "argument --games: must be >= 1, got 0"),
        (["--batch", "0"], "argument --batch: must be >= 1, got 0"),
        (["--sprt", "--elo1", "inf"], "argument --elo1: must be a finite number, got 'inf'"),
        (["--seed", "x"], "argument --seed: must be an integer, got 'x'"),
        (["--sprt", "--elo0", "50", "--elo1", "0"], "elo0 < elo1"),
        (["--visits", "-1"], "--visits"),
    ],
)
def test_selfplay_arena_reports_bad_input_in_one_line_with_exit_code_2(argv, message, capsys):
    from selfplay.tools.cli import main as selfplay_main

    assert selfplay_main(["arena", "random", "greedy", "--game", "tictactoe", "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
