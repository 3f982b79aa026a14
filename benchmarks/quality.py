"""Quality benchmark: held-out bits per byte that each recipe reaches in the same wall-clock budget.

    python benchmarks/quality.py --text corpus.txt --budget 100
    python benchmarks/quality.py --text corpus.txt --budget 600 --recipe cpu-tiny --recipe muon \
        --seeds 2 --out runs/quality --threads 1

Steps, all through the public CLI (`python -m scratchlm ...`, the same entry point as the
`scratchlm` command), as a user would run them:

1. The text is split by characters: the first 90% is the training part, the last 10% the held-out
   part, cut at the document boundary (`<|endoftext|>`) nearest to the 90% mark when one lies
   within 1% of the text from it, else at the nearest whitespace.
2. `scratchlm train-tokenizer` learns a byte-level BPE on the training part, once per vocabulary
   size the recipes ask for, and `scratchlm tokenize` encodes both parts with it.
3. `scratchlm train` trains each recipe with `training.time_budget=<budget>s`: the run sizes itself
   to the budget and lays its schedule over it. Runs go one after the other, seeds interleaved
   across recipes (A s0, B s0, A s1, B s1, ...) so that drift of the machine's load spreads over
   all recipes. Training has no validation file, so the budget holds training only.
4. After each run, the final checkpoint is evaluated on the whole held-out token file, every token
   a target once, in windows of the recipe's context length (`scratchlm.eval.loss`): bits per byte
   of the held-out text, which does not depend on the tokenizer. This evaluation comes after the
   budget and is the same for every recipe.

The table gives per recipe: held-out bits per byte (mean over seeds and the spread, max - min),
its ratio to the first recipe's mean (the baseline), tokens seen, parameters, steps and the
seconds of budget the training used (means over seeds). `--first-seed` shifts the seeds, to add
runs to an earlier benchmark's. `--threads N` sets OMP_NUM_THREADS for every run: on a machine
shared with other jobs, one thread per run is far steadier than torch's default (docs/ablations.md).

A recipe is a YAML file, named by path or by name (`muon` = `benchmarks/recipes/muon.yaml`, or
`configs/muon.yaml`). Either a `scratchlm train` config used as it is (`configs/cpu-tiny.yaml`, the
default baseline), or

    base: configs/cpu-tiny.yaml      # a train config, relative to the repository root
    overrides:                       # dotted train-config keys, as on the command line
      optimizer.name: muon
      model.vocab_size: 1024         # also the tokenizer's vocabulary size

The tokenizer's vocabulary size is the resolved `model.vocab_size`. The benchmark sets the data
paths, `training.time_budget`, `training.seed`, the intervals and `logging.*` itself; a recipe that
overrides `data.*`, `logging.*`, `training.time_budget` or `training.seed` is refused.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

import numpy as np
import torch
import yaml

from scratchlm.data.loader import eval_batches
from scratchlm.eval.loss import bits_per_byte, loss_sums
from scratchlm.model.config import ModelConfig
from scratchlm.tokenizer.tokenizer import Tokenizer
from scratchlm.train.checkpoint import find_checkpoint, load_model

REPO = Path(__file__).resolve().parents[1]
RECIPE_DIRS = (REPO / "benchmarks" / "recipes", REPO / "configs")
RECIPE_KEYS = {"base", "overrides"}
RESERVED = ("data.", "logging.", "training.time_budget", "training.seed")
SEPARATOR = "<|endoftext|>"
HELD_OUT = 0.10
EVAL_BATCH = 16
NEVER = 10**9  # an interval no budgeted run reaches: no periodic evaluation, sample or checkpoint


class InputError(Exception):
    """Bad input from the user: printed as one `error:` line, exit status 2."""


@dataclass
class Recipe:
    """A train config file plus overrides; `config` is the resolved config (--print-config)."""

    name: str
    base: Path
    overrides: list[str]
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def vocab_size(self) -> int:
        return self.config["model"]["vocab_size"]


@dataclass
class Result:
    """One trained and evaluated run."""

    recipe: str
    seed: int
    bpb: float
    tokens: int
    steps: int
    params: int
    train_s: float


def scratchlm(*args: str, log: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m scratchlm ARGS`; output to `log` when given. InputError on failure."""
    cmd = [sys.executable, "-m", "scratchlm", *args]
    if log is None:
        done = subprocess.run(cmd, capture_output=True, text=True)
        output = done.stdout + done.stderr
    else:
        with log.open("w") as f:
            done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True)
        output = log.read_text()
    if done.returncode != 0:
        lines = [line for line in output.splitlines() if line.strip()]
        last = next((line for line in reversed(lines) if line.startswith("error:")), None)
        where = f" (log: {log})" if log is not None else ""
        raise InputError(f"scratchlm {args[0]} failed{where}: {last or (lines or ['?'])[-1]}")
    return done


# ---------------------------------------------------------------------------------------- recipes


def find_recipe(name: str) -> Path:
    """The recipe file `name` names: a path, or a name under benchmarks/recipes/ or configs/."""
    candidates = [Path(name)]
    stem = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
    candidates += [d / stem for d in RECIPE_DIRS]
    for path in candidates:
        if path.is_file():
            return path
    raise InputError(
        f"recipe {name!r} not found: give a YAML path or a name under benchmarks/recipes/ or "
        "configs/ (e.g. cpu-tiny)"
    )


def cli_value(value: Any) -> str:
    """A YAML value as `scratchlm` override text: true/false/null, tuples as (a,b)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "(" + ",".join(cli_value(v) for v in value) + ")"
    return str(value)


def load_recipe(name: str) -> Recipe:
    """Read a recipe file and resolve its config with `scratchlm train --print-config`."""
    path = find_recipe(name)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise InputError(f"recipe {path} is not valid YAML: {str(e).splitlines()[0]}") from e
    if not isinstance(data, dict):
        raise InputError(f"recipe {path} must be a YAML mapping")
    if set(data) & RECIPE_KEYS:
        if not set(data) <= RECIPE_KEYS:
            raise InputError(
                f"recipe {path} mixes 'base'/'overrides' with config sections "
                f"{sorted(set(data) - RECIPE_KEYS)}: put those under 'overrides'"
            )
        base = REPO / str(data.get("base", "configs/cpu-tiny.yaml"))
        overrides = data.get("overrides") or {}
        if not isinstance(overrides, dict):
            raise InputError(f"recipe {path}: 'overrides' must map dotted keys to values")
    else:
        base, overrides = path, {}
    if not base.is_file():
        raise InputError(f"recipe {path}: base config {base} not found")
    reserved = [k for k in overrides if str(k).startswith(RESERVED)]
    if reserved:
        raise InputError(
            f"recipe {path} sets {reserved}, which the benchmark sets itself; remove them"
        )
    recipe = Recipe(path.stem, base, [f"{k}={cli_value(v)}" for k, v in overrides.items()])
    printed = scratchlm("train", "--config", str(base), *recipe.overrides, "--print-config")
    recipe.config = yaml.safe_load(printed.stdout)
    return recipe


# ------------------------------------------------------------------------------------------- data


def split_point(text: str, fraction: float = 1 - HELD_OUT) -> int:
    """Where to cut `text`: the separator nearest to `fraction` of it within 1% of the length
    (cut after it), else the whitespace nearest to that mark."""
    mark, slack = int(len(text) * fraction), max(1, len(text) // 100)
    after = text.find(SEPARATOR, mark)
    before = text.rfind(SEPARATOR, 0, mark + len(SEPARATOR))  # also one across the mark
    ends = [p + len(SEPARATOR) for p in (before, after) if p >= 0]
    ends = [e for e in ends if abs(e - mark) <= slack and e < len(text)]
    if ends:
        return min(ends, key=lambda e: abs(e - mark))
    for offset in range(len(text)):
        for pos in (mark - offset, mark + offset):
            if 0 < pos < len(text) and text[pos].isspace():
                return pos
    return mark


def prepare_data(text_path: Path, work: Path, vocab_sizes: list[int]) -> dict[int, Path]:
    """Split the text into train.txt / heldout.txt and build a tokenizer and token files per
    vocabulary size, in work/v<size>/. Returns vocab size -> its directory."""
    text = text_path.read_text(encoding="utf-8")
    cut = split_point(text)
    train, held = text[:cut], text[cut:]
    if not train.strip() or not held.strip():
        raise InputError(f"{text_path} is too short to split 90/10 ({len(text)} characters)")
    (work / "train.txt").write_text(train, encoding="utf-8")
    (work / "heldout.txt").write_text(held, encoding="utf-8")
    print(
        f"split {text_path}: {len(train):,} training characters, {len(held):,} held out "
        f"(cut at character {cut:,})",
        flush=True,
    )
    dirs = {}
    for v in sorted(set(vocab_sizes)):
        d = dirs[v] = work / f"v{v}"
        d.mkdir(exist_ok=True)
        start = time.perf_counter()
        tokenizer = d / "tokenizer"
        scratchlm("train-tokenizer", "--data-path", str(work / "train.txt"), "--vocab-size",
                  str(v), "--output-dir", str(tokenizer), log=d / "tokenizer.log")  # fmt: skip
        for part in ("train", "heldout"):
            scratchlm("tokenize", "--dataset-path", str(work / f"{part}.txt"), "--output-path",
                      str(d / f"{part}.npy"), "--tokenizer-dir", str(tokenizer),
                      log=d / f"tokenize-{part}.log")  # fmt: skip
        tokens = [len(np.load(d / f"{p}.npy", mmap_mode="r")) for p in ("train", "heldout")]
        print(
            f"vocab {v}: tokenizer and token files in {time.perf_counter() - start:.0f} s "
            f"({tokens[0]:,} training tokens, {tokens[1]:,} held out)",
            flush=True,
        )
    return dirs


# ----------------------------------------------------------------------------------- train + eval


@torch.no_grad()
def heldout_bpb(checkpoint: Path, data_dir: Path) -> float:
    """Bits per byte of the checkpoint's model over the whole held-out token file."""
    model = load_model(checkpoint)
    tokens = np.load(data_dir / "heldout.npy", mmap_mode="r")
    tokenizer = Tokenizer.from_dir(data_dir / "tokenizer")
    byte_lengths = torch.tensor(tokenizer.token_byte_lengths(), dtype=torch.float64)
    batches = eval_batches(tokens, EVAL_BATCH, model.config.context_length, "cpu")
    loss_sum, _, n_bytes = (float(v) for v in loss_sums(model, batches, byte_lengths))
    return bits_per_byte(loss_sum, n_bytes)


def train_and_eval(recipe: Recipe, seed: int, budget: float, data_dir: Path, runs: Path) -> Result:
    """Train `recipe` for `budget` seconds with `seed`, then evaluate its final checkpoint."""
    run_name = f"{recipe.name}-s{seed}"
    shutil.rmtree(runs / run_name, ignore_errors=True)  # a run of an earlier benchmark in --out
    args = [
        "train", "--config", str(recipe.base), *recipe.overrides,
        f"data.train_path={data_dir / 'train.npy'}", "data.val_path=null",
        f"data.tokenizer_dir={data_dir / 'tokenizer'}",
        f"training.time_budget={budget}s", f"training.seed={seed}",
        f"training.eval_interval={NEVER}", f"training.sample_interval={NEVER}",
        f"training.checkpoint_interval={NEVER}", "training.keep_last=1",
        f"logging.run_name={run_name}", f"logging.out_dir={runs / run_name}", "logging.wandb=false",
    ]  # fmt: skip
    scratchlm(*args, log=runs / f"{run_name}.log")
    checkpoint = find_checkpoint(runs / run_name)
    state = json.loads((checkpoint / "state.json").read_text())
    params = ModelConfig.from_dict(recipe.config["model"]).num_params()
    bpb = heldout_bpb(checkpoint, data_dir)
    return Result(recipe.name, seed, bpb, state["tokens_seen"], state["step"], params,
                  state["budget_spent_s"])  # fmt: skip


def table(recipes: list[Recipe], results: list[Result]) -> list[str]:
    """The markdown table: one row per recipe, means over its seeds, ratio to the first."""
    header = ["recipe", "held-out bpb", "spread", "ratio", "tokens seen", "params", "steps",
              "train s", "seeds"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    base = None
    for r in recipes:
        rows = [x for x in results if x.recipe == r.name]
        bpbs = [x.bpb for x in rows]
        bpb = mean(bpbs)
        base = bpb if base is None else base
        cells = [
            r.name, f"{bpb:.4f}", f"{max(bpbs) - min(bpbs):.4f}", f"{bpb / base:.3f}",
            f"{mean(x.tokens for x in rows):,.0f}", f"{rows[0].params:,}",
            f"{mean(x.steps for x in rows):.0f}", f"{mean(x.train_s for x in rows):.1f}",
            str(len(rows)),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# ------------------------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", type=Path, required=True, help="UTF-8 text to split 90/10")
    p.add_argument("--budget", type=float, required=True, help="training seconds per run")
    p.add_argument("--recipe", action="append", dest="recipes", metavar="RECIPE",
                   help="recipe file or name, repeatable; the first is the baseline "
                        "(default: cpu-tiny alone)")  # fmt: skip
    p.add_argument("--seeds", type=int, default=2, help="seeds per recipe (default 2)")
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds are FIRST .. FIRST + SEEDS - 1 (default 0)")  # fmt: skip
    p.add_argument("--out", type=Path, help="keep data, runs, logs and results.json here")
    p.add_argument("--threads", type=int, help="torch threads of every run and evaluation "
                   "(OMP_NUM_THREADS; default: torch's own)")  # fmt: skip
    return p.parse_args()


def check_args(args: argparse.Namespace) -> list[Recipe]:
    """Refuse bad input before anything is written; returns the loaded recipes."""
    if not args.text.is_file():
        raise InputError(f"text file {args.text} not found")
    if not (args.budget > 0 and math.isfinite(args.budget)):
        raise InputError(f"--budget must be a positive number of seconds, got {args.budget}")
    if args.seeds < 1 or args.first_seed < 0:
        raise InputError(f"need --seeds >= 1 and --first-seed >= 0, got {args.seeds}, "
                         f"{args.first_seed}")  # fmt: skip
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be >= 1, got {args.threads}")
    recipes = [load_recipe(name) for name in args.recipes or ["cpu-tiny"]]
    names = [r.name for r in recipes]
    if len(set(names)) < len(names):
        raise InputError(f"recipe names must differ (they name the runs), got {names}")
    return recipes


def run(args: argparse.Namespace, recipes: list[Recipe], work: Path) -> None:
    """The whole benchmark in `work`; prints progress, then the table."""
    dirs = prepare_data(args.text, work, [r.vocab_size for r in recipes])
    runs = work / "runs"
    runs.mkdir(exist_ok=True)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    order = [(seed, r) for seed in seeds for r in recipes]
    results: list[Result] = []
    print(f"training {len(order)} runs of {args.budget:.0f} s each; the held-out evaluation of "
          "each comes after its budget", flush=True)  # fmt: skip
    for i, (seed, recipe) in enumerate(order, 1):
        print(f"[{i}/{len(order)}] {recipe.name} seed {seed}: training ...", flush=True)
        result = train_and_eval(recipe, seed, args.budget, dirs[recipe.vocab_size], runs)
        results.append(result)
        print(
            f"[{i}/{len(order)}] {recipe.name} seed {seed}: held-out bpb {result.bpb:.4f}, "
            f"{result.steps} steps, {result.tokens:,} tokens in {result.train_s:.1f} s",
            flush=True,
        )
    lines = table(recipes, results)
    print(f"\nheld-out bits per byte after {args.budget:.0f} s of training per run on "
          f"{args.text} (ratio: to {recipes[0].name}; spread: max - min over seeds; "
          "tokens, steps, train s: means)")  # fmt: skip
    print("\n".join(lines))
    report = {
        "text": str(args.text),
        "budget_s": args.budget,
        "recipes": {r.name: {"base": str(r.base), "overrides": r.overrides} for r in recipes},
        "runs": [vars(x) for x in results],
        "table": lines,
    }
    (work / "results.json").write_text(json.dumps(report, indent=2) + "\n")


def main() -> int:
    args = parse_args()
    if args.threads is not None:  # for the runs (subprocesses) and the evaluations (here)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        torch.set_num_threads(args.threads)
    try:
        recipes = check_args(args)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            run(args, recipes, args.out)
        else:
            with tempfile.TemporaryDirectory(prefix="quality-") as tmp:
                run(args, recipes, Path(tmp))
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
