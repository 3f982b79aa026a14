"""How robust are the speedrun's task rates? The whole speedrun once per seed, then mean and spread.

Each seed is a separate `scratchlm speedrun` through the CLI, as a user runs it, with every seeded
part of the pipeline moved together: the synthetic corpus, pretraining's batch order and init, the
task data, the SFT and DPO batch orders and the on-policy pairs. The graded instructions stay the
same 200 (seed 1234), so the spread is that of the training, not of the grading.

    python benchmarks/speedrun_seeds.py --seeds 3 --out /tmp/seeds            # cpu preset
    python benchmarks/speedrun_seeds.py --seeds 3 --parallel 3 --threads 1   # all at once

A seed whose run directory already holds a finished speedrun is read back, not run again (so a
run made by hand, e.g. the README's `scratchlm speedrun` copied to OUT/seed-0, joins the table).

Prints, per stage: the overall rate, the story and arithmetic rates, each as the mean over seeds
and the spread (max - min), then the seconds of each run and its pretraining bits per byte.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

SEEDED = ("corpus.seed", "pretrain.training.seed", "posttrain.seed", "sft.training.seed",
          "dpo.training.seed", "grpo.training.seed")  # fmt: skip


def command(preset: str, out: Path, seed: int, overrides: list[str]) -> list[str]:
    seeds = [f"{key}={seed}" for key in SEEDED]
    return ["scratchlm", "speedrun", "--preset", preset, "--out", str(out), *seeds, *overrides]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/speedrun-seeds"))
    parser.add_argument("--parallel", type=int, default=1, help="runs at the same time")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS per run")
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE for every run")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    runs = {s: args.out / f"seed-{s}" for s in seeds}
    pending = [s for s in seeds if not (runs[s] / "stages/evaluate.json").exists()]  # else reused
    while pending:
        batch, pending = pending[: args.parallel], pending[args.parallel :]
        procs = []
        for s in batch:
            runs[s].parent.mkdir(parents=True, exist_ok=True)
            log = (args.out / f"seed-{s}.log").open("w")
            cmd = command(args.preset, runs[s], s, args.overrides)
            print(" ".join(cmd), flush=True)
            procs.append((s, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)))
        for s, proc in procs:
            if proc.wait() != 0:
                sys.exit(f"seed {s} failed: see {args.out}/seed-{s}.log")
    rates = {s: json.loads((runs[s] / "stages/evaluate.json").read_text())["rates"] for s in seeds}
    stages = list(rates[seeds[0]])
    print(f"\n{args.preset} speedrun, seeds {seeds}: rate on the same 200 instructions, mean "
          f"(spread = max - min over seeds)")  # fmt: skip
    print("| stage | rate | story | arithmetic | per seed (rate / story / arithmetic) |")
    print("|---|---|---|---|---|")
    for stage in stages:
        cells = []
        for key in ("rate", "rate_story", "rate_arithmetic"):
            values = [rates[s][stage][key] for s in seeds]
            cells.append(f"{statistics.mean(values):.3f} ({max(values) - min(values):.3f})")
        each = ", ".join(
            f"{rates[s][stage]['rate']:.2f} / {rates[s][stage]['rate_story']:.2f} / "
            f"{rates[s][stage]['rate_arithmetic']:.2f}"
            for s in seeds
        )
        print(f"| {stage} | {' | '.join(cells)} | {each} |")
    for s in seeds:
        stage_seconds = [json.loads(p.read_text())["seconds"] for p in
                         sorted((runs[s] / "stages").glob("*.json"))]  # fmt: skip
        pretrain = json.loads((runs[s] / "stages/pretrain.json").read_text())
        print(f"seed {s}: {sum(stage_seconds):.0f} s in stages, pretraining val bpb "
              f"{pretrain['metrics']['val_bpb']:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
