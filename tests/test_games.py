"""Every registered game through the conformance checker, plus the cross-game pieces."""

import numpy as np
import pytest

import games
from games.baselines import greedy_action, random_action
from games.perft import count_games, distinct_positions, perft
from games.playout import random_playout_value, random_playouts
from games.rng import make_rng
from games.testing import check_game


@pytest.mark.parametrize("name", games.list_games())
def test_every_game_conforms(name):
    assert check_game(games.make(name), num_games=6) > 6


def test_tictactoe_counts():
    game = games.make("tictactoe")
    assert count_games(game) == 255_168
    assert sum(distinct_positions(game, 9)) == 5_478
    assert [perft(game, d) for d in range(4)] == [1, 9, 72, 504]


def test_unknown_game_and_option_are_one_line_errors():
    with pytest.raises(games.GameError, match="unknown game 'chess'"):
        games.make("chess")
    with pytest.raises(games.GameError, match="unknown option 'width' for game 'tictactoe'"):
        games.make("tictactoe", width=3)
    with pytest.raises(games.GameError, match="out of range"):
        games.make("connect4", width=99)
    with pytest.raises(games.GameError, match="takes an integer"):
        games.make("connect4", width="wide")


def test_illegal_move_names_the_move_and_the_legal_ones():
    game = games.make("tictactoe")
    state = game.play([4])
    with pytest.raises(games.IllegalMoveError, match=r"illegal move 'b2'.*legal: a1"):
        game.next_state(state, 4)
    with pytest.raises(games.IllegalMoveError, match="game is over"):
        game.next_state(game.play([0, 3, 1, 4, 2]), 8)


def test_tictactoe_outcome_point_of_view():
    game = games.make("tictactoe")
    x_wins = game.play([0, 3, 1, 4, 2])
    assert game.returns(x_wins).tolist() == [1.0, -1.0]
    o_wins = game.play([0, 3, 1, 4, 8, 5])
    assert game.returns(o_wins).tolist() == [-1.0, 1.0]
    draw = game.play([0, 1, 2, 4, 3, 5, 7, 6, 8])
    assert game.returns(draw).tolist() == [0.0, 0.0]
    with pytest.raises(games.GameError, match="not over"):
        game.returns(game.initial_state())


def test_encoding_is_from_the_mover():
    game = games.make("tictactoe")
    s = game.play([4])  # X in the centre, O to move: the centre is the opponent's
    assert game.encode(s)[1, 1, 1] == 1 and game.encode(s)[0].sum() == 0
    assert (game.encode_agent(s, 0)[0] == game.encode(s)[1]).all()


def test_random_playouts_are_reproducible_and_count_actions():
    game = games.make("tictactoe")
    assert random_playouts(game, 200, seed=3) == random_playouts(game, 200, seed=3)
    steps = random_playouts(game, 200, seed=3)
    assert 5 * 200 <= steps <= 9 * 200


def test_random_playout_value_is_exact_at_a_decided_position():
    game = games.make("tictactoe")
    s = game.play([0, 3, 1, 4])  # X to move; every playout from here is random, but X may blunder
    mask = np.zeros(9, dtype=np.bool_)
    done = game.play([0, 3, 1, 4, 2])
    assert random_playout_value(*game.kernels, game.params, done.copy(), mask, make_rng(0), 0) == 1.0
    values = [random_playout_value(*game.kernels, game.params, s.copy(), mask, make_rng(i), 0) for i in range(200)]
    assert set(values) <= {-1.0, 0.0, 1.0} and np.mean(values) > 0


@pytest.mark.parametrize("name", ["tictactoe", "connect4", "gomoku"])
def test_greedy_beats_random(name):
    """The one-ply baseline wins clearly more than it loses against random, from both seats, in
    games where wins are made one move at a time (in Othello and the arena the result falls only
    at the end, so one ply of lookahead sees almost nothing)."""
    game = games.make(name)
    rng = make_rng(7)
    score = 0.0
    n = 20
    for i in range(n):
        greedy_player = i % 2
        state = game.initial_state()
        while not game.is_terminal(state):
            pick = greedy_action if game.to_play(state) == greedy_player else random_action
            state = game.next_state(state, pick(game, state, rng))
        score += game.returns(state)[greedy_player]
    assert score > 0.3 * n


def test_greedy_takes_wins_and_blocks():
    game = games.make("tictactoe")
    rng = make_rng(0)
    for _ in range(10):
        assert greedy_action(game, game.play([0, 3, 1, 4]), rng) == 2  # win
        assert greedy_action(game, game.play([0, 3, 1]), rng) == 2  # block


def test_symmetry_tables():
    perms = games.dihedral_perms(3, 3)
    assert perms.shape == (8, 9) and len({tuple(p) for p in perms}) == 8
    assert games.dihedral_perms(6, 7).shape == (4, 42)
