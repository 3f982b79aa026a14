"""The pretraining loop end to end on a tiny model.

Loss falls, the run leaves its records, resume is bitwise exact, a stop signal saves and exits, and
bad input fails with one line.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from lock_holder import locked_by_another_process
from safetensors.torch import load_file

from scratchlm.cli import main
from scratchlm.config import load_config, save_config
from scratchlm.data.loader import TokenSampler
from scratchlm.train import checkpoint as ckpt
from scratchlm.train.config import learning_rate
from scratchlm.train.metrics import PEAK_BF16_FLOPS, mfu, open_wandb, peak_flops
from scratchlm.train.pretrain import PretrainConfig, pretrain


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads; on a busy machine, spinning threads cost seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(token_data: dict, out_dir, *overrides: str) -> PretrainConfig:
    """2 layers, C=32, T=32 on the corpus tokens; CPU, fp32."""
    base = [
        f"model.vocab_size={token_data['vocab_size']}",
        "model.context_length=32",
        "model.num_layers=2",
        "model.d_model=32",
        "model.num_heads=2",
        f"data.train_path={token_data['train']}",
        f"data.val_path={token_data['valid']}",
        f"data.tokenizer_dir={token_data['tokenizer_dir']}",
        "optimizer.lr=3e-3",
        "schedule.warmup_steps=2",
        "schedule.min_lr=3e-4",
        "training.steps=8",
        "training.batch_size=4",
        "training.device=cpu",
        "training.checkpoint_interval=4",
        "training.eval_interval=4",
        "training.sample_interval=4",
        "eval.sample_tokens=8",
        "training.log_interval=2",
        f"logging.out_dir={out_dir}",
    ]
    return load_config(PretrainConfig, None, base + list(overrides))


def final_weights(run_dir) -> dict[str, torch.Tensor]:
    ckpts = sorted((run_dir / "checkpoints").glob("step_*"))
    return load_file(str(ckpts[-1] / "model.safetensors"))


@pytest.mark.slow
def test_loss_falls_and_the_run_leaves_its_records(token_data, tmp_path, caplog) -> None:
    caplog.set_level("INFO")
    cfg = tiny_config(
        token_data, tmp_path / "run", "training.steps=30", "training.eval_interval=30"
    )
    summary = pretrain(cfg)
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    vals = [r["val_loss"] for r in records if "val_loss" in r]
    assert len(vals) == 2 and vals[1] < vals[0] - 0.5  # step 0 and step 30
    assert summary.step == 30 and summary.tokens_seen == 30 * 4 * 32
    assert 0 < summary.metrics["val_bpb"] < summary.metrics["val_loss"]  # several bytes per token
    assert (run / "loss.png").stat().st_size > 0
    assert json.loads((run / "config.json").read_text())["training"]["steps"] == 30
    assert json.loads((run / "run.json").read_text())["seed"] == 0
    ckpt = run / "checkpoints" / "step_00000030"
    assert {p.name for p in ckpt.iterdir()} == {
        "model.safetensors", "optimizer.pt", "state.json", "rng.pt", "config.json", "tokenizer"
    }  # fmt: skip
    assert "sample: 'Once upon a time" in caplog.text
    assert "step 30/30 | loss" in caplog.text


def test_learning_rate_follows_the_configured_schedule() -> None:
    cfg = load_config(PretrainConfig, None, ["schedule.name=wsd", "schedule.warmup_steps=10"])
    lrs = [learning_rate(s, 100, cfg.optimizer, cfg.schedule) for s in range(101)]
    assert lrs[0] == 0 and lrs[10] == lrs[79] == cfg.optimizer.lr
    assert lrs[100] == pytest.approx(cfg.schedule.min_lr)


def test_resume_is_bitwise_exact(token_data, tmp_path) -> None:
    extra = ("training.steps=6", "training.grad_accum=2", "training.checkpoint_interval=2")
    pretrain(tiny_config(token_data, tmp_path / "a", *extra))
    pretrain(tiny_config(token_data, tmp_path / "b", *extra, "training.stop_after=3"))
    assert (tmp_path / "b" / "checkpoints" / "step_00000003").is_dir()
    pretrain(tiny_config(token_data, tmp_path / "b", *extra), resume="latest")
    a, b = final_weights(tmp_path / "a"), final_weights(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_finishes_the_step_saves_and_says_stopped(
    token_data, tmp_path, monkeypatch, capsys, signum
) -> None:
    calls = {"n": 0}
    real_next = TokenSampler.next_batch

    def next_batch(self):  # the signal arrives while the third update is being computed
        calls["n"] += 1
        if calls["n"] == 3:
            signal.raise_signal(signum)
        return real_next(self)

    monkeypatch.setattr(TokenSampler, "next_batch", next_batch)
    save_config(tiny_config(token_data, tmp_path / "run"), tmp_path / "c.json")
    # What the handlers were: Python's own, or SIG_IGN for SIGINT when pytest was started in the
    # background by a non-interactive shell.
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert main(["train", "--config", str(tmp_path / "c.json")]) == 128 + signum
    out = capsys.readouterr().out
    assert "train stopped at step 3; continue with --resume latest" in out and "finished" not in out
    assert out.strip().endswith("checkpoints/step_00000003")
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # restored


def test_runs_without_validation_file_or_tokenizer(token_data, tmp_path) -> None:
    cfg = tiny_config(token_data, tmp_path / "run", "data.val_path=null", "data.tokenizer_dir=null")
    summary = pretrain(cfg)
    assert summary.step == 8 and "val_loss" not in summary.metrics


def test_refuses_to_overwrite_checkpoints_without_resume(token_data, tmp_path) -> None:
    pretrain(tiny_config(token_data, tmp_path / "run", "training.steps=4"))
    with pytest.raises(ValueError, match="already has checkpoints: pass --resume latest"):
        pretrain(tiny_config(token_data, tmp_path / "run", "training.steps=4"))


def test_vocab_mismatches_are_caught(token_data, tmp_path) -> None:
    with pytest.raises(ValueError, match="set model.vocab_size=384"):
        pretrain(tiny_config(token_data, tmp_path / "a", "model.vocab_size=300"))
    with pytest.raises(ValueError, match="contains token id .* vocab_size is 300"):
        pretrain(
            tiny_config(
                token_data, tmp_path / "a", "model.vocab_size=300", "data.tokenizer_dir=null"
            )
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model.d_modle=64"], "unknown config key 'model.d_modle'; valid keys under model:"),
        (["training.steps=many"], "training.steps must be an integer"),
        (["data.train_path=missing.npy"], "token file not found: missing.npy"),
        (["--resume", "latest"], "no checkpoint under"),
    ],
)
def test_cli_errors_are_one_line(token_data, tmp_path, capsys, args, message) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"logging": {"out_dir": str(tmp_path / "run")}}))
    tiny = ["model.vocab_size=384", "model.d_model=32", "model.num_heads=2", "model.num_layers=1"]
    data = [f"data.train_path={token_data['train']}"]
    if any(a.startswith("data.train_path=") for a in args):
        data = []  # a key given twice with two values is an error of its own (tests/test_cli.py)
    assert main(["train", "--config", str(config), *tiny, *data, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_full_disk_during_a_save_fails_in_one_line_and_keeps_the_last_checkpoint(
    token_data, tmp_path, monkeypatch, capsys
) -> None:
    real_save, calls = ckpt.torch.save, {"n": 0}

    def save_until_full(
        *args, **kwargs
    ):  # the first checkpoint (2 files) fits, then the disk is full
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(ckpt.torch, "save", save_until_full)
    save_config(
        tiny_config(token_data, tmp_path / "run", "training.checkpoint_interval=2"),
        tmp_path / "c.json",
    )
    assert main(["train", "--config", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot write checkpoint") and "No space left" in err
    assert len(err.splitlines()) == 1
    kept = ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [p.name for p in kept] == ["step_00000002"]
    assert ckpt.load_checkpoint(kept[0]).state["step"] == 2


def test_missing_wandb_is_a_notice_not_a_failure(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` raise ImportError
    assert open_wandb("p", "n", {}, tmp_path) is None
    assert "wandb is not installed" in caplog.text


def test_mfu_uses_the_device_peak() -> None:
    assert peak_flops(torch.device("cpu")) is None
    # 1e5 tok/s x 6e9 FLOPs/token = 6e14 FLOP/s, 60.7% of an H100's 989 TFLOP/s
    assert mfu(1e5, 6e9, PEAK_BF16_FLOPS["H100"]) == pytest.approx(6e14 / 989e12)


def metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def steps_of(rows: list[dict], key: str) -> list[int]:
    return [r["step"] for r in rows if key in r]


@pytest.mark.slow
def test_resuming_an_older_checkpoint_branches_and_latest_follows_the_branch(
    token_data, tmp_path, capsys, caplog
) -> None:
    """Issue 13's scenario: run A to 60, resume at 40 with another lr, stop at 50, resume latest."""
    caplog.set_level("INFO")
    run, ref = tmp_path / "run", tmp_path / "ref"
    every_10 = ("training.steps=60", "training.checkpoint_interval=10", "training.keep_last=3",
                "training.eval_interval=10", "training.sample_interval=100",
                "training.log_interval=5")  # fmt: skip
    save_config(tiny_config(token_data, run, *every_10), tmp_path / "run.json")
    save_config(tiny_config(token_data, ref, *every_10), tmp_path / "ref.json")
    train = ["train", "--config", str(tmp_path / "run.json")]
    assert main(train) == 0
    root = run / "checkpoints"
    step_40, old_50 = (
        root / "step_00000040",
        load_file(str(root / "step_00000050/model.safetensors")),
    )
    shutil.copytree(step_40, ref / "checkpoints" / step_40.name)  # for the reference below
    capsys.readouterr()

    assert (
        main([*train, "--resume", str(step_40), "optimizer.lr=1e-3", "training.stop_after=50"]) == 0
    )
    assert "train stopped at step 50; continue with --resume latest" in capsys.readouterr().out
    [branch] = (run / "branches").iterdir()
    assert f"moved step_00000050, step_00000060 and 6 metrics rows to {branch}" in caplog.text
    assert ckpt.list_checkpoints(root) == [step_40, root / "step_00000050"]  # the start is kept
    assert [p.name for p in ckpt.list_checkpoints(branch / "checkpoints")] == [
        "step_00000050", "step_00000060"
    ]  # fmt: skip
    old_rows = metrics(branch)
    assert steps_of(old_rows, "loss") == [45, 50, 55, 60] and steps_of(old_rows, "val_loss") == [
        50,
        60,
    ]
    assert json.loads((branch / "config.json").read_text())["optimizer"]["lr"] == 3e-3
    new_50 = load_file(str(root / "step_00000050/model.safetensors"))
    assert any(not torch.equal(old_50[k], new_50[k]) for k in old_50)
    state_50 = ckpt.load_checkpoint(root / "step_00000050").state
    assert state_50["val_loss"] == [r for r in metrics(run) if r["step"] == 50][-1]["val_loss"]

    assert main([*train, "--resume", "latest", "optimizer.lr=1e-3"]) == 0
    assert "train finished at step 60" in capsys.readouterr().out
    assert f"resumed train from {root / 'step_00000050'} at step 50" in caplog.text
    rows = metrics(run)
    assert steps_of(rows, "loss") == list(range(5, 61, 5))  # each step once
    assert steps_of(rows, "val_loss") == list(range(0, 61, 10))
    lr_after_40 = tiny_config(token_data, run, *every_10, "optimizer.lr=1e-3").optimizer
    cfg = tiny_config(token_data, run, *every_10)
    for row in rows:
        if "lr" in row:
            opt = lr_after_40 if row["step"] > 40 else cfg.optimizer
            assert row["lr"] == learning_rate(row["step"] - 1, 60, opt, cfg.schedule)

    # The branch is exactly one uninterrupted continuation from step 40 with lr 1e-3.
    ref_train = ["train", "--config", str(tmp_path / "ref.json"), "--resume", "latest"]
    assert main([*ref_train, "optimizer.lr=1e-3"]) == 0
    a, b = final_weights(run), final_weights(ref)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_best_checkpoint_is_credited_only_with_its_own_evaluation(token_data, tmp_path) -> None:
    run = tmp_path / "run"
    extra = ("training.checkpoint_interval=1", "training.keep_last=8", "training.eval_interval=4")
    pretrain(tiny_config(token_data, run, *extra))
    val = {r["step"]: r["val_loss"] for r in metrics(run) if "val_loss" in r}
    assert sorted(val) == [0, 4, 8] and val[8] < val[4]
    states = [ckpt.load_checkpoint(p).state for p in ckpt.list_checkpoints(run / "checkpoints")]
    assert [s["step"] for s in states] == list(range(1, 9))
    for state in states:  # step 0's loss is nobody's: it has no checkpoint
        step = state["step"]
        assert state["val_loss"] == val.get(step)
        best = 8 if step == 8 else 4 if step >= 4 else None
        assert (state["best_step"], state["best_val_loss"]) == (best, val.get(best))


DAMAGES = {
    "truncated weights": ("model.safetensors", lambda f: f.write_bytes(f.read_bytes()[:100])),
    "state.json holding a list": ("state.json", lambda f: f.write_text("[]")),
    "truncated optimizer.pt": ("optimizer.pt", lambda f: f.write_bytes(f.read_bytes()[:-50])),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_resume_latest_with_a_damaged_newest_checkpoint_names_the_newest_intact(
    token_data, tmp_path, capsys, damage
) -> None:
    run = tmp_path / "run"
    save_config(tiny_config(token_data, run, "training.sample_interval=100"), tmp_path / "c.json")
    train = ["train", "--config", str(tmp_path / "c.json"), "--resume"]
    assert main(train[:-1]) == 0
    step_4, step_8 = ckpt.list_checkpoints(run / "checkpoints")
    name, spoil = DAMAGES[damage]
    spoil(step_8 / name)
    capsys.readouterr()
    assert main([*train, "latest"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --resume latest: the newest checkpoint is damaged: ")
    assert str(step_8 / name) in err and err.strip().endswith(f"--resume {step_4}")
    assert len(err.strip().splitlines()) == 1
    assert main([*train, str(step_4)]) == 0  # what the message says to do; step 8 moves aside
    assert "train finished at step 8" in capsys.readouterr().out
    assert ckpt.checkpoint_problem(run / "checkpoints" / step_8.name) is None


def test_the_next_start_removes_temporaries_of_a_killed_run(token_data, tmp_path, caplog) -> None:
    caplog.set_level("INFO")
    run = tmp_path / "run"
    pretrain(tiny_config(token_data, run, "training.stop_after=4"))
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    stale = run / "checkpoints" / f".tmp-step_00000008-{child.pid}"  # a save that was killed
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"\0" * 1000)
    pretrain(tiny_config(token_data, run), resume="latest")
    assert not stale.exists() and "removed temporaries of killed processes" in caplog.text
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_00000004", "step_00000008"]


def test_metrics_hold_each_step_once_after_an_interrupted_run_is_resumed(
    token_data, tmp_path
) -> None:
    straight, run = tmp_path / "straight", tmp_path / "run"
    pretrain(tiny_config(token_data, straight))
    pretrain(tiny_config(token_data, run))
    # as if killed after writing the rows of steps 5-8 (one of them half) but before saving step 8
    shutil.rmtree(run / "checkpoints" / "step_00000008")
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 9, "lo')
    pretrain(tiny_config(token_data, run), resume="latest")
    timing = ("tok_per_s", "elapsed_s")
    a = [{k: v for k, v in r.items() if k not in timing} for r in metrics(straight)]
    b = [{k: v for k, v in r.items() if k not in timing} for r in metrics(run)]
    assert a == b


def test_a_second_process_on_the_run_directory_is_refused(token_data, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    save_config(tiny_config(token_data, run), tmp_path / "c.json")
    with locked_by_another_process(run) as pid:
        assert main(["train", "--config", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run} is in use by process {pid} ")
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing written
    assert main(["train", "--config", str(tmp_path / "c.json")]) == 0  # the holder is gone


def wait_for_row(run_dir, process: subprocess.Popen, min_step: int) -> None:
    """Block until metrics.jsonl has a training row at or after `min_step` (no fixed sleeps)."""
    path = run_dir / "metrics.jsonl"
    while process.poll() is None:
        if path.is_file() and any(
            r.get("step", 0) >= min_step and "loss" in r
            for r in map(json.loads, path.read_text().splitlines()[:-1])
        ):
            return
        time.sleep(0.05)
    raise AssertionError(f"training ended early: {process.communicate()}")


def start_training(config, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "scratchlm", "train", "--config", str(config), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # a tiny model gains nothing from threads
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


@pytest.mark.slow
def test_sigterm_in_a_real_process_saves_says_stopped_and_resumes(token_data, tmp_path) -> None:
    run = tmp_path / "run"
    long = (
        "training.steps=100000",
        "training.checkpoint_interval=100000",
        "training.log_interval=1",
    )
    save_config(tiny_config(token_data, run, *long), tmp_path / "c.json")
    process = start_training(tmp_path / "c.json")
    wait_for_row(run, process, 2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM, err
    [saved] = ckpt.list_checkpoints(run / "checkpoints")
    step = ckpt.checkpoint_step(saved)
    assert f"train stopped at step {step}; continue with --resume latest" in out
    process = start_training(
        tmp_path / "c.json", "--resume", "latest", f"training.stop_after={step + 2}"
    )
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert f"train stopped at step {step + 2}; continue with --resume latest" in out
    assert steps_of(metrics(run), "loss") == list(range(1, step + 3))


@pytest.mark.slow
def test_after_kill_9_the_resumed_run_cleans_up_and_logs_each_step_once(
    token_data, tmp_path
) -> None:
    run = tmp_path / "run"
    every = ("training.steps=100000", "training.checkpoint_interval=1", "training.log_interval=1",
             "training.eval_interval=100000")  # fmt: skip
    save_config(tiny_config(token_data, run, *every), tmp_path / "c.json")
    process = start_training(tmp_path / "c.json")
    wait_for_row(run, process, 3)
    process.kill()
    process.communicate()
    newest = ckpt.checkpoint_step(ckpt.list_checkpoints(run / "checkpoints")[-1])
    stop = newest + 3
    process = start_training(
        tmp_path / "c.json", "--resume", "latest", f"training.stop_after={stop}"
    )
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert steps_of(metrics(run), "loss") == list(range(1, stop + 1))
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
