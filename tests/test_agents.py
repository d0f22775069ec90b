"""Agents: legal moves in batches, moves independent of the batch they come in, the tactics each
baseline promises, the network agent's raw policy and search, and agent specs."""

from __future__ import annotations

import numpy as np
import pytest

import games
from games.rng import make_rng
from games.playout import random_legal_action
from search import SearchConfig, UniformEvaluator
from selfplay.evaluation.agents import (
    Agent,
    AgentError,
    GreedyAgent,
    MCTSAgent,
    NetworkAgent,
    RandomAgent,
    load_agent,
    network_search_config,
)


@pytest.fixture(scope="module")
def c4():
    return games.make("connect4")


def random_positions(game, count, seed=0, max_plies=30):
    """int64[count, S]: non-terminal positions reached by random play of random length."""
    rng = make_rng(seed)
    draws = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        state = game.initial_state()
        for _ in range(int(draws.integers(0, max_plies))):
            nxt = game.next_state(state, random_legal_action(game.legal_mask(state), rng))
            if game.is_terminal(nxt):
                break
            state = nxt
        out.append(state)
    return np.stack(out)


def baseline_agents(game):
    return [RandomAgent(game), GreedyAgent(game), MCTSAgent(game, 16), NetworkAgent(game, UniformEvaluator(), 0),
            NetworkAgent(game, UniformEvaluator(), 8)]


@pytest.mark.parametrize("name", ["tictactoe", "connect4", "arena"])
def test_every_agent_plays_legal_moves_and_is_an_agent(name):
    game = games.make(name)
    states = random_positions(game, 12, seed=1)
    for agent in baseline_agents(game):
        assert isinstance(agent, Agent)
        actions = agent.act(states, np.zeros(12, np.int64), 5)
        assert actions.dtype == np.int64 and actions.shape == (12,)
        for state, action in zip(states, actions):
            assert game.legal_mask(state)[action], agent.name


@pytest.mark.parametrize("name", ["connect4", "arena"])
def test_a_move_depends_on_its_own_seed_only_not_on_the_batch(name):
    game = games.make(name)
    states = random_positions(game, 10, seed=2)
    seeds = np.arange(100, 110, dtype=np.int64) * 7919
    for agent in [RandomAgent(game), GreedyAgent(game), MCTSAgent(game, 32)]:
        together = agent.act(states, np.zeros(10, np.int64), seeds)
        alone = [agent.act(states[g : g + 1], np.zeros(1, np.int64), seeds[g : g + 1])[0] for g in range(10)]
        assert together.tolist() == alone, agent.name
        reversed_ = agent.act(states[::-1].copy(), np.zeros(10, np.int64), seeds[::-1].copy())
        assert reversed_[::-1].tolist() == together.tolist()
        # an int seed means seed + g for position g
        assert agent.act(states, np.zeros(10, np.int64), 40).tolist() == agent.act(
            states, np.zeros(10, np.int64), np.arange(40, 50)).tolist()


def test_random_agent_spreads_over_the_legal_moves(c4):
    states = np.stack([c4.initial_state()] * 700)
    counts = np.bincount(RandomAgent(c4).act(states, np.zeros(700, np.int64), 0), minlength=7)
    assert counts.min() > 60  # 100 expected per column


def test_greedy_and_mcts_take_a_win_and_block_a_loss(c4):
    # Columns 0-2 hold two red discs each: red (to move) wins in column 0..3 region.
    win = c4.play([0, 6, 1, 6, 2, 5])  # red has 0,1,2 on the bottom row: 3 wins now
    block = c4.play([0, 6, 1, 6, 2])  # black to move must block column 3
    for agent in [GreedyAgent(c4), MCTSAgent(c4, 400)]:
        seeds = np.arange(8)
        assert (agent.act(np.stack([win] * 8), np.full(8, 6), seeds) == 3).all(), agent.name
        assert (agent.act(np.stack([block] * 8), np.full(8, 5), seeds) == 3).all(), agent.name


def test_network_agent_raw_policy_is_the_best_legal_logit(c4):
    full = c4.play([3] * 6)  # column 3 is full

    def evaluator(obs, mask):
        logits = np.tile(np.array([0, 1, 2, 9, 5, 4, 3], np.float32), (len(mask), 1))
        return logits, np.zeros(len(mask), np.float32)

    agent = NetworkAgent(c4, evaluator, visits=0)
    actions = agent.act(np.stack([c4.initial_state(), full]), np.zeros(2, np.int64), 0)
    assert actions.tolist() == [3, 4]  # 3 where legal, else the next best legal logit


def test_network_agent_searches_all_positions_in_one_batch(c4):
    seen = []

    def evaluator(obs, mask):
        seen.append(len(obs))
        return np.zeros(mask.shape, np.float32), np.zeros(len(mask), np.float32)

    states = random_positions(c4, 9, seed=3)
    agent = NetworkAgent(c4, evaluator, visits=10)
    actions = agent.act(states, np.zeros(9, np.int64), 0)
    assert max(seen) == 9 and len(seen) <= 11  # one evaluator call per simulation step
    assert all(c4.legal_mask(s)[a] for s, a in zip(states, actions))


def test_network_agent_with_search_wins_a_won_position_a_raw_prior_misses(c4):
    win = c4.play([0, 6, 1, 6, 2, 5])  # red wins at once in column 3

    def misleading(obs, mask):  # prefers column 6, values everything as even
        logits = np.zeros(mask.shape, np.float32)
        logits[:, 6] = 3.0
        return logits, np.zeros(len(mask), np.float32)

    assert NetworkAgent(c4, misleading, 0).act(win[None], np.zeros(1, np.int64), 0)[0] == 6
    for config in [None, network_search_config(200, "gumbel")]:
        agent = NetworkAgent(c4, misleading, 200, config=config)
        assert agent.act(win[None], np.zeros(1, np.int64), 0)[0] == 3


def test_searching_agents_stop_thinking_when_asked(c4):
    """``think(stop=...)``: a search far too long to finish ends at the first poll that says stop,
    with a legal move (what a window does when its player leaves)."""
    state = c4.initial_state()[None]
    for agent in (MCTSAgent(c4, 200_000), NetworkAgent(c4, UniformEvaluator().__call__, visits=100_000)):
        polls: list[int] = []
        actions, values = agent.think(state, np.zeros(1, np.int64), 0, stop=lambda: len(polls.append(1) or polls) >= 2)
        assert len(polls) == 2 and c4.legal_mask(state[0])[actions[0]] and -1 <= values[0] <= 1, agent.name


def test_agents_refuse_terminal_positions_and_bad_input(c4):
    over = c4.play([0, 1, 0, 1, 0, 1, 0])
    for agent in [RandomAgent(c4), MCTSAgent(c4, 4), NetworkAgent(c4, UniformEvaluator(), 0)]:
        with pytest.raises(AgentError, match="terminal"):
            agent.act(np.stack([c4.initial_state(), over]), np.zeros(2, np.int64), 0)
    with pytest.raises(AgentError, match="int64"):
        RandomAgent(c4).act(np.zeros((2, c4.state_size + 1), np.int64), np.zeros(2, np.int64), 0)
    with pytest.raises(AgentError, match="rng_seed"):
        RandomAgent(c4).act(np.stack([c4.initial_state()] * 2), np.zeros(2, np.int64), [1, 2, 3])
    with pytest.raises(AgentError, match="rollouts"):
        MCTSAgent(c4, 0)
    with pytest.raises(AgentError, match="visits"):
        NetworkAgent(c4, UniformEvaluator(), -1)


def test_load_agent_parses_baselines_and_refuses_bad_specs(c4, tmp_path):
    assert isinstance(load_agent("random", c4), RandomAgent)
    assert isinstance(load_agent("greedy", c4), GreedyAgent)
    mcts = load_agent("mcts:50", c4)
    assert isinstance(mcts, MCTSAgent) and mcts.rollouts == 50 and mcts.name == "mcts:50"
    expected = (
        r"^unknown agent 'foo': expected random, greedy, mcts:N, a game's script \(arena: nearest, focus, "
        r"kite, guard; held out of leagues: hunter, phalanx\), pretrained \(the brain shipped for the game\), a checkpoint, an exported brain directory or an "
        r"\.onnx file$"
    )
    with pytest.raises(ValueError, match=expected):
        load_agent("foo", c4)
    for bad in ["mcts:0", "mcts:", "mcts:x", "mcts"]:
        with pytest.raises(ValueError, match="mcts:N"):
            load_agent(bad, c4)
    with pytest.raises(ValueError, match="no such ONNX file"):
        load_agent(str(tmp_path / "missing.onnx"), c4)
    with pytest.raises(ValueError, match="no checkpoint"):
        load_agent(str(tmp_path), c4)  # an empty directory


def test_load_agent_plays_checkpoints_and_onnx_files_of_the_game(c4, tmp_path):
    from selfplay.model.checkpoint import save_checkpoint
    from selfplay.model.inference import onnx_bytes
    from selfplay.model.network import NetConfig, build_network

    model = build_network(NetConfig(kind="mlp", layers=1, hidden=8), c4.obs_shape, c4.num_actions)
    save_checkpoint(tmp_path / "run", 5, model, game=c4)
    (tmp_path / "net.onnx").write_bytes(onnx_bytes(model, c4.obs_shape))
    states = random_positions(c4, 6, seed=4)
    raw = {}
    for spec in [str(tmp_path / "run"), str(tmp_path / "run" / "ckpt-000005.json"), str(tmp_path / "net.onnx")]:
        agent = load_agent(spec, c4, visits=0)
        assert isinstance(agent, NetworkAgent) and agent.visits == 0
        raw[spec] = agent.act(states, np.zeros(6, np.int64), 0).tolist()
        searched = load_agent(spec, c4, visits=16).act(states, np.zeros(6, np.int64), 0)
        assert all(c4.legal_mask(s)[a] for s, a in zip(states, searched))
    assert len({tuple(v) for v in raw.values()}) == 1  # the same network, whichever file
    assert load_agent(str(tmp_path / "run"), c4, visits=3).name == "run@3"
    assert load_agent(str(tmp_path / "run" / "ckpt-000005.json"), c4, visits=0).name == "run/ckpt-000005@0"
    assert load_agent(str(tmp_path / "net.onnx"), c4).name == "net@200"
    other = games.make("connect4", width=6, height=5)
    with pytest.raises(ValueError, match="connect4"):
        load_agent(str(tmp_path / "run"), other)
    with pytest.raises(ValueError, match="obs"):
        load_agent(str(tmp_path / "net.onnx"), other)


def test_mcts_agent_config_sets_simulations_from_rollouts(c4):
    agent = MCTSAgent(c4, 30, config=SearchConfig(num_simulations=5, solver=True))
    assert agent._config.num_simulations == 30 and agent._config.solver


def test_a_runs_agents_search_as_it_was_trained():
    from selfplay.evaluation.agents import trained_search_config

    played = trained_search_config(200, SearchConfig(root_policy="gumbel", num_simulations=32))
    assert (played.num_simulations, played.root_policy, played.gumbel_scale, played.solver) == (200, "gumbel", 0.0, False)
    assert trained_search_config(50, SearchConfig(solver=True)).solver


def test_a_checkpoint_plays_with_its_runs_search_unless_told_otherwise(c4, tmp_path):
    """``selfplay arena CHECKPOINT`` plays the network as its run's own evaluations did: the root
    policy, solver and Gumbel's Q scaling saved in the checkpoint (a run's config, or a league
    snapshot's), PUCT without."""
    from selfplay.evaluation.agents import played_search
    from selfplay.model.checkpoint import save_checkpoint
    from selfplay.model.network import NetConfig, build_network

    model = build_network(NetConfig(kind="mlp", layers=1, hidden=8), c4.obs_shape, c4.num_actions)
    run = {"config": {"search": {"root_policy": "gumbel", "solver": True, "gumbel_rescale": False, "gumbel_c_scale": 1.0, "num_simulations": 32}}}
    save_checkpoint(tmp_path / "run", 1, model, meta=run, game=c4)
    save_checkpoint(tmp_path / "snapshots", 1, model, meta={"snapshot": "main0/g1", "search": {"root_policy": "gumbel", "solver": False}}, game=c4)
    save_checkpoint(tmp_path / "bare", 1, model, game=c4)
    assert played_search(tmp_path / "run") == {"root_policy": "gumbel", "solver": True, "gumbel_rescale": False, "gumbel_c_scale": 1.0}
    assert played_search(tmp_path / "snapshots" / "ckpt-000001.safetensors") == {"root_policy": "gumbel", "solver": False}
    assert played_search(tmp_path / "bare") == {} and played_search(tmp_path / "missing") == {}
    played = load_agent(str(tmp_path / "run"), c4, visits=50)._config
    assert (played.root_policy, played.gumbel_scale, played.solver, played.num_simulations) == ("gumbel", 0.0, True, 50)
    assert not played.gumbel_rescale and played.gumbel_c_scale == 1.0 and load_agent(str(tmp_path / "snapshots"), c4, visits=50)._config.gumbel_rescale
    assert load_agent(str(tmp_path / "bare"), c4, visits=50)._config.root_policy == "puct"
    assert load_agent(str(tmp_path / "run"), c4, visits=50, search={"root_policy": "puct"})._config.root_policy == "puct"
