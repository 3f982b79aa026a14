"""The pretraining loop end to end on a tiny model.

Loss falls, the run leaves its records, resume is bitwise exact, a stop signal saves and exits, and
bad input fails with one line.
"""

import errno
import json
import signal
import sys

import pytest
import torch
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


def test_a_stop_signal_finishes_the_step_saves_and_exits(token_data, tmp_path, monkeypatch) -> None:
    calls = {"n": 0}
    real_next = TokenSampler.next_batch

    def next_batch(self):  # SIGINT arrives while the third update is being computed
        calls["n"] += 1
        if calls["n"] == 3:
            signal.raise_signal(signal.SIGINT)
        return real_next(self)

    monkeypatch.setattr(TokenSampler, "next_batch", next_batch)
    summary = pretrain(tiny_config(token_data, tmp_path / "run"))
    assert summary.step == 3 and str(summary.checkpoint).endswith("step_00000003")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


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
