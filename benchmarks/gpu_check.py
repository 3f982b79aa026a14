"""The GPU path in one command: on one CUDA GPU, at most 8 minutes, every result in one directory.

    python benchmarks/gpu_check.py --out gpu-check                  # one CUDA GPU
    python benchmarks/gpu_check.py --device cpu --tiny --out DIR    # dry run (the test suite's)
    python benchmarks/gpu_check.py --out gpu-check --parts pretrain  # rerun one part

Parts, in order, and the file each leaves in --out:

- env (env.json): GPU name, driver, torch / CUDA / cuDNN / transformers versions, bf16 support.
- pytest (pytest.xml): `pytest -m gpu` over tests/, as junit XML; its text output is in check.log.
- train_step (train_step.json): benchmarks/train_step.py, ours vs transformers' Llama in bf16
  autocast, eager and compiled, at the shapes and batches of configs/tinystories.yaml and
  configs/gpt2-small.yaml: tok/s, MFU against the card's dense bf16 peak, peak memory.
- pretrain (pretrain.json): through the CLI, a synthetic corpus, a tokenizer and token files, then
  `scratchlm train --config configs/tinystories.yaml` for 300 steps (compiled), and two resumes
  from its step-150 checkpoint: losses, tok/s, MFU, peak memory, resume exactness.
- generate (generate.json): benchmarks/generate.py in bf16, batch 1 and 8.

and status.json (each part's status, seconds and time limit), check.log (everything the parts
printed) and summary.md (the tables, and the targets of issue 18).

Each part runs in its own process under its own time limit (BUDGET_S; 465 s together), so a part
that hangs or runs slow, a compilation say, is stopped and the others still run; a part may use
time that earlier parts left unused, never the later parts' share. Parts write their results as
they go, so a stopped part leaves what it had measured. The processes import scratchlm from this
checkout's src/ first. Nothing is downloaded; without transformers the comparisons say "skipped:
transformers not installed".

Resume check: run a trains N steps and saves at N/2 and N; runs b and c each resume from a's N/2
checkpoint. Weights at step N of a and b equal bit for bit is exact. On a GPU two runs from the same
state can differ in the last bits (the flash-attention backward and compiled kernels add in varying
order); then b vs c measures that noise, and the resume passes when a and b differ by at most 3x as
much as b and c (a lost optimizer moment or a shifted batch order differs by far more).

--tiny shrinks every shape and step count and skips compilation (minutes on a CPU): it checks the
plumbing in one to three minutes on a 2-core CPU, and its numbers mean nothing.
"""

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scratchlm.model import ModelConfig

ROOT = Path(__file__).resolve().parents[1]
PARTS = ["env", "pytest", "train_step", "pretrain", "generate"]
# Seconds each part may take on one GPU (compilation dominates); 465 of the 480 in 8 minutes.
BUDGET_S = {"env": 20, "pytest": 75, "train_step": 165, "pretrain": 150, "generate": 55}
TINY_BUDGET_S = 150  # each part of a dry run, generous for a busy CPU
RESULT_FILE = {
    "env": "env.json",
    "pytest": "pytest.xml",
    "train_step": "train_step.json",
    "pretrain": "pretrain.json",
    "generate": "generate.json",
}
SKIPPED_HF = "skipped: transformers not installed"


@dataclass(frozen=True)
class Context:
    """What a part needs: where to write, scratch space, the device, dry run or not, and the time
    at which it will be stopped."""

    out: Path
    work: Path
    device: str
    tiny: bool
    deadline: float

    def left(self) -> float:
        """Seconds until this part is stopped."""
        return self.deadline - time.time()


def write_json(path: Path, data: Any) -> None:
    """Write `data` as JSON through a temporary file, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def transformers_version() -> str | None:
    """transformers' version, or None when it cannot be imported."""
    try:
        import transformers
    except ImportError:
        return None
    return transformers.__version__


# ------------------------------------------------------------------------------------- parts


def part_env(ctx: Context) -> int:
    """env.json: versions, the GPU and its bf16 support, the peak MFU is measured against."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    from scratchlm.train.metrics import peak_flops, run_record

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    cuda = torch.cuda.is_available()
    device = torch.device(ctx.device)
    env = run_record(seed=0, device=device, world_size=1)
    env.update(
        cuda_available=cuda,
        torch_cuda=torch.version.cuda,
        transformers=installed("transformers"),
        triton=installed("triton"),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
    )
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        peak = peak_flops(device)
        env.update(
            gpu=props.name,
            capability=f"{props.major}.{props.minor}",
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            multiprocessors=props.multi_processor_count,
            bf16_supported=torch.cuda.is_bf16_supported(),
            cudnn=torch.backends.cudnn.version(),
            driver=nvidia_driver(),
            peak_bf16_tflops=None if peak is None else peak / 1e12,
        )
    write_json(ctx.out / "env.json", env)
    print(json.dumps(env, indent=2))
    return 0


def nvidia_driver() -> str | None:
    """The driver version nvidia-smi reports, or None without nvidia-smi."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout else None


def train_step_shapes(tiny: bool) -> dict[str, tuple["ModelConfig", int]]:
    """{name: (ModelConfig, batch)}: the tinystories and GPT-2-small presets of configs/."""
    from scratchlm.config import load_config
    from scratchlm.model import ModelConfig
    from scratchlm.train.pretrain import PretrainConfig

    if tiny:
        return {
            "tinystories": (ModelConfig(256, 32, 2, 64, 4), 4),
            "gpt2-small": (ModelConfig(256, 64, 2, 64, 4, tie_embeddings=True), 2),
        }
    shapes = {}
    for name in ("tinystories", "gpt2-small"):
        cfg = load_config(PretrainConfig, ROOT / "configs" / f"{name}.yaml")
        shapes[name] = (cfg.model, cfg.training.batch_size)
    return shapes


def part_train_step(ctx: Context) -> int:
    """train_step.json: one row per (mode, shape), eager rows first; tok/s and MFU per side."""
    import torch
    import train_step

    from scratchlm.runtime import autocast_dtype
    from scratchlm.train.metrics import mfu, peak_flops

    device = torch.device(ctx.device)
    hf_version = transformers_version()
    sides = ("ours", "hf") if hf_version else ("ours",)
    plan = train_step.Plan(1, 0, 1, 2) if ctx.tiny else train_step.Plan()
    peak = peak_flops(device)
    result: dict[str, Any] = {
        "autocast": str(autocast_dtype(device)),
        "transformers": hf_version,
        "peak_flops": peak,
        "plan": asdict(plan),
        "rows": [],
    }
    for mode in ("eager", "compile"):
        for name, (config, batch) in train_step_shapes(ctx.tiny).items():
            row: dict[str, Any] = {
                "shape": name,
                "mode": mode,
                "batch": batch,
                "model": config.to_dict(),
            }
            if mode == "compile" and ctx.tiny:
                row["skipped"] = "--tiny runs eager only (compiling takes minutes on a CPU)"
            elif ctx.left() < 15:
                row["skipped"] = f"not enough time left ({ctx.left():.0f} s)"
            else:
                print(f"train step: {name}, {mode}, batch {batch}", flush=True)
                times = train_step.measure(config, batch, [mode], plan, device, sides)
                tokens = batch * config.context_length
                for side in sides:
                    rate = tokens / statistics.median(times[mode, side].seconds)
                    row[f"{side}_tok_per_s"] = rate
                    if peak is not None:
                        row[f"{side}_mfu"] = mfu(rate, config.flops_per_token(), peak)
                torch._dynamo.reset()  # drop compiled graphs before the next shape
            if "hf" not in sides:
                row["hf"] = SKIPPED_HF
            result["rows"].append(row)
            write_json(ctx.out / "train_step.json", result)
    return 0


def part_pretrain(ctx: Context) -> int:
    """pretrain.json: a synthetic corpus made here, then runs a, b, c of `scratchlm train`.

    The runs have no tokenizer (no text samples, no bits per byte): the synthetic stories support
    about 4,400 BPE tokens, fewer than the preset's 10,000-token vocabulary, and a sample holding an
    id past the tokenizer's could not be decoded.
    """
    import torch

    from scratchlm.cli import main as scratchlm
    from scratchlm.data.prepare import tokenize_file
    from scratchlm.data.synth import write_corpus
    from scratchlm.tokenizer import Tokenizer, train_bpe
    from scratchlm.train.checkpoint import checkpoint_dir

    work, out = ctx.work / "pretrain", ctx.out / "pretrain.json"
    data = work / "data"
    steps = 8 if ctx.tiny else 300
    half = steps // 2
    start = time.perf_counter()
    corpus = write_corpus(data, size_mb=0.2 if ctx.tiny else 8.0)
    vocab, merges = train_bpe(data / "train.txt", 320 if ctx.tiny else 2048, ["<|endoftext|>"])
    Tokenizer(vocab, merges, ["<|endoftext|>"]).save(data / "tokenizer")
    tokens = [tokenize_file(data / f"{split}.txt", data / f"{split}.npy", data / "tokenizer")
              for split in ("train", "valid")]  # fmt: skip
    overrides = [
        f"data.train_path={data / 'train.npy'}",
        f"data.val_path={data / 'valid.npy'}",
        "data.tokenizer_dir=null",
        f"training.steps={steps}",
        f"training.checkpoint_interval={half}",
        f"training.device={ctx.device}",
        f"schedule.warmup_steps={steps // 10}",
        f"training.eval_interval={half}",
        f"training.log_interval={2 if ctx.tiny else 25}",
    ]
    if ctx.tiny:
        overrides += ("model.vocab_size=512 model.context_length=64 model.num_layers=1 "
                      "model.d_model=32 model.num_heads=2 model.d_ff=64 training.batch_size=4 "
                      "training.compile=false").split()  # fmt: skip
    made = {
        "mb": (corpus.train_bytes + corpus.valid_bytes) / 1e6,
        "tokenizer_vocab": len(vocab),
        "tokens": [t.num_tokens for t in tokens],
        "seconds": time.perf_counter() - start,
    }
    result: dict[str, Any] = {"config": "configs/tinystories.yaml", "overrides": overrides,
                              "steps": steps, "corpus": made, "wall_s": {}}  # fmt: skip

    def train(name: str, *resume: object) -> None:
        """`scratchlm train` into run directory `name`, in this process as the console script
        runs it; a failure ends the part."""
        argv = ["train", "--config", str(ROOT / "configs" / "tinystories.yaml"), *map(str, resume),
                *overrides, f"logging.out_dir={work / name}"]  # fmt: skip
        print("$ scratchlm " + " ".join(argv), flush=True)
        began = time.perf_counter()
        if scratchlm(argv) != 0:
            raise SystemExit(f"run {name}: scratchlm train failed (see above)")
        result["wall_s"][name] = time.perf_counter() - began

    cuda = ctx.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    train("a")
    if cuda:
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    result.update(loss_report(work / "a" / "metrics.jsonl"))
    write_json(out, result)

    middle = checkpoint_dir(work / "a" / "checkpoints", half)
    train("b", "--resume", middle)
    final = {name: checkpoint_dir(work / name / "checkpoints", steps) for name in "abc"}
    resume = {"from_step": half, **weight_diff(final["a"], final["b"])}
    resume["loss_max_abs_diff"] = loss_diff(work / "a", work / "b", after=half)
    result["resume"] = resume
    write_json(out, result)
    if not resume["bitwise_equal"] and ctx.left() > 1.5 * result["wall_s"]["b"] + 5:
        train("c", "--resume", middle)  # the noise floor: two resumes from the same state
        noise = weight_diff(final["b"], final["c"])
        resume["noise_bitwise_equal"] = noise["bitwise_equal"]
        resume["noise_rel_l2_diff"] = noise["rel_l2_diff"]
    resume["exact"] = resume_verdict(resume)
    write_json(out, result)
    passed = result["loss_finite"] and result["loss_falling"] and resume["exact"] is not False
    return 0 if passed else 1


def loss_report(metrics: Path) -> dict[str, Any]:
    """Losses, tok/s and MFU of one run's metrics.jsonl; rates leave out the first interval,
    which holds the compilation."""
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    rates = [r["tok_per_s"] for r in records if "tok_per_s" in r]
    mfus = [r["mfu"] for r in records if "mfu" in r]
    finite = all(math.isfinite(loss) for _, loss in train + val)
    return {
        "train_loss": train,
        "val_loss": val,
        "loss_finite": finite,
        "loss_falling": finite and train[-1][1] < train[0][1] and val[-1][1] < val[0][1],
        "tok_per_s": statistics.median(rates[1:] or rates),
        "mfu": statistics.median(mfus[1:] or mfus) if mfus else None,
    }


def weight_diff(a: Path, b: Path) -> dict[str, Any]:
    """How far the weights of checkpoints a and b are apart: bitwise equal, the largest absolute
    difference and the L2 norm of the difference over the L2 norm of a's weights."""
    import torch
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    diffs = [wa[k].double() - wb[k].double() for k in wa]
    norm = math.sqrt(sum(float(w.double().square().sum()) for w in wa.values()))
    return {
        "bitwise_equal": all(torch.equal(wa[k], wb[k]) for k in wa),
        "max_abs_diff": max(float(d.abs().max()) for d in diffs),
        "rel_l2_diff": math.sqrt(sum(float(d.square().sum()) for d in diffs)) / norm,
    }


def loss_diff(a: Path, b: Path, after: int) -> float:
    """Largest difference between the training losses runs a and b logged after step `after`."""
    losses = []
    for run in (a, b):
        lines = (run / "metrics.jsonl").read_text().splitlines()
        losses.append({r["step"]: r["loss"] for r in map(json.loads, lines) if "loss" in r})
    common = [s for s in losses[1] if s > after and s in losses[0]]
    return max(abs(losses[0][s] - losses[1][s]) for s in common)


def resume_verdict(resume: dict[str, Any]) -> bool | None:
    """True: bitwise equal, or within 3x the noise of two resumes; None: no noise measured."""
    if resume["bitwise_equal"]:
        return True
    if "noise_rel_l2_diff" not in resume:
        return None
    return not resume["noise_bitwise_equal"] and (
        resume["rel_l2_diff"] <= 3 * resume["noise_rel_l2_diff"]
    )


def part_generate(ctx: Context) -> int:
    """generate.json: benchmarks/generate.py's sides at batch 1 and 8, bf16 on CUDA."""
    import torch
    from generate import add_arguments, build_models, compare

    from scratchlm.model import ModelConfig
    from scratchlm.runtime import DTYPES

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = ["--device", ctx.device, "--dtype", "bfloat16" if ctx.device == "cuda" else "float32"]
    if ctx.tiny:
        argv += "--new-tokens 8 --vocab 256 --layers 1 --d-model 32 --heads 2 --d-ff 64".split()
        argv += ["--repeats", "1"]
    args = parser.parse_args(argv)
    context = args.prompt_len + args.new_tokens
    config = ModelConfig(args.vocab, context, args.layers, args.d_model, args.heads, args.d_ff)
    hf_version = transformers_version()
    device = torch.device(args.device)
    model, hf = build_models(config, device, DTYPES[args.dtype], with_hf=hf_version is not None)
    result: dict[str, Any] = {
        "args": vars(args),
        "model": config.to_dict(),
        "transformers": hf_version or SKIPPED_HF,
        "rows": [],
    }
    for batch in args.batch_sizes:
        if ctx.left() < 10:
            row = {"batch": batch, "skipped": f"not enough time left ({ctx.left():.0f} s)"}
        else:
            print(f"generate: batch {batch}", flush=True)
            row = compare(model, hf, batch, args)
        result["rows"].append(row)
        write_json(ctx.out / "generate.json", result)
    return 0


PART_FUNCTIONS = {
    "env": part_env,
    "train_step": part_train_step,
    "pretrain": part_pretrain,
    "generate": part_generate,
}


# ----------------------------------------------------------------------------------- running


def part_command(name: str, args: argparse.Namespace, work: Path, deadline: float) -> list[str]:
    """The command line of one part: pytest itself, or this script with --part."""
    if name == "pytest":
        where = ["tests/test_gpu.py"] if args.tiny else ["tests"]
        flags = "-q -p no:cacheprovider --continue-on-collection-errors".split()
        return [sys.executable, "-m", "pytest", "-m", "gpu", *where, *flags,
                f"--junitxml={args.out / 'pytest.xml'}"]  # fmt: skip
    command = [sys.executable, __file__, "--part", name, "--out", str(args.out), "--work",
               str(work), "--device", args.device, "--deadline", f"{deadline:.1f}"]  # fmt: skip
    return command + (["--tiny"] if args.tiny else [])


def run_part(command: list[str], timeout: float, log: Path) -> tuple[str, int | None]:
    """Run a part in its own process group, output appended to `log`; (status, exit code).

    A part past its time is killed with everything it started (compile workers too).
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    with log.open("a") as sink:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        try:
            rc = proc.wait(timeout=timeout)
        except (subprocess.TimeoutExpired, KeyboardInterrupt) as exc:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if isinstance(exc, KeyboardInterrupt):
                raise
            return f"timed out after {timeout:.0f} s", None
    return ("ok" if rc == 0 else "failed"), rc


def check(args: argparse.Namespace, work: Path) -> int:
    """Run the chosen parts in order, then write status.json and summary.md; 0 if all passed."""
    budgets = {p: TINY_BUDGET_S if args.tiny else BUDGET_S[p] for p in args.parts}
    start = time.time()
    deadline = start + sum(budgets.values()) + 10
    for name in args.parts:  # results of an earlier run must not pass for this one's
        (args.out / RESULT_FILE[name]).unlink(missing_ok=True)
    log = args.out / "check.log"
    log.write_text("")
    status: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": args.device,
        "tiny": args.tiny,
        "parts": {},
    }
    for i, name in enumerate(args.parts):
        later = sum(budgets[p] for p in args.parts[i + 1 :])
        timeout = max(5.0, deadline - time.time() - later - 5)
        print(
            f"gpu_check [{i + 1}/{len(args.parts)}] {name} (limit {timeout:.0f} s) ...",
            end=" ",
            flush=True,
        )
        with log.open("a") as sink:
            sink.write(f"\n===== {name} (limit {timeout:.0f} s) =====\n")
        began = time.time()
        command = part_command(name, args, work, began + timeout)
        state, rc = run_part(command, timeout, log)
        seconds = time.time() - began
        print(f"{state} ({seconds:.1f} s)", flush=True)
        status["parts"][name] = {
            "status": state,
            "exit_code": rc,
            "seconds": round(seconds, 1),
            "limit_s": round(timeout),
            "output": RESULT_FILE[name],
        }
        write_json(args.out / "status.json", status)
    status["total_s"] = round(time.time() - start, 1)
    write_json(args.out / "status.json", status)
    summary = render_summary(args.out, status)
    tmp = args.out / "summary.md.tmp"
    tmp.write_text(summary)
    tmp.replace(args.out / "summary.md")
    print(f"\n{summary}\nwrote {args.out}/summary.md ({status['total_s']:.0f} s)")
    return 0 if all(p["status"] == "ok" for p in status["parts"].values()) else 1


# ----------------------------------------------------------------------------------- summary


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def fmt(value: float | None, spec: str = ",.0f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def junit_counts(path: Path) -> dict[str, Any] | None:
    """Test counts and the names of failed tests from a junit XML file, or None."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    cases = list(root.iter("testcase"))
    failed = [
        f"{c.get('classname')}::{c.get('name')}"
        for c in cases
        if c.find("failure") is not None or c.find("error") is not None
    ]
    skipped = sum(c.find("skipped") is not None for c in cases)
    return {
        "tests": len(cases),
        "failed": failed,
        "skipped": skipped,
        "passed": len(cases) - len(failed) - skipped,
    }


def render_summary(out: Path, status: dict[str, Any]) -> str:
    """summary.md: the parts' status, then one section per part that ran, then the targets."""
    ran = {name: read_json(out / RESULT_FILE[name]) for name in status["parts"] if name != "pytest"}
    env = ran.get("env") or {}
    lines = [f"# GPU check: {env.get('gpu') or status['device']}", ""]
    if status["tiny"] or status["device"] == "cpu":
        lines += ["Dry run (`--tiny` / CPU): tiny shapes, few steps; the numbers mean nothing.", ""]
    lines.append(f"`{status['command']}`, started {status['started']}, {status['total_s']} s.")
    if env:
        lines.append(
            f"torch {env['torch']} (CUDA {env['torch_cuda']}), driver {env.get('driver')}, bf16 "
            f"{env.get('bf16_supported')}, transformers {env['transformers']}, dense bf16 peak "
            f"{fmt(env.get('peak_bf16_tflops'))} TFLOP/s, {env['cpu_count']} CPU cores, git "
            f"{env['git_sha']}{' (dirty)' if env['git_dirty'] else ''}."
        )
    lines += ["", "| part | status | seconds | limit s | output |", "|---|---|---|---|---|"]
    for name, p in status["parts"].items():
        lines.append(f"| {name} | {p['status']} | {p['seconds']} | {p['limit_s']} | "
                     f"{RESULT_FILE[name]} |")  # fmt: skip
    if "pytest" in status["parts"]:
        lines += ["", "## pytest -m gpu", ""] + pytest_lines(out)
    sections = [("train_step", "Train step", train_step_lines),
                ("pretrain", "Pretraining", pretrain_lines),
                ("generate", "Generate", generate_lines)]  # fmt: skip
    for name, title, render in sections:
        if ran.get(name):
            lines += ["", f"## {title}", ""] + render(ran[name])
    if ran.get("train_step") or ran.get("generate"):
        targets = target_lines(ran.get("train_step"), ran.get("generate"))
        lines += ["", "## Targets (issue 18)", ""] + targets
    return "\n".join(lines) + "\n"


def pytest_lines(out: Path) -> list[str]:
    counts = junit_counts(out / "pytest.xml")
    if counts is None:
        return ["no pytest.xml (see check.log)"]
    lines = [
        f"{counts['passed']} passed, {len(counts['failed'])} failed or errors, "
        f"{counts['skipped']} skipped, of {counts['tests']} (pytest.xml)"
    ]
    return lines + [f"- failed: `{name}`" for name in counts["failed"]]


def train_step_lines(data: dict[str, Any]) -> list[str]:
    dtype = data["autocast"].removeprefix("torch.")
    forward = "Forward in float32" if dtype == "float32" else f"Forward under {dtype} autocast"
    lines = [
        f"{forward}, fp32 loss, backward, AdamW (ours: scratchlm "
        "AdamW + cross_entropy; HF: LlamaForCausalLM with SDPA, torch.optim.AdamW, "
        "F.cross_entropy), same weights; median step of "
        f"{data['plan']['rounds']} x {data['plan']['steps_per_round']} timed steps.",
        "",
        "| shape | batch x T | mode | ours tok/s | HF tok/s | ours / HF | ours / HF eager "
        "| MFU ours | MFU HF |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    eager = {r["shape"]: r.get("hf_tok_per_s") for r in data["rows"] if r["mode"] == "eager"}
    for r in data["rows"]:
        head = f"| {r['shape']} | {r['batch']} x {r['model']['context_length']} | {r['mode']} |"
        if "skipped" in r:
            lines.append(f"{head} {r['skipped']} | | | | | |")
            continue
        ours, hf, hf_eager = r["ours_tok_per_s"], r.get("hf_tok_per_s"), eager.get(r["shape"])
        ratio = fmt(ours / hf, ".2f", "x") if hf else r.get("hf", "-")
        vs_eager = fmt(ours / hf_eager, ".2f", "x") if hf_eager else "-"
        lines.append(
            f"{head} {fmt(ours)} | {fmt(hf)} | {ratio} | {vs_eager} | "
            f"{pct(r.get('ours_mfu'))} | {pct(r.get('hf_mfu'))} |"
        )
    return lines


def pretrain_lines(data: dict[str, Any]) -> list[str]:
    c = data["corpus"]
    lines = [
        f"`scratchlm train --config {data['config']}`, {data['steps']} steps, on synthetic stories "
        f"made on the spot ({c['mb']:.1f} MB, {c['tokenizer_vocab']:,}-token BPE, "
        f"{c['tokens'][0]:,} training tokens; {c['seconds']:.1f} s), without a tokenizer in the "
        "run (no samples, no bits per byte). Overrides in pretrain.json.",
        "",
        "| what | value |",
        "|---|---|",
    ]
    if "train_loss" in data:
        walls = data["wall_s"].items()
        (s0, l0), (s1, l1) = data["train_loss"][0], data["train_loss"][-1]
        (v0, vl0), (v1, vl1) = data["val_loss"][0], data["val_loss"][-1]
        verdict = "finite" if data["loss_finite"] else "NOT finite"
        verdict += ", falling" if data["loss_falling"] else ", NOT falling"
        lines += [
            f"| train loss, step {s0} -> {s1} | {l0:.3f} -> {l1:.3f} ({verdict}) |",
            f"| val loss, step {v0} -> {v1} | {vl0:.3f} -> {vl1:.3f} |",
            f"| tok/s (median logged interval, compilation left out) | {fmt(data['tok_per_s'])} |",
            f"| MFU | {pct(data['mfu'])} |",
            f"| peak memory allocated | {fmt(data.get('peak_memory_gib'), '.2f', ' GiB')} |",
            f"| wall seconds per run | {', '.join(f'{k} {v:.1f}' for k, v in walls)} |",
        ]
    resume = data.get("resume")
    if resume:
        noise = resume.get("noise_rel_l2_diff")
        verdict = {True: "exact", False: "NOT exact", None: "unknown (no noise run)"}
        lines += [
            f"| resume from step {resume['from_step']}: weights at the end | "
            f"{'bitwise equal' if resume['bitwise_equal'] else 'differ'}: max abs "
            f"{resume['max_abs_diff']:.3g}, rel L2 {resume['rel_l2_diff']:.3g} (two resumes: "
            f"{fmt(noise, '.3g')}) -> {verdict[resume.get('exact')]} |",
            f"| resume: largest logged loss difference | {resume['loss_max_abs_diff']:.3g} |",
        ]
    return lines


def generate_lines(data: dict[str, Any]) -> list[str]:
    args = data["args"]
    lines = [
        f"Greedy, {args['new_tokens']} new tokens after a {args['prompt_len']}-token prompt, "
        f"{args['dtype']}, {args['device']}; transformers {data['transformers']}.",
        "",
        "| batch | ours tok/s | transformers tok/s | ours / transformers | no cache "
        "| no cache, last head | rows as transformers | rows as no cache |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        if "skipped" in r:
            lines.append(f"| {r['batch']} | {r['skipped']} | | | | | | |")
            continue
        tps = r["tok_per_s"]
        ours, hf = tps["ours (cache)"], tps.get("transformers")
        ratio = fmt(ours / hf, ".2f", "x") if hf else SKIPPED_HF
        same = r["identical_to_transformers"]
        lines.append(
            f"| {r['batch']} | {fmt(ours)} | {fmt(hf)} | {ratio} | "
            f"{fmt(tps['no cache'])} | {fmt(tps['no cache, last head'])} | "
            f"{'-' if same is None else same}/{r['batch']} | "
            f"{r['identical_to_no_cache']}/{r['batch']} |"
        )
    return lines


def target_lines(train_step: dict[str, Any] | None, generate: dict[str, Any] | None) -> list[str]:
    """Each target with the figure it is judged on: met, missed or not measured."""
    rows = [r for r in (train_step or {}).get("rows", []) if "ours_tok_per_s" in r]
    step = {}
    for mode in ("eager", "compile"):
        ratios = [r["ours_tok_per_s"] / r["hf_tok_per_s"] for r in rows
                  if r["mode"] == mode and "hf_tok_per_s" in r]  # fmt: skip
        step[mode] = min(ratios, default=None)
    compiled = [r for r in rows if r["shape"] == "gpt2-small" and r["mode"] == "compile"]
    gpt2_mfu = compiled[0].get("ours_mfu") if compiled else None
    rates = [r["tok_per_s"] for r in (generate or {}).get("rows", []) if "tok_per_s" in r]
    gen = min((t["ours (cache)"] / t["transformers"] for t in rates if "transformers" in t),
              default=None)  # fmt: skip
    targets = [
        ("train step >= 1.0x transformers, bf16 eager (worst shape)", step["eager"], 1.0, "x"),
        ("train step >= 1.0x transformers, bf16 compiled (worst shape)", step["compile"], 1.0, "x"),
        ("MFU >= 40% at the GPT-2-small shape, compiled", gpt2_mfu, 0.4, "%"),
        ("generation >= 1.0x transformers (worst batch)", gen, 1.0, "x"),
    ]
    lines = ["| target | measured | met |", "|---|---|---|"]
    for what, value, goal, unit in targets:
        shown = pct(value) if unit == "%" else fmt(value, ".2f", "x")
        met = "not measured" if value is None else "yes" if value >= goal else "no"
        lines.append(f"| {what} | {shown} | {met} |")
    return lines


# -------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="results folder")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes, few steps: a dry run")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS, help="default: all")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    parser.add_argument("--part", choices=list(PART_FUNCTIONS), help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=math.inf, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.parts = [p for p in PARTS if p in args.parts]  # in order, once each
    if args.part:
        ctx = Context(args.out, args.work, args.device, args.tiny, args.deadline)
        return PART_FUNCTIONS[args.part](ctx)

    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file; give a folder")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print(
                f"error: torch {torch.__version__} sees no CUDA GPU here; run this on a GPU "
                "machine, or add --device cpu --tiny for a dry run",
                file=sys.stderr,
            )
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    args.out = args.out.resolve()
    try:
        if args.work is not None:
            args.work.mkdir(parents=True, exist_ok=True)
            return check(args, args.work.resolve())
        with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
            return check(args, Path(work))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
