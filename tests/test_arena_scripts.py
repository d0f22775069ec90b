"""The arena's scripted opponents (games.arena_scripts): hand-checked decisions, legality in
every position, and their use as agents (selfplay arena BRAIN kite --game arena); the held-out
scripts (hunter, phalanx) the same way, and kept out of every league's pool."""

from __future__ import annotations

import numpy as np
import pytest

import games
from games import arena_rules as arena
from games.arena import scenario
from games.arena_scripts import HELD_OUT, SCRIPTS, phalanx_limit, rank, script_action
from selfplay.evaluation.agents import AgentError, RandomAgent, ScriptAgent, is_fixed_player, load_agent
from selfplay.evaluation.matches import play_match

OPEN = games.make("arena", map="open")  # lineup FAF: slots 0 and 2 fighters, slot 1 an archer
EVERY = {**SCRIPTS, **HELD_OUT}


def attack(slot: int) -> int:
    return arena.ATTACK + slot


def test_nearest_attacks_the_closest_enemy_in_range_and_focus_the_one_it_can_kill():
    state = scenario(OPEN, {"red_1": ("d6", 6), "blue_0": ("d4", 10), "blue_1": ("f6", 2), "blue_2": ("d3", 9)}, "red_1")
    # the archer (range 3) reaches all three; blue_0 and blue_1 are 2 away, blue_2 is 3 away
    assert script_action(OPEN, "nearest", state) == attack(0)  # a tie at distance 2: the lower slot
    assert script_action(OPEN, "focus", state) == attack(1)  # 2 HP: the archer's hit (2) kills it
    fighter = scenario(OPEN, {"red_0": ("d5", 10), "blue_0": ("d3", 10), "blue_2": ("e5", 9)}, "red_0")
    assert script_action(OPEN, "nearest", fighter) == attack(2)  # the only enemy in melee range


def test_kite_steps_an_archer_out_of_melee_reach_while_keeping_a_target():
    # a fighter 2 away could step and hit next turn; at d7, c6 or e6 it is 3 away, still in bow
    # range: those tie, and the first step in the order forward, right, back, left is taken
    state = scenario(OPEN, {"red_1": ("d6", 6), "blue_0": ("d4", 10)}, "red_1")
    assert script_action(OPEN, "focus", state) == attack(0)
    assert script_action(OPEN, "kite", state) == arena.RIGHT
    cornered = scenario(OPEN, {"red_1": ("h6", 6), "blue_0": ("h4", 10)}, "red_1")  # no cell east
    assert script_action(OPEN, "kite", cornered) == arena.BACK
    safe = scenario(OPEN, {"red_1": ("d7", 6), "blue_0": ("d4", 10)}, "red_1")
    assert script_action(OPEN, "kite", safe) == attack(0)  # out of reach and in range: shoot
    blue = scenario(OPEN, {"blue_1": ("a3", 6), "red_0": ("a5", 10)}, "blue_1")
    assert script_action(OPEN, "kite", blue) == arena.BACK  # blue's back is north, away from red


def test_scripts_step_around_walls_towards_the_enemy():
    pillars = games.make("arena")  # walls at d4, e4, d5, e5 between the two units
    state = scenario(pillars, {"red_0": ("d6", 10), "blue_0": ("d3", 10)}, "red_0")
    for name in set(EVERY) - {"guard"}:  # the guard holds its cell
        action = script_action(pillars, name, state)
        assert action in (arena.RIGHT, arena.LEFT), name  # forward is a wall; waiting gets nowhere
    assert script_action(pillars, "guard", state) == arena.WAIT


def test_guard_holds_its_cell_and_hits_the_weakest_enemy_in_range():
    state = scenario(OPEN, {"red_1": ("d6", 6), "blue_0": ("d4", 10), "blue_1": ("f6", 2), "blue_2": ("d2", 9)}, "red_1")
    assert script_action(OPEN, "guard", state) == attack(1)  # in range: blue_0 and blue_1; the hit kills blue_1
    alone = scenario(OPEN, {"red_1": ("d6", 6), "blue_2": ("d2", 9)}, "red_1")  # 4 away: out of bow range
    assert script_action(OPEN, "guard", alone) == arena.WAIT


def test_every_script_plays_a_legal_move_in_every_position_of_random_games():
    game = games.make("arena", lineup="FAAF", map="bridge")
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(30):
        state = game.initial_state()
        while not game.is_terminal(state):
            mask = game.legal_mask(state)
            for name in EVERY:
                assert mask[script_action(game, name, state)], (name, game.render_text(state))
            checked += 1
            state = game.next_state(state, int(rng.choice(np.flatnonzero(mask))))
    assert checked > 500


@pytest.mark.parametrize("name", [name for name in EVERY if name != "guard"])  # the sentry waits: it draws
def test_scripts_are_agents_by_name_and_beat_random(name):
    agent = load_agent(name, OPEN)
    assert isinstance(agent, ScriptAgent) and agent.name == name and is_fixed_player(name, OPEN)
    result = play_match(OPEN, agent, RandomAgent(OPEN), 20, seed=1, progress=False, stop_when_decided=False)
    assert result.wins >= 18, result.summary()


def test_an_unknown_script_names_the_scripts_there_are():
    with pytest.raises(AgentError, match="unknown agent 'kite'"):
        load_agent("kite", games.make("connect4"))
    with pytest.raises(AgentError, match="has no script 'dance'; its scripts: nearest, focus, kite, guard "
                       "\\(held out of leagues: hunter, phalanx\\)"):
        ScriptAgent(OPEN, "dance")


# ------------------------------------------------------------------------------ held out


def test_hunter_strikes_an_archer_in_reach_before_a_closer_weaker_fighter():
    # the archer red_1 reaches blue_0 (a fighter 1 away, 4 HP) and blue_1 (an archer 3 away)
    state = scenario(OPEN, {"red_1": ("d6", 6), "blue_0": ("d5", 4), "blue_1": ("d3", 6)}, "red_1")
    assert script_action(OPEN, "nearest", state) == attack(0)
    assert script_action(OPEN, "focus", state) == attack(0)  # the weakest
    assert script_action(OPEN, "hunter", state) == attack(1)
    # a fighter with a fighter it can kill and an archer both beside it
    fighter = scenario(OPEN, {"red_0": ("d5", 10), "blue_0": ("d4", 3), "blue_1": ("e5", 6)}, "red_0")
    assert script_action(OPEN, "focus", fighter) == attack(0)
    assert script_action(OPEN, "hunter", fighter) == attack(1)
    # no archer in reach: the weakest enemy in reach, not a step towards the archer
    busy = scenario(OPEN, {"red_0": ("d5", 10), "blue_0": ("d4", 9), "blue_2": ("c5", 5), "blue_1": ("h1", 6)}, "red_0")
    assert script_action(OPEN, "hunter", busy) == attack(2)


def test_hunter_walks_past_the_nearest_fighter_towards_the_archer():
    # blue_0 (a fighter) is 2 west, blue_1 (the archer) 3 east; red looks north, so east is right
    state = scenario(OPEN, {"red_0": ("d6", 10), "blue_0": ("b6", 10), "blue_1": ("g6", 6)}, "red_0")
    assert script_action(OPEN, "nearest", state) == arena.LEFT
    assert script_action(OPEN, "hunter", state) == arena.RIGHT
    # no archer left: the nearest enemy
    state = scenario(OPEN, {"red_0": ("d6", 10), "blue_0": ("b6", 10), "blue_2": ("h6", 10)}, "red_0")
    assert script_action(OPEN, "hunter", state) == arena.LEFT
    # blue's frame: the archer is north of the blue fighter, which is blue's back
    blue = scenario(OPEN, {"blue_0": ("d4", 10), "red_1": ("d1", 6), "red_0": ("d7", 10)}, "blue_0")
    assert script_action(OPEN, "hunter", blue) == arena.BACK


def test_phalanx_fighters_keep_rank_and_archers_follow_one_rank_behind():
    # ranks from red's own edge (row 8 is rank 0): red_0 at b6 is rank 2, red_2 at f7 rank 1
    units = {"red_0": ("b6", 10), "red_1": ("d7", 6), "red_2": ("f7", 10), "blue_0": ("b2", 10), "blue_2": ("f2", 10)}
    state = scenario(OPEN, units, "red_0")
    assert [rank(OPEN, 0, int(state[2 + 6 + i])) for i in range(3)] == [2, 1, 1]
    assert [phalanx_limit(OPEN, state, i) for i in range(3)] == [2, 0, 2]
    assert script_action(OPEN, "nearest", state) == arena.FORWARD
    assert script_action(OPEN, "phalanx", state) == arena.WAIT  # one rank ahead already: it waits
    assert script_action(OPEN, "phalanx", scenario(OPEN, units, "red_2")) == arena.FORWARD  # the straggler closes up
    assert script_action(OPEN, "phalanx", scenario(OPEN, units, "red_1")) == arena.WAIT  # archers stay behind
    # once both fighters stand on rank 2 the archer may step to rank 1... where it is: it waits
    # for rank 3; blue's ranks count from the top
    level = {**units, "red_2": ("f6", 10)}
    assert phalanx_limit(OPEN, scenario(OPEN, level, "red_1"), 1) == 1
    blue = scenario(OPEN, {"blue_0": ("b3", 10), "blue_2": ("f2", 10), "red_0": ("b7", 10)}, "blue_0")
    assert rank(OPEN, 3, int(blue[2 + 6 + 3])) == 2 and phalanx_limit(OPEN, blue, 3) == 2
    assert script_action(OPEN, "phalanx", blue) == arena.WAIT
    # an enemy in reach is attacked wherever the formation stands: the weakest
    engaged = scenario(OPEN, {"red_0": ("b6", 10), "red_2": ("f8", 10), "blue_0": ("b5", 7), "blue_1": ("a6", 5)}, "red_0")
    assert script_action(OPEN, "phalanx", engaged) == attack(1)


def test_a_phalanx_step_never_ends_ahead_of_its_rank():
    """In whole games against every league script, on two maps and from both sides: every step
    a phalanx unit takes ends at most one rank ahead of its team's rearmost living fighter (a
    fighter) or at least one rank behind it (an archer), ranks computed here from the rows."""
    steps = 0
    for game in (games.make("arena"), games.make("arena", lineup="FAAF", map="bridge")):
        n, h, w = (int(game.params[k]) for k in (arena.P_N, arena.P_H, arena.P_W))
        fighter = [letter == "F" for letter in game.options["lineup"] * 2]  # by agent
        for opponent in SCRIPTS:
            for side in (0, 1):
                state = game.initial_state()
                while not game.is_terminal(state):
                    me = game.agent_to_move(state)
                    mine = me // n == side
                    action = script_action(game, "phalanx" if mine else opponent, state)
                    after = game.next_state(state, action)
                    if mine and arena.FORWARD <= action <= arena.LEFT:
                        rows = state[2 + 2 * n : 2 + 4 * n] // w
                        ranks = np.where(np.arange(2 * n) < n, h - 1 - rows, rows)
                        team = [i for i in range(side * n, side * n + n) if state[2 + i] > 0 and fighter[i]]
                        if team:
                            rearmost = min(ranks[i] for i in team)
                            new_row = after[2 + 2 * n + me] // w
                            new_rank = h - 1 - new_row if me < n else new_row
                            assert new_rank <= rearmost + (1 if fighter[me] else -1), game.render_text(state)
                            steps += 1
                    state = after
    assert steps > 100


def test_the_held_out_scripts_are_in_no_league_pool_and_play_like_any_script():
    from selfplay.league.population import LeagueConfig, LeagueError

    pool = LeagueConfig(scripts="all").script_players(OPEN.extra["scripts"])
    assert pool == ["script:nearest", "script:focus", "script:kite", "script:guard"]
    assert set(OPEN.extra["held_out_scripts"]) == {"hunter", "phalanx"} and not set(HELD_OUT) & set(SCRIPTS)
    with pytest.raises(LeagueError, match="scripts hunter: "):
        LeagueConfig(scripts="all,hunter").script_players(OPEN.extra["scripts"])
    # deterministic: the same match twice is the same games, move for move
    a, b = (play_match(OPEN, load_agent("hunter", OPEN), load_agent("phalanx", OPEN), 6, seed=5, opening_moves=2,
                       stop_when_decided=False) for _ in range(2))
    assert a.records == b.records
