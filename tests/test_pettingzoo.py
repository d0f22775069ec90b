"""Every registered game as a PettingZoo AEC environment, and its pictures.

Tests parametrized over ``games.list_games()`` skip a game whose module is not written yet, so a
new game is tested here as soon as it lands.
"""

from __future__ import annotations

import importlib
import math
import warnings

import numpy as np
import pytest

import games
from games import render
from games.pettingzoo_env import GameEnv

with warnings.catch_warnings():  # pettingzoo.test imports a classic env through a deprecated path
    warnings.simplefilter("ignore", DeprecationWarning)
    from pettingzoo.test import api_test, seed_test

# What api_test says of any env with dict observations outside PettingZoo's own list, and of an
# empty board. Any other warning is a finding, so the API test fails on it.
BENIGN_API_WARNINGS = (
    "Observation is not a NumPy array",
    "Observation numpy array is all zeros",
    "Observation space for each agent probably should be",
)


def make_env(name: str, **kwargs) -> GameEnv:
    """``games.make_env(name)``, or a skip while the game's module does not exist yet."""
    module = games.game_info(name).module
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        pytest.skip(f"{name}: {module} is not written yet")
    return games.make_env(name, **kwargs)


def cycles_for_a_whole_game(env) -> int:
    """api_test's ``num_cycles`` (steps per agent) that covers the longest game and the dead steps."""
    return math.ceil(env.game.max_length / env.num_agents) + 2


def random_env_games(env, rng: np.random.Generator):
    """Play random legal moves through ``env``; yield ``(agent, last())`` at every turn, to the end."""
    env.reset(seed=int(rng.integers(1 << 30)))
    for agent in env.agent_iter():
        last = env.last()
        yield agent, last
        obs, _, terminated, truncated, _ = last
        env.step(None if terminated or truncated else int(rng.choice(np.flatnonzero(obs["action_mask"]))))


def api_test_without_findings(env, num_cycles: int) -> None:
    """PettingZoo's api_test, failing on any warning but the benign ones."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api_test(env, num_cycles=num_cycles)
    findings = {str(w.message) for w in caught if not str(w.message).startswith(BENIGN_API_WARNINGS)}
    assert not findings, f"api_test warned: {findings}"


@pytest.mark.parametrize("name", games.list_games())
def test_pettingzoo_api_test(name):
    env = make_env(name)
    api_test_without_findings(env, cycles_for_a_whole_game(env))


@pytest.mark.parametrize("name", games.list_games())
def test_pettingzoo_seed_test(name):
    env = make_env(name)
    seed_test(lambda: games.make_env(name), num_cycles=cycles_for_a_whole_game(env))


@pytest.mark.parametrize("name", games.list_games())
def test_whole_games_pay_every_agent_its_teams_result_once(name):
    env = make_env(name)
    game, rng = env.game, np.random.default_rng(0)
    for _ in range(3):
        paid = {}
        for agent, (_, reward, terminated, truncated, _) in random_env_games(env, rng):
            assert not truncated
            if not terminated:
                assert reward == 0.0, "rewards come only at the end"
                continue
            assert agent not in paid, f"{agent} was stepped again after it was done"
            paid[agent] = reward
            returns = game.returns(env.state())  # float64[N]
        assert env.agents == [] and set(paid) == set(env.possible_agents)
        for i, agent in enumerate(env.possible_agents):
            assert paid[agent] == returns[game.agent_players[i]], f"{agent} was paid the wrong result"
    with pytest.raises(games.GameError, match="reset"):
        env.step(0)


@pytest.mark.parametrize("name", games.list_games())
def test_observe_gives_each_agent_its_view_and_only_the_mover_a_mask(name):
    env = make_env(name)
    game, rng = env.game, np.random.default_rng(1)
    for agent, (obs, _, terminated, _, _) in random_env_games(env, rng):
        state = env.state()
        if terminated:
            for other in env.possible_agents:
                assert not env.observe(other)["action_mask"].any(), "no moves once the game is over"
            continue
        assert agent == env.possible_agents[game.agent_to_move(state)]
        assert obs["observation"].dtype == np.float32 and obs["action_mask"].dtype == np.int8
        assert (obs["observation"] == game.encode(state)).all(), "the mover sees the mover's encoding"
        assert (obs["action_mask"] == game.legal_mask(state)).all()
        for i, other in enumerate(env.possible_agents):
            if other != agent:
                view = env.observe(other)
                assert (view["observation"] == game.encode_agent(state, i)).all()
                assert not view["action_mask"].any(), f"{other} is not to move but got a mask"


def test_tictactoe_observations_are_from_each_players_side():
    env = make_env("tictactoe")
    env.step(4)  # X in the centre, b2
    x_view, o_view = env.observe("player_0")["observation"], env.observe("player_1")["observation"]
    assert x_view[0, 1, 1] == 1 and x_view[1].sum() == 0, "plane 0 holds the viewer's own marks"
    assert o_view[1, 1, 1] == 1 and o_view[0].sum() == 0, "plane 1 holds the opponent's marks"


@pytest.mark.parametrize(
    "moves, result",
    [
        ([0, 3, 1, 4, 2], {"player_0": 1.0, "player_1": -1.0}),  # X takes the top row
        ([4, 0, 2, 6, 8, 3], {"player_0": -1.0, "player_1": 1.0}),  # O takes column a
        ([0, 1, 2, 4, 3, 5, 7, 6, 8], {"player_0": 0.0, "player_1": 0.0}),  # full board, no line
    ],
)
def test_tictactoe_rewards_at_the_end(moves, result):
    env = make_env("tictactoe")
    for a in moves[:-1]:
        env.step(a)
    assert not any(env.terminations.values()) and set(env.rewards.values()) == {0.0}
    env.step(moves[-1])
    assert env.rewards == result and all(env.terminations.values())
    assert env.agent_selection == ("player_0", "player_1")[len(moves) % 2], "the other player sees it first"
    seen = {}
    for agent in env.agent_iter():
        _, seen[agent], terminated, _, _ = env.last()
        assert terminated
        env.step(None)
    assert seen == result and env.agents == []


def test_illegal_actions_raise_and_leave_the_position_alone():
    env = make_env("tictactoe")
    env.step(4)
    before = env.state()
    for bad in (4, 9, -1):
        with pytest.raises(games.IllegalMoveError, match="illegal move"):
            env.step(bad)
    with pytest.raises(games.IllegalMoveError, match="integer"):
        env.step(2.0)
    with pytest.raises(games.IllegalMoveError, match="step\\(None\\)"):
        env.step(None)
    assert (env.state() == before).all() and env.agent_selection == "player_1"
    env.step(np.int32(0))  # numpy integers are actions too
    assert env.agent_selection == "player_0"


def test_env_surface():
    env = make_env("tictactoe")
    assert env.metadata["name"] == "tictactoe_v1" == str(env)
    env.state()[:] = 99  # a copy: the env's position is untouched
    assert (env.state() == env.game.initial_state()).all()
    with pytest.raises(games.GameError, match="unknown agent"):
        env.observe("player_7")
    with pytest.raises(games.GameError, match="render_mode"):
        games.make_env("tictactoe", render_mode="ansi")
    with pytest.warns(UserWarning, match="without a render_mode"):
        assert env.render() is None


@pytest.mark.parametrize("name", games.list_games())
def test_rgb_array_shows_the_position(name):
    env = make_env(name, render_mode="rgb_array")
    width, height = render.default_size(env.game)
    empty = env.render()
    assert empty.dtype == np.uint8 and empty.shape == (height, width, 3)
    assert len(np.unique(empty.reshape(-1, 3), axis=0)) > 2, "the picture is blank"
    first = int(np.flatnonzero(env.observe(env.agent_selection)["action_mask"])[0])
    env.step(first)
    played = env.render()
    board = slice(0, height - render.CAPTION_HEIGHT)  # the caption changes anyway
    assert (played[board] != empty[board]).any(), "a move left the board picture unchanged"
    env.render_size = (200, 150)
    assert env.render().shape == (150, 200, 3)


@pytest.mark.parametrize("name", games.list_games())
def test_human_render_opens_a_window_headless(name):
    import pygame

    env = make_env(name, render_mode="human")
    env.reset()  # draws the window
    assert env.render() is None
    assert pygame.display.get_surface().get_size() == render.default_size(env.game)
    env.close()
    assert not pygame.display.get_init()


def test_captions_say_whose_turn_and_who_won():
    game = games.make("tictactoe")
    assert render.caption(game, game.initial_state()) == "player_0 (X) to move"
    assert render.caption(game, game.play([4])) == "player_1 (O) to move"
    assert render.caption(game, game.play([4, 0, 2, 6, 8, 3])) == "player_1 (O) wins"
    assert render.caption(game, game.play([0, 1, 2, 4, 3, 5, 7, 6, 8])) == "draw"


# --------------------------------------------------------------------------- units as agents
# A tiny game with the arena's shape, whose answers are known: units unit_0 and unit_1 (team 0)
# and unit_2 (team 1) act in turn, skipping the dead. Action 0 waits; action 1 kills the first
# living enemy. A team with no living unit loses. State int64[2]: [alive bits, unit to act].
ALIVE, ACTOR = 0, 1
TEAMS = (0, 0, 1)


def _skirmish() -> games.Game:
    def alive(state, unit):
        return bool((state[ALIVE] >> unit) & 1)

    def team_alive(state, team):
        return any(alive(state, u) for u in range(3) if TEAMS[u] == team)

    def is_terminal(params, state):
        return not (team_alive(state, 0) and team_alive(state, 1))

    def legal_mask(params, state, mask):
        mask[:] = not is_terminal(params, state)

    def apply_action(params, state, action):
        me = state[ACTOR]
        if action == 1:
            victim = next(u for u in range(3) if TEAMS[u] != TEAMS[me] and alive(state, u))
            state[ALIVE] &= ~(1 << victim)
        state[ACTOR] = next(u % 3 for u in range(me + 1, me + 4) if alive(state, u % 3))

    def outcome(params, state, team):
        return 1.0 if team_alive(state, team) else -1.0

    def encode_agent(params, state, agent, out):  # float32[1, 1, 3]: living units; own ones first
        order = sorted(range(3), key=lambda u: TEAMS[u] != TEAMS[agent])
        out[0, 0, :] = [alive(state, u) for u in order]

    return games.Game(
        name="skirmish",
        version=1,
        options={},
        num_players=2,
        num_actions=2,
        obs_shape=(1, 1, 3),
        state_size=2,
        max_length=3,
        params=np.zeros(1, dtype=np.int64),
        obs_perms=np.arange(3)[None],
        action_perms=np.arange(2)[None],
        initial_state_fn=lambda params: np.array([0b111, 0], dtype=np.int64),
        legal_mask_fn=legal_mask,
        apply_action_fn=apply_action,
        is_terminal_fn=is_terminal,
        outcome_fn=outcome,
        to_play_fn=lambda params, state: TEAMS[state[ACTOR]],
        encode_fn=lambda params, state, out: encode_agent(params, state, state[ACTOR], out),
        agent_to_move_fn=lambda params, state: int(state[ACTOR]),
        encode_agent_fn=encode_agent,
        transform_state_fn=lambda params, state, k: state.copy(),
        render_text_fn=lambda params, state: f"{state[ALIVE]:03b}",
        action_to_text_fn=lambda params, a: ("wait", "kill")[a],
        text_to_action_fn=lambda params, text: ("wait", "kill").index(text),
        agent_names=("unit_0", "unit_1", "unit_2"),
        agent_players=TEAMS,
        cells_fn=lambda params, state: np.array(
            [[(1 + TEAMS[u]) * ((state[ALIVE] >> u) & 1) for u in range(3)]], dtype=np.int8
        ),
    )


def test_units_are_agents_and_the_dead_wait_for_their_teams_result():
    env = GameEnv(_skirmish(), render_mode="rgb_array")
    script = [("unit_0", 0), ("unit_1", 0), ("unit_2", 1), ("unit_1", 0), ("unit_2", 0), ("unit_1", 1)]
    for turn, (unit, action) in enumerate(script):
        assert env.agent_selection == unit, f"turn {turn}: {unit} should act"
        if turn == 3:  # unit_2 killed unit_0: it is skipped but stays until the end
            assert "unit_0" in env.agents and not env.terminations["unit_0"]
            assert env.observe("unit_0")["observation"].tolist() == [[[0, 1, 1]]]
            assert render.caption(env.game, env.state()) == "unit_1 of team 0 to move"
        env.step(action)
    assert env.rewards == {"unit_0": 1.0, "unit_1": 1.0, "unit_2": -1.0}
    assert all(env.terminations.values()) and render.caption(env.game, env.state()) == "team 0 wins"
    assert env.render().shape[2] == 3
    done = [agent for agent in env.agent_iter() if env.step(None) is None]
    assert sorted(done) == ["unit_0", "unit_1", "unit_2"]


def test_units_pass_the_pettingzoo_api_test():
    api_test_without_findings(GameEnv(_skirmish()), num_cycles=10)
    seed_test(lambda: GameEnv(_skirmish()), num_cycles=10)
