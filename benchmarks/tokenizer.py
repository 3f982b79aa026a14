"""Tokenizer benchmark: BPE training, ours vs HF `tokenizers` (and `rustbpe` if installed).

Every trainer runs in a fresh process, so its peak RSS is its own: the number reported is the
trainer process's peak plus the largest peak among its child processes (our pre-tokenization
workers; HF and rustbpe use threads). The trainers alternate over --rounds rounds, so background
load hits them alike; times are medians. As a sanity check, the table also counts how many of
each trainer's leading merged tokens equal ours (HF breaks count ties differently, so they
drift apart after a while; a difference in the first few hundred merges would point at a bug).

    python benchmarks/tokenizer.py --data-path ../shared/data/mix_6M.txt
"""

import argparse
import importlib.util
import json
import multiprocessing
import resource
import statistics
import time
from pathlib import Path

from scratchlm.tokenizer import train_bpe
from scratchlm.tokenizer.files import char_to_byte
from scratchlm.tokenizer.pretokenize import GPT2_PATTERN


def train_ours(path: str, vocab_size: int, special: str, num_processes: int) -> list[bytes]:
    merges = train_bpe(path, vocab_size, [special], num_processes=num_processes)[1]
    return [a + b for a, b in merges]


def train_hf(path: str, vocab_size: int, special: str, num_processes: int) -> list[bytes]:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[special],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train([path], trainer)
    table = char_to_byte()
    merges = json.loads(tok.to_str())["model"]["merges"]
    pairs = [m.split(" ") if isinstance(m, str) else m for m in merges]
    return [bytes(table[c] for c in a + b) for a, b in pairs]


def train_rustbpe(path: str, vocab_size: int, special: str, num_processes: int) -> list[bytes]:
    import rustbpe

    text = Path(path).read_text(encoding="utf-8")
    tok = rustbpe.Tokenizer()
    # rustbpe has no special tokens: split the documents out and leave one id for the special.
    tok.train_from_iterator(text.split(special), vocab_size - 1, pattern=GPT2_PATTERN)
    ranks = sorted(tok.get_mergeable_ranks(), key=lambda item: item[1])
    return [token for token, _ in ranks[256:]]


TRAINERS = {"ours": train_ours, "hf": train_hf, "rustbpe": train_rustbpe}


def _run_trainer(name: str, args: tuple, queue: multiprocessing.Queue) -> None:
    start = time.perf_counter()
    merges = TRAINERS[name](*args)
    seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    queue.put((seconds, (own + children) / 1024, merges))


def run_trainer(name: str, args: tuple) -> tuple[float, float, list[bytes]]:
    """(seconds, peak RSS MiB, merged tokens in order) of one run in a fresh process."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run_trainer, args=(name, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def leading_equal(a: list[bytes], b: list[bytes]) -> int:
    """How many merged tokens at the start of `a` and `b` are equal."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def bench_training(args: argparse.Namespace) -> float:
    """Print the training table; return HF time / our time."""
    names = ["ours", "hf"] + (["rustbpe"] if importlib.util.find_spec("rustbpe") else [])
    call = (str(args.data_path), args.vocab_size, args.special_token, args.num_processes)
    times: dict[str, list[float]] = {n: [] for n in names}
    peaks: dict[str, float] = dict.fromkeys(names, 0.0)
    merges: dict[str, list[bytes]] = {}
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            seconds, peak, merges[name] = run_trainer(name, call)
            times[name].append(seconds)
            peaks[name] = max(peaks[name], peak)
    median = {n: statistics.median(t) for n, t in times.items()}
    size_mb = args.data_path.stat().st_size / 1e6
    print(
        f"\nBPE training: {args.data_path.name} ({size_mb:.1f} MB), vocab {args.vocab_size:,}, "
        f"special {args.special_token}, our workers {args.num_processes}, "
        f"median of {args.rounds}\n"
    )
    print("| trainer | time (s) | time / ours | peak RSS (MiB) | leading merges same as ours |")
    print("|---|---|---|---|---|")
    for name in names:
        same = leading_equal(merges[name], merges["ours"])
        print(
            f"| {name} | {median[name]:.2f} | {median[name] / median['ours']:.2f} | "
            f"{peaks[name]:.0f} | {same} |"
        )
    return median["hf"] / median["ours"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-path", type=Path, required=True, help="UTF-8 text file")
    parser.add_argument("--vocab-size", type=int, default=10_000)
    parser.add_argument("--special-token", default="<|endoftext|>")
    parser.add_argument("--num-processes", type=int, default=2, help="our pre-tokenize workers")
    parser.add_argument("--rounds", type=int, default=3, help="training runs per trainer")
    args = parser.parse_args()
    train_ratio = bench_training(args)
    print(f"\nbench_tokenizer: train ratio={train_ratio:.2f} (HF time / our time; target >= 0.5)")


if __name__ == "__main__":
    main()
