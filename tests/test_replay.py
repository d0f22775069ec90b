"""Replay buffer: ring order, symmetry augmentation against the explicit transform, validation,
and its .npz file (round trip, atomic replacement, truncated/corrupt/pickled files refused)."""

from __future__ import annotations

import numpy as np
import pytest

import games
from selfplay.training.replay import ReplayBuffer, ReplayError

OBS_SHAPE, A = (2, 3, 3), 9  # a 3x3 board whose actions are its cells


def rows(ids, obs_shape=OBS_SHAPE, num_actions=A):
    """Rows that identify themselves: obs planes and policy carry ``id``, value is ``id / 1000``."""
    ids = np.asarray(ids)
    obs = np.broadcast_to(ids[:, None, None, None], (len(ids), *obs_shape)).astype(np.float32)
    policy = np.zeros((len(ids), num_actions), dtype=np.float32)
    policy[np.arange(len(ids)), ids % num_actions] = 1.0
    return obs, policy, (ids / 1000).astype(np.float32)


def random_rows(n, rng, obs_shape=OBS_SHAPE, num_actions=A):
    """Rows whose every symmetry image is distinct (continuous random planes and policies)."""
    obs = rng.random((n, *obs_shape), dtype=np.float32)
    policy = rng.random((n, num_actions)).astype(np.float32)
    policy /= policy.sum(axis=1, keepdims=True)
    value = rng.uniform(-1, 1, n).astype(np.float32)
    return obs, policy, value


def chronological_ids(buffer):
    """Row ids (values x 1000), oldest first."""
    order = buffer.oldest_first()
    return np.rint(buffer.value[order] * 1000).astype(int).tolist()


def test_ring_overwrites_the_oldest_rows_and_keeps_generations():
    buffer = ReplayBuffer(5, OBS_SHAPE, A)
    buffer.add(*rows([0, 1, 2]), generation=7)
    buffer.add(*rows([3, 4, 5, 6]), generation=8)
    assert len(buffer) == 5 and buffer.total_added == 7 and buffer.cursor == 2
    assert chronological_ids(buffer) == [2, 3, 4, 5, 6]
    order = buffer.oldest_first()
    assert buffer.generation[order].tolist() == [7, 8, 8, 8, 8]
    # Each row's planes and policy still belong to its value.
    ids = np.rint(buffer.value * 1000).astype(int)
    assert (buffer.obs[:, 0, 0, 0] == ids).all()
    assert (buffer.policy.argmax(axis=1) == ids % A).all()


def test_a_batch_larger_than_the_buffer_keeps_its_newest_rows():
    buffer = ReplayBuffer(4, OBS_SHAPE, A)
    buffer.add(*rows([0]))
    buffer.add(*rows(range(1, 11)))
    assert chronological_ids(buffer) == [7, 8, 9, 10]
    assert buffer.total_added == 11


def matching_symmetries(sample_obs, sample_policy, row_obs, row_policy, obs_perms, action_perms):
    """Symmetries k under which the stored row becomes the sampled one, planes and policy alike."""
    C = row_obs.shape[0]
    return [
        k
        for k in range(len(obs_perms))
        if np.array_equal(row_obs.reshape(C, -1)[:, obs_perms[k]].reshape(row_obs.shape), sample_obs)
        and np.array_equal(row_policy[action_perms[k]], sample_policy)
    ]


@pytest.mark.parametrize(
    "obs_shape, num_actions, obs_perms, action_perms",
    [
        # 3x3, actions are cells: the 8 symmetries of the square act on both.
        ((2, 3, 3), 9, games.dihedral_perms(3, 3), games.dihedral_perms(3, 3)),
        # 2x3 with column actions: identity and the left-right mirror.
        ((2, 2, 3), 3, games.dihedral_perms(2, 3)[:2], np.array([[0, 1, 2], [2, 1, 0]])),
    ],
    ids=["square", "columns"],
)
def test_augmented_samples_are_the_explicit_transform_of_a_stored_row(obs_shape, num_actions, obs_perms, action_perms):
    rng = np.random.default_rng(1)
    buffer = ReplayBuffer(20, obs_shape, num_actions, obs_perms, action_perms)
    stored = random_rows(12, rng, obs_shape, num_actions)
    buffer.add(*stored)
    obs, policy, value = buffer.sample(400, np.random.default_rng(2))
    assert obs.shape == (400, *obs_shape) and policy.shape == (400, num_actions) and value.shape == (400,)
    assert obs.dtype == policy.dtype == value.dtype == np.float32
    seen = set()
    for o, p, v in zip(obs, policy, value):
        (row,) = np.flatnonzero(stored[2] == v)  # values are distinct: they name the row
        ks = matching_symmetries(o, p, stored[0][row], stored[1][row], obs_perms, action_perms)
        assert len(ks) == 1, f"sample of row {row} is not one symmetry of it (matches {ks})"
        seen.add(ks[0])
    assert seen == set(range(len(obs_perms)))  # every symmetry gets drawn


def test_samples_without_augmentation_are_stored_rows():
    rng = np.random.default_rng(3)
    perms = games.dihedral_perms(3, 3)
    buffer = ReplayBuffer(20, OBS_SHAPE, A, perms, perms)
    stored = random_rows(10, rng)
    buffer.add(*stored)
    obs, policy, value = buffer.sample(50, rng, augment=False)
    for o, p, v in zip(obs, policy, value):
        (row,) = np.flatnonzero(stored[2] == v)
        assert np.array_equal(o, stored[0][row]) and np.array_equal(p, stored[1][row])


def test_for_game_follows_the_games_own_transforms():
    game = games.make("tictactoe")
    buffer = ReplayBuffer.for_game(game, 8)
    assert buffer.game == game.version_tag and buffer.num_symmetries == game.num_symmetries
    state = game.play([0, 4, 5])  # an asymmetric position
    mask = game.legal_mask(state)
    buffer.add(game.encode(state)[None], (mask / mask.sum())[None], np.array([0.5]))
    obs, policy, _ = buffer.sample(64, np.random.default_rng(4))
    images = [
        (game.encode(game.transform_state(state, k)), game.legal_mask(game.transform_state(state, k)))
        for k in range(game.num_symmetries)
    ]
    for o, p in zip(obs, policy):
        # The sampled planes are those of a transformed position, and the policy's support is
        # exactly that position's legal moves.
        assert any(np.array_equal(o, enc) and np.array_equal(p > 0, legal) for enc, legal in images)


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (lambda o, p, v: (o[:, :1], p, v), r"obs must be \[n, 2, 3, 3\]"),
        (lambda o, p, v: (o, p[:, :8], v), r"policy must be \[3, 9\]"),
        (lambda o, p, v: (o, p, v[:2]), r"value must be \[3\]"),
        (lambda o, p, v: (o, p * 2, v), "probability distribution"),
        (lambda o, p, v: (o, p, v * 2000), r"value targets must lie in \[-1, 1\]"),
        (lambda o, p, v: (o * np.nan, p, v), "finite"),
    ],
)
def test_bad_rows_are_refused_and_nothing_is_written(make_bad, message):
    buffer = ReplayBuffer(10, OBS_SHAPE, A)
    with pytest.raises(ReplayError, match=message):
        buffer.add(*make_bad(*rows([1, 2, 3])))
    assert len(buffer) == 0 and buffer.total_added == 0


def test_bad_construction_is_refused():
    perms = games.dihedral_perms(3, 3)
    with pytest.raises(ReplayError, match="capacity"):
        ReplayBuffer(0, OBS_SHAPE, A)
    with pytest.raises(ReplayError, match="both obs_perms and action_perms"):
        ReplayBuffer(4, OBS_SHAPE, A, perms, None)
    with pytest.raises(ReplayError, match="permutation"):
        ReplayBuffer(4, OBS_SHAPE, A, np.zeros((8, 9), dtype=np.int64), perms)
    with pytest.raises(ReplayError, match=r"action_perms must be \[K, 9\]"):
        ReplayBuffer(4, OBS_SHAPE, A, perms, perms[:, :8])
    with pytest.raises(ReplayError, match="8 symmetries but action_perms 2"):
        ReplayBuffer(4, OBS_SHAPE, A, perms, perms[:2])
    with pytest.raises(ReplayError, match="empty"):
        ReplayBuffer(4, OBS_SHAPE, A).sample(1, np.random.default_rng())


def full_buffer():
    perms = games.dihedral_perms(3, 3)
    buffer = ReplayBuffer(6, OBS_SHAPE, A, perms, perms, game="tictactoe_v1")
    buffer.add(*rows(range(4)), generation=1)
    buffer.add(*rows(range(4, 9)), generation=2)  # wrapped: cursor in the middle
    return buffer


def test_save_and_load_round_trip_then_both_continue_alike(tmp_path):
    buffer = full_buffer()
    buffer.save(tmp_path / "replay.npz")
    loaded = ReplayBuffer.load(tmp_path / "replay.npz", expect_game="tictactoe_v1")
    assert (loaded.capacity, len(loaded), loaded.total_added, loaded.game) == (6, 6, 9, "tictactoe_v1")
    assert np.array_equal(loaded.obs_perms, buffer.obs_perms)
    assert np.array_equal(loaded.action_perms, buffer.action_perms)
    for b in (buffer, loaded):
        b.add(*rows([9, 10]), generation=3)
    assert chronological_ids(loaded) == chronological_ids(buffer) == [5, 6, 7, 8, 9, 10]
    for name in ("obs", "policy", "value", "generation"):
        ours, theirs = getattr(loaded, name), getattr(buffer, name)
        assert np.array_equal(ours[loaded.oldest_first()], theirs[buffer.oldest_first()])


def test_load_into_a_smaller_capacity_keeps_the_newest_rows(tmp_path):
    full_buffer().save(tmp_path / "replay.npz")
    loaded = ReplayBuffer.load(tmp_path / "replay.npz", capacity=4)
    assert chronological_ids(loaded) == [5, 6, 7, 8]


def test_the_file_names_its_checkpoint_and_rewinds_to_an_earlier_point(tmp_path):
    buffer = full_buffer()  # ids 3..8 of 9 added, in a ring of 6
    buffer.save(tmp_path / "replay.npz", step=12)
    loaded = ReplayBuffer.load(tmp_path / "replay.npz")
    assert loaded.saved_step == 12 and loaded.total_added == 9
    assert loaded.rewind(10) == 0 and chronological_ids(loaded) == [3, 4, 5, 6, 7, 8]  # not ahead: unchanged
    assert loaded.rewind(7) == 2 and chronological_ids(loaded) == [3, 4, 5, 6] and loaded.total_added == 7
    loaded.add(*rows([7, 8, 9]))
    assert chronological_ids(loaded) == [4, 5, 6, 7, 8, 9] and loaded.total_added == 10
    # a file from before the step was recorded
    arrays = dict(np.load(tmp_path / "replay.npz"))
    del arrays["step"]
    np.savez(tmp_path / "old.npz", **arrays)
    assert ReplayBuffer.load(tmp_path / "old.npz").saved_step == -1


def test_a_failed_save_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch):
    path = tmp_path / "replay.npz"
    full_buffer().save(path)
    before = path.read_bytes()

    def savez_then_crash(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", savez_then_crash)
    with pytest.raises(OSError, match="disk full"):
        ReplayBuffer(3, OBS_SHAPE, A).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["replay.npz"]


@pytest.mark.parametrize("damage", ["truncate", "flip a data byte"])
def test_a_damaged_file_is_refused(tmp_path, damage):
    path = tmp_path / "replay.npz"
    full_buffer().save(path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[data.index(b"obs.npy") + 400] ^= 0xFF  # inside the obs array, past its headers
    path.write_bytes(bytes(data))
    with pytest.raises(ReplayError, match="replay.npz: not a readable replay file"):
        ReplayBuffer.load(path)


def test_pickled_objects_and_other_games_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, obs=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ReplayError, match="evil.npz: not a readable replay file"):
        ReplayBuffer.load(path)
    full_buffer().save(tmp_path / "replay.npz")
    with pytest.raises(ReplayError, match="replay data is for tictactoe_v1, expected connect4_v1"):
        ReplayBuffer.load(tmp_path / "replay.npz", expect_game="connect4_v1")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ReplayError, match="not a replay file .missing format_version"):
        ReplayBuffer.load(tmp_path / "other.npz")
