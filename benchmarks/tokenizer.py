"""Tokenizer benchmark: BPE training and encoding, ours vs HF `tokenizers`, tiktoken, rustbpe.

Training (vocab --vocab-size on --data-path). Every trainer runs in a fresh process, so its peak
RSS is its own: the number reported is the trainer process's peak plus the largest peak among its
child processes (our pre-tokenization workers; HF and rustbpe use threads). The trainers
alternate over --rounds rounds, so background load hits them alike; times are medians. As a
sanity check, the table counts how many of each trainer's leading merged tokens equal ours (HF
breaks count ties differently, so they drift apart after a while; a difference in the first few
hundred merges would point at a bug).

Encoding (the text of --encode-path, cut into --pieces pieces at special tokens), with the
tokenizer trained above: our reference encoder (plain Python), our fast path (tiktoken built
from our ranks, behind our special-token splitting), tiktoken itself with the same ranks, HF
`tokenizers` loading our tokenizer.json, and tiktoken with GPT-2's ranks when --gpt2-dir holds
gpt2_vocab.json. One worker encodes the pieces in turn. Two workers are two threads (tiktoken
and HF release the GIL), or two fresh processes for our reference encoder, which send back only
token counts. Our reference starts each run with an empty cache. Before timing, the script
checks that every encoder with our vocabulary gives the same ids on the whole text.

    python benchmarks/tokenizer.py --data-path ../shared/data/mix_6M.txt \
        --encode-path ../shared/data/tinystories_1M.txt --gpt2-dir ../shared/data
"""

import argparse
import importlib.util
import json
import multiprocessing
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import tiktoken
import tokenizers

from scratchlm.tokenizer import Tokenizer, train_bpe
from scratchlm.tokenizer.bpe import save_tokenizer_dir
from scratchlm.tokenizer.files import char_to_byte, read_vocab
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


def split_text(text: str, special: str, pieces: int) -> list[str]:
    """`text` cut into about `pieces` parts, each cut just before a special token."""
    target = max(1, len(text) // pieces)
    parts, start = [], 0
    while start < len(text):
        cut = text.find(special, start + target)
        cut = len(text) if cut == -1 else cut
        parts.append(text[start:cut])
        start = cut
    return parts


def tiktoken_encoding(name: str, vocab: dict[int, bytes], special: str) -> tiktoken.Encoding:
    """A tiktoken Encoding with `vocab`'s ids as ranks; `special` keeps its id or takes the next."""
    ranks = {tok: i for i, tok in vocab.items() if tok != special.encode()}
    special_id = next((i for i, tok in vocab.items() if tok == special.encode()), len(vocab))
    return tiktoken.Encoding(
        name=name,
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={special: special_id},
    )


_worker_tokenizer: Tokenizer | None = None


def _load_worker_tokenizer(directory: str) -> None:
    global _worker_tokenizer
    _worker_tokenizer = Tokenizer.from_dir(directory)


def _count_reference(text: str) -> int:
    return len(_worker_tokenizer.encode_reference(text))


def encoders(
    directory: Path, special: str, gpt2_dir: Path | None
) -> dict[str, tuple[Callable[[], Callable[[list[str]], object]], ...]]:
    """name -> (setup for one worker, setup for two workers). A setup, run outside the timing,
    returns the function that encodes the text pieces."""
    ours = Tokenizer.from_dir(directory)
    ours.encode("warm up the fast path")
    ranked = tiktoken_encoding("ours", ours.vocab, special)
    hf = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))

    def reference_one() -> Callable[[list[str]], object]:
        fresh = Tokenizer(ours.vocab, ours.merges, ours.special_tokens)
        return lambda parts: [fresh.encode_reference(p) for p in parts]

    def reference_two() -> Callable[[list[str]], object]:
        pool = multiprocessing.get_context("spawn").Pool(
            2, _load_worker_tokenizer, (str(directory),)
        )
        pool.map(_count_reference, ["warm up"] * 8, chunksize=1)

        def run(parts: list[str]) -> int:
            with pool:
                return sum(pool.map(_count_reference, parts, chunksize=1))

        return run

    table = {
        "ours, reference": (reference_one, reference_two),
        "ours, fast path": (
            lambda: lambda parts: [ours.encode(p) for p in parts],
            lambda: lambda parts: ours.encode_batch(parts, num_threads=2),
        ),
        "tiktoken, our ranks": (
            lambda: lambda parts: [ranked.encode(p, allowed_special="all") for p in parts],
            lambda: lambda parts: ranked.encode_batch(parts, num_threads=2, allowed_special="all"),
        ),
        "HF tokenizers, our files": (
            lambda: lambda parts: [hf.encode(p).ids for p in parts],
            lambda: lambda parts: [e.ids for e in hf.encode_batch(parts)],
        ),
    }
    if gpt2_dir is not None:
        vocab = read_vocab(gpt2_dir / "gpt2_vocab.json", [special])
        gpt2 = tiktoken_encoding("gpt2", vocab, special)
        table["tiktoken, GPT-2 ranks"] = (
            lambda: lambda parts: [gpt2.encode(p, allowed_special="all") for p in parts],
            lambda: lambda parts: gpt2.encode_batch(parts, num_threads=2, allowed_special="all"),
        )
    return table


def bench_encoding(args: argparse.Namespace, directory: Path) -> float:
    """Print the encoding table; return our fast path's MB/s / tiktoken's (same ranks, 1 worker)."""
    text = args.encode_path.read_text(encoding="utf-8")
    parts = split_text(text, args.special_token, args.pieces)
    mb = len(text.encode("utf-8")) / 1e6
    table = encoders(directory, args.special_token, args.gpt2_dir)

    whole = [table[name][0]()([text])[0] for name in list(table)[:4]]
    same = all(ids == whole[0] for ids in whole)
    print(f"\nids identical across our vocabulary's encoders on the whole text: {same}")

    rates: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for name, setups in table.items():
            for workers, setup in zip((1, 2), setups, strict=True):
                run = setup()
                start = time.perf_counter()
                run(parts)
                rates.setdefault((name, workers), []).append(mb / (time.perf_counter() - start))
    rate = {key: statistics.median(r) for key, r in rates.items()}
    base = rate[("tiktoken, our ranks", 1)]
    print(
        f"\nEncoding: {args.encode_path.name} ({mb:.1f} MB in {len(parts)} pieces), "
        f"median of {args.rounds}\n"
    )
    print("| encoder | MB/s, 1 worker | MB/s, 2 workers | 1 worker / tiktoken (our ranks) |")
    print("|---|---|---|---|")
    for name in table:
        one, two = rate[(name, 1)], rate[(name, 2)]
        print(f"| {name} | {one:.2f} | {two:.2f} | {one / base:.2f} |")
    return rate[("ours, fast path", 1)] / base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-path", type=Path, required=True, help="UTF-8 training text")
    parser.add_argument("--encode-path", type=Path, help="text to encode (default: --data-path)")
    parser.add_argument(
        "--gpt2-dir", type=Path, help="folder holding gpt2_vocab.json (for tiktoken, GPT-2 ranks)"
    )
    parser.add_argument("--vocab-size", type=int, default=10_000)
    parser.add_argument("--special-token", default="<|endoftext|>")
    parser.add_argument("--num-processes", type=int, default=2, help="our pre-tokenize workers")
    parser.add_argument("--rounds", type=int, default=3, help="runs per trainer and encoder")
    parser.add_argument("--pieces", type=int, default=64, help="pieces the encode text is cut in")
    args = parser.parse_args()
    args.encode_path = args.encode_path or args.data_path
    train_ratio = bench_training(args)
    vocab, merges = train_bpe(args.data_path, args.vocab_size, [args.special_token])
    with tempfile.TemporaryDirectory() as tmp:
        directory = save_tokenizer_dir(Path(tmp) / "tok", vocab, merges, [args.special_token])
        encode_ratio = bench_encoding(args, directory)
    print(
        f"\nbench_tokenizer: train ratio={train_ratio:.2f} (HF time / ours; target >= 0.5), "
        f"encode ratio={encode_ratio:.2f} (our fast path / tiktoken, 1 worker; target >= 0.9)"
    )


if __name__ == "__main__":
    main()
