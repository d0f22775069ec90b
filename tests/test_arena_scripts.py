"""The arena's scripted opponents (games.arena_scripts): hand-checked decisions, legality in
every position, and their use as agents (selfplay arena BRAIN kite --game arena)."""

from __future__ import annotations

import numpy as np
import pytest

import games
from games import arena
from games.arena import scenario
from games.arena_scripts import SCRIPTS, script_action
from selfplay.evaluation.agents import AgentError, RandomAgent, ScriptAgent, load_agent
from selfplay.evaluation.matches import play_match

OPEN = games.make("arena", map="open")  # lineup FAF: slots 0 and 2 fighters, slot 1 an archer


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
    for name in set(SCRIPTS) - {"guard"}:  # the guard holds its cell
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
            for name in SCRIPTS:
                assert mask[script_action(game, name, state)], (name, game.render_text(state))
            checked += 1
            state = game.next_state(state, int(rng.choice(np.flatnonzero(mask))))
    assert checked > 500


def test_scripts_are_agents_by_name_and_beat_random():
    agent = load_agent("focus", OPEN)
    assert isinstance(agent, ScriptAgent) and agent.name == "focus"
    result = play_match(OPEN, agent, RandomAgent(OPEN), 20, seed=1, progress=False, stop_when_decided=False)
    assert result.wins >= 18
    with pytest.raises(AgentError, match="unknown agent 'kite'"):
        load_agent("kite", games.make("connect4"))
    with pytest.raises(AgentError, match="has no script 'dance'; its scripts: nearest, focus, kite, guard"):
        ScriptAgent(OPEN, "dance")
