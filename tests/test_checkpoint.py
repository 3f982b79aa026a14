"""Checkpoint directories: exact round trips, atomic writes under a full disk, refusals, pruning."""

import errno
import json
import random

import numpy as np
import pytest
import torch

from scratchlm.model.config import ModelConfig
from scratchlm.model.transformer import TransformerLM
from scratchlm.optimizers import AdamW
from scratchlm.train import checkpoint as ckpt


def trained(seed: int = 0) -> tuple[TransformerLM, AdamW]:
    torch.manual_seed(seed)
    model = TransformerLM.from_config(ModelConfig(64, 16, 1, 32, 2))
    opt = AdamW(model.parameters(), lr=1e-2)
    x = torch.randint(0, 64, (2, 16))
    model(x).logsumexp(-1).mean().backward()
    opt.step()
    return model, opt


def save(root, step: int, model, opt, **state) -> object:
    config = {"model": model.config.to_dict()}
    rng = {"ranks": [ckpt.rng_state()], "sampler": {}}
    return ckpt.save_checkpoint(
        root, step, model.state_dict(), opt.state_dict(), {"step": step, **state}, rng, config
    )


def test_round_trip_restores_weights_optimizer_and_rng(tmp_path) -> None:
    model, opt = trained()
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    path = save(tmp_path, 5, model, opt)
    expected = (random.random(), np.random.rand(), torch.rand(1))

    loaded = ckpt.load_checkpoint(path)
    fresh, fresh_opt = trained(seed=9)
    fresh.load_state_dict(loaded.model_state)
    fresh_opt.load_state_dict(loaded.optim_state)
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), fresh.parameters(), strict=True)
    )
    for p, q in zip(model.parameters(), fresh.parameters(), strict=True):
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(opt.state[p][key], fresh_opt.state[q][key])
    ckpt.set_rng_state(loaded.rng["ranks"][0])
    assert (random.random(), np.random.rand()) == expected[:2]
    assert torch.equal(torch.rand(1), expected[2])
    assert loaded.state["step"] == 5 and loaded.state["format_version"] == ckpt.FORMAT_VERSION


def test_full_disk_mid_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    model, opt = trained()
    first = save(tmp_path, 1, model, opt)
    before = {p.name: p.read_bytes() for p in first.iterdir()}

    def full_disk(*args, **kwargs):  # model.safetensors is already written when this runs
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left on device; earlier checkpoints .* intact"):
        save(tmp_path, 2, model, opt)
    assert ckpt.list_checkpoints(tmp_path) == [first]
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary directory left
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before


def test_unwritable_checkpoint_directory_is_one_clear_error(tmp_path) -> None:
    model, opt = trained()
    (tmp_path / "blocked").write_text("a file where the directory should be")
    with pytest.raises(OSError, match="cannot write checkpoint .*blocked"):
        save(tmp_path / "blocked", 1, model, opt)


def test_pickled_code_is_refused(tmp_path) -> None:
    model, opt = trained()
    path = save(tmp_path, 1, model, opt)
    torch.save({"state": {}, "param_groups": [], "trap": random.Random()}, path / "optimizer.pt")
    with pytest.raises(ValueError, match="refusing to load"):
        ckpt.load_checkpoint(path)


def test_other_model_shape_or_tokenizer_is_refused(tmp_path) -> None:
    model, opt = trained()
    loaded = ckpt.load_checkpoint(save(tmp_path, 1, model, opt, tokenizer_hash="abc"))
    wider = {**model.config.to_dict(), "d_model": 64}
    with pytest.raises(ValueError, match="model.d_model=32 but this run has model.d_model=64"):
        ckpt.check_compatible(loaded, wider, "abc", "ddp")
    with pytest.raises(ValueError, match="different tokenizer"):
        ckpt.check_compatible(loaded, model.config.to_dict(), "xyz", "ddp")
    ckpt.check_compatible(loaded, model.config.to_dict(), "abc", "ddp")


def test_tokenizer_hash_sees_contents(tmp_path) -> None:
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0}))
    first = ckpt.tokenizer_hash(tmp_path)
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 1}))
    assert ckpt.tokenizer_hash(tmp_path) != first and ckpt.tokenizer_hash(None) is None


def test_prune_keeps_the_newest_and_the_best(tmp_path) -> None:
    model, opt = trained()
    paths = [save(tmp_path, step, model, opt) for step in (10, 20, 30, 40)]
    ckpt.prune_checkpoints(tmp_path, keep_last=2, keep=paths[0])
    assert ckpt.list_checkpoints(tmp_path) == [paths[0], paths[2], paths[3]]


def test_resolve_resume(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint under"):
        ckpt.resolve_resume("latest", tmp_path)
    model, opt = trained()
    paths = [save(tmp_path, step, model, opt) for step in (2, 11)]
    assert ckpt.resolve_resume("latest", tmp_path) == paths[1]
    assert ckpt.resolve_resume(str(paths[0]), tmp_path) == paths[0]
    with pytest.raises(FileNotFoundError, match="not a checkpoint directory"):
        ckpt.resolve_resume(str(tmp_path / "nope"), tmp_path)
