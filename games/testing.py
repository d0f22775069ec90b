"""Conformance check for any game: ``check_game(game)`` raises AssertionError naming the broken
contract. The test suite runs it over every registered game, so a new game is tested for free.
"""

from __future__ import annotations

import numpy as np

from .core import KERNEL_NAMES, Game, GameError, check_kernel

__all__ = ["check_game", "random_states"]


def random_states(game: Game, num_games: int, seed: int = 0):
    """Yield every state (terminal ones included) of ``num_games`` uniformly random games."""
    rng = np.random.default_rng(seed)
    for _ in range(num_games):
        state = game.initial_state()
        yield state
        while not game.is_terminal(state):
            state = game.next_state(state, rng.choice(game.legal_actions(state)))
            yield state


def _check_static(game: Game) -> None:
    C, H, W = game.obs_shape
    A, K = game.num_actions, game.num_symmetries
    assert game.params.dtype == np.int64 and game.params.ndim == 1, "params must be int64[P]"
    assert game.num_players >= 1 and A >= 1 and game.state_size >= 1 and game.max_length >= 1
    assert game.obs_perms.shape == (K, H * W), f"obs_perms must be int64[K, H*W], got {game.obs_perms.shape}"
    assert game.action_perms.shape == (K, A), f"action_perms must be int64[K, A], got {game.action_perms.shape}"
    for name, perms in (("obs_perms", game.obs_perms), ("action_perms", game.action_perms)):
        assert perms.dtype == np.int64, f"{name} must be int64"
        assert (perms[0] == np.arange(perms.shape[1])).all(), f"{name}[0] must be the identity"
        for k in range(K):
            assert (np.sort(perms[k]) == np.arange(perms.shape[1])).all(), f"{name}[{k}] is no permutation"
    assert len(game.agent_names) == len(game.agent_players) >= game.num_players
    assert set(game.agent_players) == set(range(game.num_players)), "every player needs an agent"
    for name in KERNEL_NAMES:  # compiles each kernel for the exact signature search uses
        try:
            check_kernel(game.name, name, getattr(game, f"{name}_fn"))
        except GameError as e:
            raise AssertionError(str(e)) from None


def _check_state(game: Game, state: np.ndarray, symmetries: bool) -> None:
    A = game.num_actions
    assert state.dtype == np.int64 and state.shape == (game.state_size,), "state must be int64[S]"
    before = state.copy()
    mask = game.legal_mask(state)
    terminal = game.is_terminal(state)
    assert (state == before).all(), "legal_mask/is_terminal must not modify the state"
    assert mask.shape == (A,)
    assert terminal != mask.any(), "contract: is_terminal(s) xor legal_mask(s).any()"
    for agent in range(len(game.agent_names)):
        view = game.encode_agent(state, agent)
        assert view.dtype == np.float32 and view.shape == game.obs_shape and np.isfinite(view).all()
    if terminal:
        returns = game.returns(state)
        assert np.all(np.abs(returns) <= 1.0), f"outcome out of [-1, 1]: {returns}"
        if game.num_players == 2:
            assert returns[0] == -returns[1], f"two-player outcomes must be zero-sum: {returns}"
        return
    player = game.to_play(state)
    assert 0 <= player < game.num_players, f"to_play out of range: {player}"
    agent = game.agent_to_move(state)
    assert game.agent_players[agent] == player, "agent_to_move must belong to the player to move"
    obs = game.encode(state)
    assert obs.dtype == np.float32 and obs.shape == game.obs_shape and np.isfinite(obs).all()
    again = np.full(game.obs_shape, 7.0, dtype=np.float32)  # encode must write every entry
    game.encode_fn(game.params, state, again)
    assert (again == obs).all(), "encode must write every entry of out, deterministically"
    again[:] = 7.0
    game.encode_agent_fn(game.params, state, np.int64(agent), again)
    assert (again == obs).all(), "encode(s) must equal encode_agent(s, agent_to_move(s))"
    for a in np.flatnonzero(mask):  # apply is deterministic and touches only its state
        s1, s2 = state.copy(), state.copy()
        game.apply_action_fn(game.params, s1, np.int64(a))
        game.apply_action_fn(game.params, s2, np.int64(a))
        assert (s1 == s2).all(), f"apply_action({a}) is not deterministic"
        assert not (s1 == state).all(), f"apply_action({a}) left the state unchanged"
        text = game.action_to_text(a)
        assert game.parse_action(text) == a, f"notation does not round-trip: {a} -> {text!r}"
    assert isinstance(game.render_text(state), str)
    if symmetries:
        for k in range(game.num_symmetries):
            t = game.transform_state(state, k)
            assert (game.encode(t) == game.transform_obs(obs, k)).all(), f"symmetry {k}: encoding"
            assert (game.legal_mask(t) == game.transform_policy(mask, k)).all(), f"symmetry {k}: mask"
            assert game.to_play(t) == player, f"symmetry {k} changed the player to move"


def check_game(game: Game, num_games: int = 20, seed: int = 0, symmetries: bool = True) -> int:
    """Check every contract of the interface on ``num_games`` random games; return states seen."""
    _check_static(game)
    try:
        game.parse_action("this is not a move")
    except GameError:
        pass
    else:
        raise AssertionError("parse_action must raise GameError on nonsense")
    seen = 0
    lengths = []
    for state in random_states(game, num_games, seed):
        _check_state(game, state, symmetries)
        seen += 1
        if game.is_terminal(state):
            lengths.append(seen)
    assert lengths, "no game ended"
    longest = max(np.diff([0, *lengths]))  # states per game = actions + 1
    assert longest - 1 <= game.max_length, f"a game lasted {longest - 1} > max_length"
    return seen
