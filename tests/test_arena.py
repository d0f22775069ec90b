"""Arena rules, encoding and notation, checked on hand-made positions (``games.arena.scenario``).

Cells in scenarios are written as in ``render_text``: column letter, row counted from the top
(``a1`` top left). Red faces north (up), blue faces south.
"""

import numpy as np
import pytest

import games
from games.arena import scenario
from games.arena_rules import ATTACK, BACK, FORWARD, HP, LEFT, RIGHT, WAIT
from games.playout import random_playouts
from games.testing import check_game

def plane(game, name):
    return game.extra["plane_names"].index(name)


def cell_of(game, state, agent):
    n = len(game.agent_names) // 2
    return int(state[HP + 2 * n + agent])


def hp_of(game, state, agent):
    return int(state[HP + agent])


def token(game, state, point):
    """What ``render_text`` shows at ``point`` (e.g. "d4"): ".", "###", "F0", "a1*"..."""
    row, col = int(point[1:]) - 1, ord(point[0]) - ord("a")
    return game.render_text(state).splitlines()[2 + row].split()[1 + col]


def legal_texts(game, state):
    return {game.action_to_text(a) for a in game.legal_actions(state)}


@pytest.mark.parametrize(
    "options", [{}, {"map": "bridge", "lineup": "FAFA"}, {"map": "small", "lineup": "A", "turn_limit": 20}]
)
def test_conforms(options):
    game = games.make("arena", **options)
    assert check_game(game, num_games=4) > 4


def test_static_facts():
    game = games.make("arena")
    assert game.agent_names == ("red_0", "red_1", "red_2", "blue_0", "blue_1", "blue_2")
    assert game.agent_players == (0, 0, 0, 1, 1, 1)
    assert game.num_actions == 5 + 3 and game.obs_shape == (12, 8, 8) and game.state_size == 14
    assert game.extra["action_names"][:5] == ("wait", "forward", "right", "back", "left")
    assert game.action_perms[1].tolist() == [WAIT, FORWARD, LEFT, BACK, RIGHT, ATTACK, ATTACK + 1, ATTACK + 2]
    # blue's frame is red's turned by a half turn: each step is the negative of red's
    deltas = game.extra["move_deltas"]  # [team, direction, (drow, dcol)]
    assert deltas[0].tolist() == [[-1, 0], [0, 1], [1, 0], [0, -1]] and (deltas[1] == -deltas[0]).all()


def test_start_is_fair_and_red_moves_first():
    game = games.make("arena")
    s = game.initial_state()
    assert game.agent_to_move(s) == 0 and game.to_play(s) == 0
    cells = [cell_of(game, s, i) for i in range(6)]
    assert [c // 8 for c in cells] == [6, 6, 6, 1, 1, 1]  # second row from each team's edge
    assert cells[3:] == [63 - c for c in cells[:3]]  # blue's start is red's turned by a half turn
    assert [hp_of(game, s, i) for i in range(6)] == [10, 6, 10, 10, 6, 10]  # F A F


def test_every_unit_sees_its_own_team_at_the_bottom():
    """At the (half-turn symmetric) start, red_k and blue_k see the same picture; only the
    turn order differs (red acts first)."""
    game = games.make("arena")
    s = game.initial_state()
    order = plane(game, "turn_order")
    for k in range(3):
        red, blue = game.encode_agent(s, k), game.encode_agent(s, 3 + k)
        same = np.arange(len(red)) != order
        assert (red[same] == blue[same]).all()
        assert red[plane(game, "self")][6].any() and blue[plane(game, "self")][6].any()


def swap_teams(game, state):
    """The same position with the teams' roles swapped: red_k takes blue_k's place turned by a
    half turn, and vice versa; the counterpart of the acting unit acts."""
    n = len(game.agent_names) // 2
    h, w = game.obs_shape[1:]
    out = state.copy()
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        out[HP + j] = state[HP + i]
        cell = state[HP + 2 * n + i]
        out[HP + 2 * n + j] = h * w - 1 - cell if cell >= 0 else -1
    out[1] = state[1] ^ 1  # turn-order position 2k + team -> 2k + other team
    return out


def test_encoding_is_the_same_from_either_team():
    game = games.make("arena")
    rng = np.random.default_rng(1)
    s = game.initial_state()
    order = plane(game, "turn_order")
    for _ in range(40):
        s = game.next_state(s, rng.choice(game.legal_actions(s)))
        t = swap_teams(game, s)
        assert game.legal_mask(t).tolist() == game.legal_mask(s).tolist()  # egocentric actions
        for i in range(6):
            mine, theirs = game.encode_agent(s, i), game.encode_agent(t, (i + 3) % 6)
            keep = np.arange(len(mine)) != order
            assert (mine[keep] == theirs[keep]).all()


def test_encoding_planes():
    game = games.make("arena", map="open")
    s = scenario(
        game,
        {"red_0": ("d5", 7), "red_1": ("d7", 6), "blue_0": ("d4", 5), "blue_1": ("h1", 2)},
        to_move="red_1",
        turn=15,
    )
    obs = game.encode(s)  # red_1's view: red's frame is the board as drawn
    at = lambda name, cell: obs[plane(game, name)].flat[cell]  # noqa: E731
    d5, d7, d4, h1 = 4 * 8 + 3, 6 * 8 + 3, 3 * 8 + 3, 7
    assert obs[plane(game, "self")].sum() == 1 and at("self", d7) == 1
    approx = pytest.approx
    assert at("allies_hp", d5) == approx(0.7) and at("allies_hp", d7) == approx(0.6)
    assert obs[plane(game, "allies_hp")].sum() == approx(1.3)
    assert at("enemy_0_hp", d4) == 0.5 and at("enemy_1_hp", h1) == approx(0.2)
    assert obs[plane(game, "enemy_2_hp")].sum() == 0
    assert at("fighters", d5) == at("fighters", d4) == 1 and at("archers", d7) == at("archers", h1) == 1
    # turn order from red_1 (position 2): red_1, blue_1, red_0, blue_0 (red_2, blue_2 dead)
    assert [at("turn_order", c) for c in (d7, h1, d5, d4)] == approx([1, 5 / 6, 4 / 6, 3 / 6])
    # blue_0, a fighter, hits its four neighbours for 3; blue_1, an archer, reaches 3 cells for 2
    reach = obs[plane(game, "enemy_reach")]
    assert reach.flat[d5] == approx(0.3) and reach.flat[h1 + 8 * 3] == approx(0.2)
    assert reach.flat[d4] == 0 and np.count_nonzero(reach) == 4 + 9
    assert (obs[plane(game, "turns_left")] == np.float32(45 / 60)).all()
    assert obs[plane(game, "ally_reach")].flat[d4] == approx(0.3 + 0.2)  # both red units reach d4
    # blue_0's own view is turned by a half turn: d4 (row 3, col 3) appears at (4, 4)
    theirs = game.encode_agent(s, 3)
    assert theirs[plane(game, "self"), 4, 4] == 1 and theirs[plane(game, "enemy_1_hp"), 1, 4] == approx(0.6)


def test_attack_only_living_enemies_in_range():
    game = games.make("arena", map="open")
    s = scenario(
        game,
        {"red_1": ("d5", 6), "red_0": ("a8", 10), "blue_0": ("d2", 10), "blue_1": ("f4", 6)},
        to_move="red_1",
    )
    # red_1 is an archer (range 3): blue_0 at distance 3, blue_1 at 3, blue_2 is dead
    assert {"attack 0", "attack 1"} <= legal_texts(game, s) and "attack 2" not in legal_texts(game, s)
    far = scenario(game, {"red_1": ("d6", 6), "blue_0": ("d2", 10), "blue_1": ("f5", 6)}, to_move="red_1")
    assert "attack 0" not in legal_texts(game, far) and "attack 1" in legal_texts(game, far)  # 4 vs 3
    fighter = scenario(game, {"red_0": ("d5", 10), "blue_0": ("e4", 10), "blue_1": ("d4", 6)}, "red_0")
    assert "attack 0" not in legal_texts(game, fighter)  # diagonal: distance 2 > range 1
    assert "attack 1" in legal_texts(game, fighter)
    with pytest.raises(games.IllegalMoveError, match="attack 0"):
        game.next_state(fighter, ATTACK + 0)


def test_damage_death_and_the_freed_cell():
    game = games.make("arena", map="open")
    s = scenario(
        game, {"red_0": ("d5", 10), "blue_0": ("d4", 4), "blue_1": ("a1", 6)}, to_move="red_0", turn=3
    )
    s = game.next_state(s, ATTACK + 0)  # a fighter deals 3
    assert hp_of(game, s, 3) == 1 and s[0] == 4
    s = game.next_state(s, WAIT)  # blue_0 waits
    s = game.next_state(s, WAIT)  # blue_1 waits
    s = game.next_state(s, ATTACK + 0)
    assert hp_of(game, s, 3) == 0 and cell_of(game, s, 3) == -1  # dead: off the board
    assert not game.is_terminal(s) and game.agent_to_move(s) == 4  # blue_1 lives on
    s = game.next_state(s, WAIT)
    assert "forward" in legal_texts(game, s)  # d4 is free again
    assert token(game, s, "d4") == "." and "dead" in game.render_text(s)


def test_dead_units_are_skipped_so_a_team_can_move_twice():
    game = games.make("arena", map="open")
    s = scenario(
        game, {"red_0": ("a8", 10), "red_1": ("c8", 6), "blue_1": ("h1", 6)}, to_move="red_0"
    )
    order = []
    for _ in range(6):
        order.append(game.agent_names[game.agent_to_move(s)])
        s = game.next_state(s, WAIT)
    assert order == ["red_0", "red_1", "blue_1"] * 2
    # a death mid-cycle: blue_0 dies, so red_1 follows red_0 at once
    units = {"red_0": ("d5", 10), "red_1": ("a8", 6), "blue_0": ("d4", 3), "blue_1": ("h1", 6)}
    s = scenario(game, units, to_move="red_0")
    s = game.next_state(s, ATTACK + 0)
    assert game.agent_names[game.agent_to_move(s)] == "red_1" and game.to_play(s) == 0


def test_walls_units_and_edges_block_movement_in_each_frame():
    game = games.make("arena")  # pillars: walls at b3, g3, d4, e4, d5, e5, b6, g6
    s = scenario(game, {"red_0": ("c4", 10), "red_1": ("c5", 6), "blue_0": ("c3", 10)}, to_move="red_0")
    assert legal_texts(game, s) >= {"wait", "left"}  # b4 is free
    assert not legal_texts(game, s) & {"forward", "right", "back"}  # blue_0, wall d4, red_1
    # blue faces south: its forward is c4 (taken by red_0), its right is b3 (a wall), left d3 free
    s = scenario(game, {"red_0": ("c4", 10), "blue_0": ("c3", 10)}, to_move="blue_0")
    assert legal_texts(game, s) & {"forward", "right", "back", "left"} == {"back", "left"}
    s = game.next_state(s, LEFT)
    assert token(game, s, "d3") == "f0" and token(game, s, "c3") == "."
    corner = scenario(game, {"red_0": ("a8", 10), "blue_0": ("h1", 10)}, to_move="red_0")
    assert legal_texts(game, corner) & {"forward", "right", "back", "left"} == {"forward", "right"}
    corner = game.next_state(corner, WAIT)
    assert legal_texts(game, corner) & {"forward", "right", "back", "left"} == {"forward", "right"}
    assert game.next_state(corner, FORWARD)[HP + 2 * 3 + 3] == 15  # blue_0 h1 -> h2 (cell 15)
    assert game.next_state(corner, RIGHT)[HP + 2 * 3 + 3] == 6  # blue's right is west: g1


def test_wipe_out_wins_for_the_right_team():
    game = games.make("arena", map="open")
    s = scenario(game, {"red_0": ("d5", 1), "red_1": ("a8", 6), "blue_0": ("d4", 3)}, to_move="red_0")
    won = game.next_state(s, ATTACK + 0)
    assert game.is_terminal(won) and won[0] == 1 and game.returns(won).tolist() == [1.0, -1.0]
    s = scenario(game, {"red_0": ("d5", 1), "blue_0": ("d4", 3), "blue_1": ("a1", 1)}, to_move="blue_0")
    lost = game.next_state(s, ATTACK + 0)
    assert game.is_terminal(lost) and game.returns(lost).tolist() == [-1.0, 1.0]
    assert not game.legal_mask(lost).any()


def test_turn_limit_is_decided_by_total_hp_or_drawn():
    game = games.make("arena", map="open", turn_limit=30)
    units = {"red_0": ("a8", 4), "red_1": ("c8", 6), "blue_0": ("h1", 10)}  # 10 against 10
    s = scenario(game, units, to_move="red_1", turn=29)
    end = game.next_state(s, WAIT)
    assert game.is_terminal(end) and game.returns(end).tolist() == [0.0, 0.0]
    s = scenario(game, {**units, "blue_0": ("h1", 9)}, to_move="red_1", turn=29)
    assert game.returns(game.next_state(s, WAIT)).tolist() == [1.0, -1.0]
    s = scenario(game, {**units, "red_0": ("a8", 3)}, to_move="blue_0", turn=29)
    assert game.returns(game.next_state(s, WAIT)).tolist() == [-1.0, 1.0]
    assert game.max_length == 30


def test_left_right_mirror_swaps_right_and_left():
    game = games.make("arena")
    s = scenario(game, {"red_0": ("a4", 10), "blue_0": ("h1", 10)}, to_move="red_0")
    m = game.transform_state(s, 1)
    assert cell_of(game, m, 0) == 3 * 8 + 7  # a4 -> h4
    assert "right" in legal_texts(game, s) and "left" not in legal_texts(game, s)
    assert "left" in legal_texts(game, m) and "right" not in legal_texts(game, m)
    assert (game.transform_state(m, 1) == s).all()


def test_notation():
    game = games.make("arena")
    for a in range(game.num_actions):
        assert game.parse_action(game.action_to_text(a)) == a
    assert [game.parse_action(t) for t in ("w", "F", " right ", "b", "l", "a2", "Attack  1", "a 0")] == [
        WAIT, FORWARD, RIGHT, BACK, LEFT, ATTACK + 2, ATTACK + 1, ATTACK,
    ]  # fmt: skip
    for bad, message in [("north", "cannot read"), ("a3", "no enemy slot 3"), ("attack", "cannot read")]:
        with pytest.raises(games.GameError, match=message):
            game.parse_action(bad)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"lineup": "FXA"}, "kind letters"),
        ({"lineup": "FAFAF"}, "kind letters"),
        ({"map": "moon"}, "out of range"),
        ({"turn_limit": 0}, "turn_limit 0"),
        ({"map": "small", "lineup": "FAFA"}, "does not fit"),
    ],
)
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(games.GameError, match=message):
        games.make("arena", **options)


def test_scenario_rejects_impossible_positions():
    game = games.make("arena")
    for units, to_move, message in [
        ({"red_0": ("d4", 10)}, "red_0", "wall"),
        ({"red_0": ("a1", 11)}, "red_0", "hp 11"),
        ({"red_0": ("a1", 5), "blue_0": ("a1", 5)}, "red_0", "taken"),
        ({"red_9": ("a1", 5)}, "red_9", "unknown unit"),
        ({"red_0": ("a1", 5)}, "blue_0", "to move"),
    ]:
        with pytest.raises(games.GameError, match=message):
            scenario(game, units, to_move)


def minimax(game, state, alpha=-2.0, beta=2.0):
    """Exact value for red (team 0) by alpha-beta over every line to the end of the game."""
    if game.is_terminal(state):
        return game.outcome_fn(game.params, state, 0)
    red = game.to_play(state) == 0
    best = -2.0 if red else 2.0
    for a in game.legal_actions(state):
        child = state.copy()
        game.apply_action_fn(game.params, child, a)
        value = minimax(game, child, alpha, beta)
        best = max(best, value) if red else min(best, value)
        alpha, beta = (max(alpha, best), beta) if red else (alpha, min(beta, best))
        if alpha >= beta:
            break
    return best


def root_values(game, state):
    values = {}
    for a in game.legal_actions(state):
        child = state.copy()
        game.apply_action_fn(game.params, child, a)
        values[game.action_to_text(a)] = minimax(game, child)
    return values


def test_tactics_matter_focus_fire_on_the_weak_enemy():
    """Red's hurt fighter (7 HP) stands between two blue fighters (3 and 6 HP, 9 in all), six
    unit-turns before the end. Killing the weak one at once removes its blows, and red wins the
    duel that follows; hitting the strong one, or stepping away, loses."""
    game = games.make("arena", lineup="FF", map="open")
    s = scenario(
        game, {"red_0": ("d5", 7), "blue_0": ("d4", 3), "blue_1": ("e5", 6)}, to_move="red_0", turn=54
    )
    values = root_values(game, s)
    assert values.pop("attack 0") == 1.0
    assert values.pop("attack 1") == -1.0
    assert values and all(v < 1.0 for v in values.values())


def test_tactics_matter_a_hurt_archer_falls_back():
    """Red's archer (3 HP) stands next to a blue fighter, whose blow (3) would kill it. Red leads
    11 HP to 10 with three unit-turns left (red_1, red_0, blue_0). Any step out of reach wins;
    a parting shot (2 damage) only draws; staying put loses."""
    game = games.make("arena", lineup="FA", map="open")
    s = scenario(
        game, {"red_1": ("d5", 3), "red_0": ("a8", 8), "blue_0": ("d4", 10)}, to_move="red_1", turn=57
    )
    values = root_values(game, s)
    assert values == {"back": 1.0, "left": 1.0, "right": 1.0, "attack 0": 0.0, "wait": -1.0}


def test_render_text_shows_units_hp_and_the_mover():
    game = games.make("arena")
    text = game.render_text(game.initial_state())
    assert "red_0 (fighter) to move, forward is north" in text
    assert "F0*" in text and "a1" in text and "f2" in text and text.count("###") == 8
    s = game.next_state(game.initial_state(), WAIT)
    assert "blue_0 (fighter) to move, forward is south" in game.render_text(s)


def test_draw_paints_units_and_highlights_the_mover():
    pygame = pytest.importorskip("pygame")
    game = games.make("arena")
    surface = pygame.Surface((320, 320))  # 40-pixel cells
    game.draw_fn(game, game.initial_state(), surface)
    rgb = pygame.surfarray.array3d(surface).transpose(1, 0, 2)  # [y, x, 3]

    def colour(cell, dy, dx):
        row, col = divmod(cell, 8)
        return tuple(rgb[row * 40 + dy, col * 40 + dx])

    red_0, red_1, blue_0 = (cell_of(game, game.initial_state(), i) for i in (0, 1, 3))
    assert colour(red_0, 17, 9) == (206, 58, 52) and colour(blue_0, 17, 9) == (46, 96, 206)  # discs
    assert colour(red_0, 17, 5) == (255, 214, 0)  # the gold ring of the unit to act
    assert colour(red_1, 17, 5) != (255, 214, 0) and colour(red_1, 17, 9) == (206, 58, 52)
    assert colour(2 * 8 + 1, 20, 20) != colour(0, 20, 20)  # b3 is a wall, a1 is ground


def test_random_playouts_are_reproducible_and_bounded():
    game = games.make("arena", map="small", turn_limit=40)
    steps = random_playouts(game, 50, seed=5)
    assert steps == random_playouts(game, 50, seed=5) and steps <= 50 * 40
