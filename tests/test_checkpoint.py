"""Checkpoint directories: exact round trips, atomic writes under a full disk, refusals, pruning,
damage checks, the run lock, stale temporaries and branches."""

import errno
import json
import os
import random
import subprocess
import sys

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


def truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


DAMAGE = {
    "truncated weights": ("model.safetensors", lambda f: truncate(f)),
    "empty weights": ("model.safetensors", lambda f: f.write_bytes(b"")),
    "state.json holding a list": ("state.json", lambda f: f.write_text("[1, 2]")),
    "state.json cut short": ("state.json", lambda f: truncate(f)),
    "state.json without step": ("state.json", lambda f: f.write_text('{"format_version": 1}')),
    "truncated optimizer.pt": ("optimizer.pt", lambda f: truncate(f, 0.9)),
    "missing rng.pt": ("rng.pt", lambda f: f.unlink()),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_checkpoint_is_named_with_its_file(tmp_path, damage) -> None:
    model, opt = trained()
    path = save(tmp_path, 3, model, opt)
    assert ckpt.checkpoint_problem(path) is None
    name, spoil = DAMAGE[damage]
    spoil(path / name)
    problem = ckpt.checkpoint_problem(path)
    assert problem is not None and problem.startswith(str(path / name))
    assert "\n" not in problem


def test_resume_latest_refuses_a_damaged_newest_and_names_the_newest_intact(tmp_path) -> None:
    model, opt = trained()
    paths = [save(tmp_path, step, model, opt) for step in (2, 4, 6)]
    truncate(paths[2] / "model.safetensors")
    truncate(paths[1] / "optimizer.pt", 0.9)
    with pytest.raises(ValueError) as err:
        ckpt.resolve_resume("latest", tmp_path)
    message = str(err.value)
    assert f"{paths[2] / 'model.safetensors'} is damaged" in message
    assert message.endswith(f"--resume {paths[0]}")  # step 4 is damaged as well
    assert ckpt.resolve_resume(str(paths[0]), tmp_path) == paths[0]
    with pytest.raises(ValueError, match="optimizer.pt is damaged .*pass an intact checkpoint"):
        ckpt.resolve_resume(str(paths[1]), tmp_path)
    truncate(paths[0] / "rng.pt", 0.9)
    with pytest.raises(ValueError, match="holds no intact checkpoint"):
        ckpt.resolve_resume("latest", tmp_path)


def test_best_is_credited_only_with_the_evaluation_of_its_own_step() -> None:
    best = ckpt.best_after((None, None), 1, None)  # step 0 was evaluated, step 1 was not
    assert best == (None, None)
    best = ckpt.best_after(best, 4, 2.5)
    assert best == (2.5, 4)
    assert ckpt.best_after(best, 8, 3.0) == (2.5, 4) and ckpt.best_after(best, 9, None) == best
    assert ckpt.best_after(best, 12, 2.0) == (2.0, 12)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_temporaries_of_killed_processes_are_cleaned_up(tmp_path, caplog) -> None:
    caplog.set_level("INFO")
    model, opt = trained()
    kept = save(tmp_path, 2, model, opt)
    gone, alive = dead_pid(), os.getppid()
    for name in (f".tmp-step_00000004-{gone}", f".tmp-step_00000004-{os.getpid()}",
                 f".tmp-step_00000006-{alive}", f".old-step_00000002-{gone}"):  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"partial")
    # killed between moving step 8 aside and renaming its new copy into place
    (tmp_path / "step_00000008").mkdir()
    save(tmp_path, 8, model, opt).rename(tmp_path / f".old-step_00000008-{gone}")
    ckpt.remove_stale_temporaries(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f".tmp-step_00000006-{alive}", kept.name, "step_00000008"]
    assert ckpt.checkpoint_problem(tmp_path / "step_00000008") is None
    assert "removed temporaries of killed processes" in caplog.text


def hold_lock(run_dir) -> subprocess.Popen:
    """Another process that takes the run directory's lock and keeps it until killed."""
    code = (
        "import sys, time; from pathlib import Path; from scratchlm.train import checkpoint; "
        "checkpoint.lock_run(Path(sys.argv[1])); print('locked', flush=True); time.sleep(600)"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"locked\n"
    return child


def test_a_run_directory_is_locked_by_one_process(tmp_path) -> None:
    holder = hold_lock(tmp_path)
    try:
        with pytest.raises(OSError, match=f"in use by process {holder.pid} "):
            ckpt.lock_run(tmp_path)
        assert (tmp_path / ".lock").read_text() == f"{holder.pid}\n"
    finally:
        holder.kill()
        holder.wait()
    ckpt.lock_run(tmp_path)  # the kernel released the killed holder's lock
    ckpt.lock_run(tmp_path)  # a holder may ask again
    assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
    ckpt.unlock_run(tmp_path)
    assert (tmp_path / ".lock").read_text() == ""


def metrics_rows(*steps: int) -> str:
    return "".join(json.dumps({"step": s, "loss": float(s)}) + "\n" for s in steps)


def test_resuming_an_older_step_moves_the_later_ones_to_a_branch(tmp_path, caplog) -> None:
    caplog.set_level("INFO")
    model, opt = trained()
    root = tmp_path / "checkpoints"
    paths = [save(root, step, model, opt) for step in (2, 4, 6)]
    (tmp_path / "config.json").write_text('{"optimizer": {"lr": 0.1}}')
    (tmp_path / "metrics.jsonl").write_text(metrics_rows(0, 2, 3, 4, 5, 6) + '{"step": 7, "lo')
    branch = ckpt.start_branch(tmp_path, paths[0], 2)
    assert branch.parent == tmp_path / "branches" and branch.name.endswith("-resumed-at-step-2")
    assert ckpt.list_checkpoints(root) == [paths[0]]
    assert [p.name for p in ckpt.list_checkpoints(branch / "checkpoints")] == [
        "step_00000004", "step_00000006"
    ]  # fmt: skip
    assert (tmp_path / "metrics.jsonl").read_text() == metrics_rows(0, 2)
    assert (branch / "metrics.jsonl").read_text() == metrics_rows(3, 4, 5, 6)
    assert (branch / "config.json").read_text() == '{"optimizer": {"lr": 0.1}}'
    assert (
        f"resuming from {paths[0]}, which is not this run's newest checkpoint: moved "
        f"step_00000004, step_00000006 and 4 metrics rows to {branch}" in caplog.text
    )


def test_resuming_the_newest_drops_the_rows_an_interrupted_run_wrote(tmp_path) -> None:
    model, opt = trained()
    latest = save(tmp_path / "checkpoints", 4, model, opt)
    (tmp_path / "metrics.jsonl").write_text(metrics_rows(2, 4, 5, 6) + '{"st')
    assert ckpt.start_branch(tmp_path, latest, 4) is None
    assert (tmp_path / "metrics.jsonl").read_text() == metrics_rows(2, 4)
    assert not (tmp_path / "branches").exists()
    (tmp_path / "fresh").mkdir()  # a fresh start, after a try that saved no checkpoint
    (tmp_path / "fresh" / "metrics.jsonl").write_text(metrics_rows(0, 2))
    assert ckpt.start_branch(tmp_path / "fresh", None, 0) is None
    assert (tmp_path / "fresh" / "metrics.jsonl").read_text() == ""


def test_resuming_from_outside_the_run_sets_all_of_it_aside(tmp_path) -> None:
    model, opt = trained()
    ours = [save(tmp_path / "run" / "checkpoints", step, model, opt) for step in (2, 4, 6)]
    (tmp_path / "run" / "metrics.jsonl").write_text(metrics_rows(2, 4, 6))
    other = save(tmp_path / "elsewhere" / "checkpoints", 4, model, opt)
    branch = ckpt.start_branch(tmp_path / "run", other, 4)
    assert ckpt.list_checkpoints(tmp_path / "run" / "checkpoints") == []
    assert [p.name for p in ckpt.list_checkpoints(branch / "checkpoints")] == [p.name for p in ours]
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == ""
    assert (branch / "metrics.jsonl").read_text() == metrics_rows(2, 4, 6)
