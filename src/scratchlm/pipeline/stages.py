"""The speedrun's stages: each makes one step of the pipeline in its folder of the run directory and
returns its typed result (`scratchlm.pipeline.results`).

A training stage resumes from its newest checkpoint when it has one (a run that was interrupted),
and raises KeyboardInterrupt when its loop stopped early (Ctrl-C, SIGTERM), so that the runner
writes no marker and the next run resumes it.
"""

import json
import logging
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import torch

from scratchlm.config import from_dict, save_config
from scratchlm.data.download import download
from scratchlm.data.prepare import tokenize_file
from scratchlm.data.synth import write_corpus
from scratchlm.eval.tasks import EVAL_SEED, write_task_files
from scratchlm.harness.run import evaluate_checkpoint, markdown_table
from scratchlm.model.generate import SamplingConfig, generate
from scratchlm.pipeline.presets import (
    CorpusConfig,
    HarnessStageConfig,
    PosttrainStageConfig,
    SpeedrunConfig,
    TokenizerStageConfig,
)
from scratchlm.pipeline.results import (
    Corpus,
    Evaluation,
    HarnessTables,
    SelfPairs,
    TaskFiles,
    TaskRate,
    TokenFiles,
    Trained,
    TrainedTokenizer,
)
from scratchlm.posttrain.common import load_chat_model
from scratchlm.posttrain.dpo import DPOConfig, run_dpo
from scratchlm.posttrain.evaluate import evaluate_task
from scratchlm.posttrain.grpo import GRPOConfig, run_grpo
from scratchlm.posttrain.pairs import write_self_pairs
from scratchlm.posttrain.sft import SFTConfig, run_sft
from scratchlm.runtime import base_dir
from scratchlm.tokenizer import END_OF_TEXT, Tokenizer, train_bpe
from scratchlm.train import checkpoint as ckpt
from scratchlm.train.loop import LoopResult
from scratchlm.train.pretrain import DataConfig, PretrainConfig, pretrain

log = logging.getLogger(__name__)

# Real corpora: the files `download` fetches, as (train, valid).
DOWNLOADED = {
    "tinystories": ("TinyStoriesV2-GPT4-train.txt", "TinyStoriesV2-GPT4-valid.txt"),
    "owt-sample": ("owt_train.txt", "owt_valid.txt"),
}


def stage_corpus(c: CorpusConfig, out: Path) -> Corpus:
    """Synthetic stories into out/corpus, or a corpus downloaded under download_dir."""
    if c.source == "synth":
        s = write_corpus(out / "corpus", size_mb=c.size_mb, seed=c.seed)
        train, valid = s.out / "train.txt", s.out / "valid.txt"
    else:
        root = Path(c.download_dir) if c.download_dir else base_dir() / "data"
        paths = download(c.source, root / c.source)
        names = [p.name for p in paths]
        train, valid = (paths[names.index(n)] for n in DOWNLOADED[c.source])
    size = train.stat().st_size + valid.stat().st_size
    return Corpus(train=str(train), valid=str(valid), bytes=size)


def stage_tokenizer(t: TokenizerStageConfig, out: Path, corpus: Corpus) -> TrainedTokenizer:
    vocab, merges = train_bpe(corpus.train, t.vocab_size, [END_OF_TEXT], t.num_processes)
    tokenizer = Tokenizer(vocab, merges, [END_OF_TEXT])
    tokenizer.save(out / "tokenizer")
    size = Path(corpus.train).stat().st_size
    return TrainedTokenizer(dir=str(out / "tokenizer"), vocab_size=tokenizer.vocab_size, bytes=size)


def stage_tokenize(t: TokenizerStageConfig, out: Path, corpus: Corpus) -> TokenFiles:
    tokens, tok_dir, workers = out / "tokens", out / "tokenizer", t.num_processes
    tokens.mkdir(exist_ok=True)
    train = tokenize_file(corpus.train, tokens / "train.npy", tok_dir, num_processes=workers)
    valid = tokenize_file(corpus.valid, tokens / "valid.npy", tok_dir, num_processes=workers)
    return TokenFiles(
        train=str(train.output_path),
        valid=str(valid.output_path),
        train_tokens=train.num_tokens,
        valid_tokens=valid.num_tokens,
        train_bytes_per_token=round(train.bytes_per_token, 3),
        valid_bytes_per_token=round(valid.bytes_per_token, 3),
    )


def pretrain_config(cfg: SpeedrunConfig, out: Path, vocab_size: int) -> PretrainConfig:
    """The preset's pretraining with the run's token files, tokenizer and run directory."""
    p = cfg.pretrain
    return replace(
        p,
        model=replace(p.model, vocab_size=vocab_size),
        data=DataConfig(
            train_path=str(out / "tokens" / "train.npy"),
            val_path=str(out / "tokens" / "valid.npy"),
            tokenizer_dir=str(out / "tokenizer"),
        ),
        logging=replace(p.logging, run_name="pretrain", out_dir=str(out / "pretrain")),
    )


def stage_pretrain(cfg: SpeedrunConfig, out: Path, vocab_size: int) -> Trained:
    """Pretrain in this process, or under torchrun when nproc_per_node > 1."""
    pcfg = pretrain_config(cfg, out, vocab_size)
    run_dir = out / "pretrain"
    if cfg.nproc_per_node > 1:
        run_torchrun(pcfg, out, cfg.nproc_per_node, resume_flag(run_dir))
        result = saved_result(run_dir)
    else:
        result = pretrain(pcfg, resume=resume_flag(run_dir))
    budget = pcfg.training.time_budget
    return trained(result, params=pcfg.model.num_params(), time_budget=budget)


def run_torchrun(pcfg: PretrainConfig, out: Path, nproc: int, resume: str | None) -> None:
    """Pretrain in `nproc` processes: `torchrun -m scratchlm train` on the resolved config."""
    path = out / "pretrain-config.json"
    save_config(pcfg, path)
    command = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
        "-m", "scratchlm", "train", "--config", str(path),
    ]  # fmt: skip
    if resume:
        command += ["--resume", resume]
    log.info("running %s", " ".join(command))
    if subprocess.run(command).returncode != 0:
        raise ValueError("distributed pretraining failed (see its output above); rerun to resume")


def saved_result(run_dir: Path) -> LoopResult:
    """How a run in other processes ended, read from its newest checkpoint's state.json."""
    path = ckpt.find_checkpoint(run_dir)
    state = json.loads((path / "state.json").read_text())
    total = state["schedule"]["total_steps"]  # None: stopped while sizing itself by time
    return LoopResult(
        stage=state["stage"],
        step=state["step"],
        steps=state["step"] + 1 if total is None else total,
        tokens_seen=state["tokens_seen"],
        metrics=state["metrics"],
        run_dir=run_dir,
        checkpoint=path,
    )


def resume_flag(run_dir: Path) -> str | None:
    """`latest` when the stage has checkpoints from an interrupted run, else None."""
    return "latest" if ckpt.list_checkpoints(run_dir / "checkpoints") else None


def trained(
    result: LoopResult, params: int | None = None, time_budget: str | None = None
) -> Trained:
    """A finished loop's result; a stopped one (Ctrl-C, SIGTERM) is not done: rerun to resume."""
    if result.stopped:
        log.info("%s stopped at step %d of %d; rerun to resume", result.stage, result.step,
                 result.steps)  # fmt: skip
        raise KeyboardInterrupt
    return Trained(
        checkpoint=str(result.checkpoint),
        run_dir=str(result.run_dir),
        step=result.step,
        steps=result.steps,
        tokens=result.tokens_seen,
        metrics=result.metrics,
        params=params,
        time_budget=time_budget,
    )


def stage_task(p: PosttrainStageConfig, out: Path) -> TaskFiles:
    files = write_task_files(out / "task", p.sft_examples, p.preference_pairs, p.seed)
    return TaskFiles(sft=str(files["sft"]), preference=str(files["preference"]))


def stage_sft(c: SFTConfig, out: Path, source: str, data: str) -> Trained:
    scfg = replace(c, base=source, data=data, out_dir=str(out / "sft"))
    return trained(run_sft(scfg, resume=resume_flag(out / "sft")))


def stage_pairs(p: PosttrainStageConfig, out: Path, policy: str, device: torch.device) -> SelfPairs:
    path = out / "pairs" / "preference.jsonl"
    s = write_self_pairs(Path(policy), path, device, p.self_pairs_task, p.self_pairs, p.seed + 2)
    return SelfPairs(path=s["path"], pairs=s["pairs"], checkpoint=s["checkpoint"])


def stage_dpo(c: DPOConfig, out: Path, source: str, data: str) -> Trained:
    dcfg = replace(c, policy=source, data=data, out_dir=str(out / "dpo"))
    return trained(run_dpo(dcfg, resume=resume_flag(out / "dpo")))


def stage_grpo(c: GRPOConfig, out: Path, source: str) -> Trained:
    gcfg = replace(c, policy=source, out_dir=str(out / "grpo"))
    return trained(run_grpo(gcfg, resume=resume_flag(out / "grpo")))


def stage_evaluate(cfg: SpeedrunConfig, models: dict[str, str], device: torch.device) -> Evaluation:
    """The task's satisfaction rate of each stage's model, and a story from the pretrained one."""
    p = cfg.posttrain
    rates = {}
    for stage, path in models.items():
        rate = evaluate_task(Path(path), device, p.eval_instructions, EVAL_SEED,
                             p.eval_max_new_tokens)  # fmt: skip
        rates[stage] = from_dict(TaskRate, rate)
    model, tokenizer = load_chat_model(Path(models["pretrain"]), device)
    prompt = tokenizer.encode(cfg.pretrain.eval.sample_prompt)
    sampling = SamplingConfig(
        max_new_tokens=min(
            cfg.pretrain.eval.sample_tokens, model.config.context_length - len(prompt)
        ),
        temperature=0.7,
        top_k=50,
        stop_ids=(tokenizer.special_ids[END_OF_TEXT],),
    )
    generator = torch.Generator(device=device).manual_seed(0)
    ids = generate(model.eval(), [prompt], sampling, generator=generator)[0]
    return Evaluation(rates=rates, base_story=tokenizer.decode(prompt + ids))


def stage_harness(
    cfg: HarnessStageConfig, models: dict[str, str], out: Path, device: torch.device
) -> HarnessTables:
    """`cfg.tasks` of lm-evaluation-harness on each stage's model (`scratchlm eval`'s code)."""
    tables, files = {}, {}
    for stage, path in models.items():
        json_path = out / "harness" / f"{stage}.json"
        json_path.parent.mkdir(parents=True, exist_ok=True)
        results, written = evaluate_checkpoint(
            path, list(cfg.tasks), cfg.limit, cfg.batch_size, str(device), json_path
        )
        tables[stage], files[stage] = markdown_table(results), str(written)
    return HarnessTables(tables=tables, files=files)
