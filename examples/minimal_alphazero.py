"""AlphaZero on tic-tac-toe in one file: self-play, replay, learning, and a match against random.

Read it top to bottom. It uses the public pieces only (docs/games.md, docs/search.md); the real
trainer (``selfplay train``, docs/training.md) adds parallel actors, schedules, checkpoints and
ratings to this same loop. Every value here is from one stated point of view, as in the library:
``encode``, the network's value and the search's values are from the player to move.

    repeat: self-play B games at once -> replay buffer -> learning steps;  then: a match vs random

    python examples/minimal_alphazero.py --seed 0 --iterations 40     # under half a minute on one CPU core
"""

import argparse
from dataclasses import dataclass

import numpy as np
import torch

import games
import search
from selfplay.model.network import NetConfig, build_network, policy_value_loss
from selfplay.training.replay import ReplayBuffer


@dataclass(frozen=True)
class Args:
    seed: int = 0  # seeds the network, the searches, replay sampling and the random opponent
    iterations: int = 40  # rounds of (self-play, learning)
    games_at_once: int = 64  # B: self-play games searched together, one network call per step
    simulations: int = 16  # search simulations per move (Gumbel AlphaZero works with few)
    learning_steps: int = 40  # optimizer steps per iteration (about 8 samples per new position)
    batch_size: int = 128
    lr: float = 3e-3
    match_games: int = 100  # against random, half with each colour


def self_play(game, net, config: search.SearchConfig, batch: int, seed: int):
    """Play ``batch`` games of the network against itself, all at once. Returns the training
    rows: ``obs float32[N, C, H, W]``, ``policy float32[N, A]`` (the search's target) and
    ``value float32[N]`` (the final score for the player to move at that position)."""
    states = np.stack([game.initial_state()] * batch)  # int64[B, S]: each game is a plain array
    tree = search.Search(game, states, config, seed=seed)  # B trees, kept across moves
    evaluator = search.TorchEvaluator(net)  # (obs[N, C, H, W], mask[N, A]) -> (logits[N, A], value[N])
    rows = []  # (game index, player to move, obs[C, H, W], policy[A]) for every move played
    move = np.zeros(batch, np.int64)  # int64[B]: moves played so far in each game (for temperature)
    while not tree.root_terminal.all():
        playing = np.flatnonzero(~tree.root_terminal)  # finished games are skipped by the search
        roots = tree.root_states  # int64[B, S]
        result = tree.run(evaluator, move_numbers=move)  # one evaluator call per step for all B
        for b in playing:  # result.policy[b]: float32[A], the search's improved policy (the target)
            rows.append((b, game.to_play(roots[b]), game.encode(roots[b]), result.policy[b]))
        tree.advance(result.actions[playing], games=playing)  # keeps the chosen subtrees
        move[playing] += 1
    # returns[b, p]: game b's final score for player p, in [-1, 1] (win 1, draw 0, loss -1).
    returns = np.stack([game.returns(s) for s in tree.root_states])  # float64[B, 2]
    obs = np.stack([r[2] for r in rows])
    policy = np.stack([r[3] for r in rows])
    value = np.array([returns[b, p] for b, p, _, _ in rows], np.float32)  # the mover's point of view
    return obs, policy, value


def learn(net, optimizer, buffer: ReplayBuffer, args: Args, rng: np.random.Generator) -> float:
    """``args.learning_steps`` steps of AlphaZero's loss: policy cross-entropy against the search's
    target plus the squared error of the value against the final score. Returns the last loss."""
    net.train()
    for _ in range(args.learning_steps):
        # Each row is seen through a random board symmetry (8 for tic-tac-toe).
        obs, policy, value = buffer.sample(args.batch_size, rng)  # [n, C, H, W], [n, A], [n]
        out = net.forward_heads(torch.from_numpy(obs))  # policy logits [n, A], value [n]
        loss, _ = policy_value_loss(out, torch.from_numpy(policy), torch.from_numpy(value))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


def match_against_random(game, net, config: search.SearchConfig, num_games: int, seed: int):
    """The network with its search (no noise, the best move) against a uniformly random player,
    ``num_games`` at once; the agent is X (moves first) in even games. Returns the agent's
    ``(wins, draws, losses)``."""
    rng = np.random.default_rng(seed)
    evaluator = search.TorchEvaluator(net)
    states = np.stack([game.initial_state()] * num_games)  # int64[G, S]
    agent = np.arange(num_games) % 2  # int64[G]: the agent's player index in each game
    while True:
        live = np.array([not game.is_terminal(s) for s in states])
        if not live.any():
            break
        mover = np.array([game.to_play(s) if on else -1 for s, on in zip(states, live)])
        agent_turn = np.flatnonzero(live & (mover == agent))
        actions = np.full(num_games, -1)
        if agent_turn.size:  # one batched search over every game where the agent is to move
            actions[agent_turn] = search.run(game, states[agent_turn], evaluator, config, seed=seed).actions
        for g in np.flatnonzero(live & (mover != agent)):
            actions[g] = rng.choice(game.legal_actions(states[g]))
        for g in np.flatnonzero(live):
            states[g] = game.next_state(states[g], actions[g])
    scores = np.array([game.returns(s)[p] for s, p in zip(states, agent)])  # the agent's point of view
    return int((scores > 0).sum()), int((scores == 0).sum()), int((scores < 0).sum())


def main(args: Args) -> tuple[int, int, int]:
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # a tiny network: one thread is fastest, and results repeat exactly
    rng = np.random.default_rng(args.seed)
    game = games.make("tictactoe")  # A = 9 actions, observations float32[2, 3, 3]

    # The network: observations [N, 2, 3, 3] -> (policy logits [N, 9], value [N] in [-1, 1]).
    net = build_network(NetConfig(kind="mlp", layers=2, hidden=128), game.obs_shape, game.num_actions)
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)

    # Self-play search: Gumbel AlphaZero (a policy target that improves on the prior even with 16
    # simulations) with MCTS-Solver (a proven win is played at once). The first 4 moves sample
    # the improved policy (temperature 1), so games differ; later moves play the search's choice.
    train_search = search.SearchConfig(
        num_simulations=args.simulations, root_policy="gumbel", gumbel_considered=9, solver=True,
        temperature=1.0, temperature_moves=4,
    )
    # In the match: the same search with no Gumbel noise and no temperature (its best move).
    match_search = search.SearchConfig(
        num_simulations=args.simulations, root_policy="gumbel", gumbel_considered=9, solver=True, gumbel_scale=0.0
    )
    # The replay buffer keeps the newest positions; it knows the board's 8 symmetries.
    buffer = ReplayBuffer.for_game(game, capacity=20_000)

    for iteration in range(args.iterations):
        net.eval()
        first_seed = (args.seed * args.iterations + iteration) * args.games_at_once  # game b gets first_seed + b
        obs, policy, value = self_play(game, net, train_search, args.games_at_once, seed=first_seed)
        buffer.add(obs, policy, value, generation=iteration)
        loss = learn(net, optimizer, buffer, args, rng)
        print(f"iteration {iteration + 1:3d}: {len(value):4d} new positions, {len(buffer):5d} in replay, "
              f"loss {loss:.3f}")

    net.eval()
    wins, draws, losses = match_against_random(game, net, match_search, args.match_games, seed=args.seed)
    score = (wins + 0.5 * draws) / args.match_games
    print(f"against random, {args.match_games} games: {wins} won, {draws} drawn, {losses} lost (score {score:.0%})")
    return wins, draws, losses


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=Args.seed, help="seed for everything random")
    parser.add_argument("--iterations", type=int, default=Args.iterations, help="rounds of self-play and learning")
    parser.add_argument("--match-games", type=int, default=Args.match_games, help="games against random at the end")
    main(Args(**vars(parser.parse_args())))
