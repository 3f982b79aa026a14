"""Batches from token files: windows match the file, sampling is reproducible and world-size free,
the validation pass covers every token once, and bad files fail with a rebuild hint."""

import numpy as np
import pytest
import torch

from scratchlm.data import loader
from scratchlm.data.loader import (
    TokenSampler,
    eval_batches,
    get_batch,
    load_dataset,
    open_tokens,
)


@pytest.fixture
def tokens(tmp_path):
    data = (np.arange(1000) * 7 % 251).astype(np.uint16)
    path = tmp_path / "t.npy"
    np.save(path, data)
    return path, data


def test_get_batch_windows_match_the_file(tokens) -> None:
    path, data = tokens
    mm = open_tokens(path)
    x, y = get_batch(mm, 8, 16, "cpu", torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 16) and x.dtype == y.dtype == torch.int64
    for row_x, row_y in zip(x, y, strict=True):
        # find where this window starts in the file and compare with a plain slice
        start = next(i for i in range(len(data) - 16) if np.array_equal(data[i : i + 16], row_x))
        assert np.array_equal(row_y.numpy(), data[start + 1 : start + 17])


def test_get_batch_is_reproducible_with_a_generator(tokens) -> None:
    mm = open_tokens(tokens[0])
    a = get_batch(mm, 4, 8, "cpu", torch.Generator().manual_seed(3))
    b = get_batch(mm, 4, 8, "cpu", torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_load_dataset_iterates_batches(tokens) -> None:
    batches = load_dataset(tokens[0], batch_size=2, context_length=5, device="cpu")
    x, y = next(batches)
    assert x.shape == (2, 5) and torch.equal(x[:, 1:], y[:, :-1])


def test_sampler_global_batch_does_not_depend_on_world_size(tokens) -> None:
    mm = open_tokens(tokens[0])
    whole = TokenSampler(mm, 6, 10, "cpu", seed=1)
    halves = [TokenSampler(mm, 3, 10, "cpu", seed=1, rank=r, world_size=2) for r in range(2)]
    for _ in range(3):
        x, _ = whole.next_batch()
        parts = [s.next_batch()[0] for s in halves]
        assert torch.equal(x, torch.cat(parts))


def test_sampler_state_round_trip_repeats_batches(tokens) -> None:
    mm = open_tokens(tokens[0])
    a = TokenSampler(mm, 4, 10, "cpu", seed=5)
    a.next_batch()
    state = a.state_dict()
    expected = [a.next_batch()[0] for _ in range(3)]
    b = TokenSampler(mm, 4, 10, "cpu", seed=999)
    b.load_state_dict(state)
    assert all(torch.equal(e, b.next_batch()[0]) for e in expected)


@pytest.mark.parametrize(
    ("n", "batch", "ctx"), [(101, 4, 10), (100, 3, 7), (50, 8, 49), (20, 2, 30)]
)
def test_eval_batches_cover_every_target_once(n: int, batch: int, ctx: int) -> None:
    data = np.arange(n, dtype=np.uint32)
    targets = []
    for x, y in eval_batches(data, batch, ctx, "cpu"):
        assert x.shape == y.shape and x.shape[0] <= batch and x.shape[1] <= ctx
        assert torch.equal(y, x + 1)  # ids equal positions here
        targets += y.flatten().tolist()
    assert targets == list(range(1, n))


def test_eval_batches_shard_across_ranks_and_honour_max_tokens() -> None:
    data = np.arange(200, dtype=np.uint16)
    shards = [
        list(eval_batches(data, 2, 9, "cpu", max_tokens=150, rank=r, world_size=3))
        for r in range(3)
    ]
    targets = sorted(t for shard in shards for _, y in shard for t in y.flatten().tolist())
    assert targets == list(range(1, 150))


def test_ids_outside_the_vocab_are_caught(tokens, monkeypatch) -> None:
    monkeypatch.setattr(loader, "_MAX_CHUNK", 64)  # scan in several slices
    with pytest.raises(ValueError, match="token id 250 .* vocab_size is 200.*scratchlm tokenize"):
        open_tokens(tokens[0], vocab_size=200)
    assert len(open_tokens(tokens[0], vocab_size=251)) == 1000


def test_short_missing_and_malformed_files(tmp_path, tokens) -> None:
    with pytest.raises(ValueError, match="fewer than context_length \\+ 1.*scratchlm tokenize"):
        open_tokens(tokens[0], context_length=1000)
    with pytest.raises(FileNotFoundError, match="token file not found.*scratchlm tokenize"):
        open_tokens(tmp_path / "missing.npy")
    np.save(tmp_path / "floats.npy", np.zeros((3, 4)))
    with pytest.raises(ValueError, match="not 1-D token ids"):
        open_tokens(tmp_path / "floats.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="not a readable .npy"):
        open_tokens(tmp_path / "junk.npy")
