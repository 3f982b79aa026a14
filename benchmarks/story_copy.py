"""Does a checkpoint copy the requested name, animal and object into its story? A probe, not a race.

For seeded story instructions of the default task, a demonstration is teacher-forced after the
prompt; at the first place it writes each requested word, the probe scores every candidate of
that kind (318 names, 97 animals, 124 objects) in that slot: log p of the candidate's tokens given
the prompt and the demonstration so far. If the model copies from the prompt, the requested word
ranks first; if it ignores the prompt, its rank is that of any other word (about half the pool).
It also reports where the words sit in the demonstrations, and how far back the prompt is then.

    python benchmarks/story_copy.py --checkpoint runs/speedrun-cpu/sft --n 100

Prints, per kind: the mean rank of the requested word (1 = best), how often it ranks first, and
the ratio of its probability to the mean probability of the other candidates (1 = no copying).
"""

import argparse
import math
import random
import re
import statistics

import torch

from scratchlm.data.synth import NAMES
from scratchlm.eval.tasks import ANIMALS, EVAL_SEED, THINGS, demonstration, make_instructions
from scratchlm.model.kv_cache import KVCache
from scratchlm.posttrain.common import load_chat_model
from scratchlm.tokenizer.chat import render_prompt
from scratchlm.train.checkpoint import find_checkpoint

POOLS = {"name": NAMES, "animal": ANIMALS, "thing": THINGS}


def word_pattern(word: str) -> re.Pattern:
    """`word` as a whole word, ignoring case (the grader's `contains_word`)."""
    return re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])", re.IGNORECASE)


@torch.no_grad()
def candidate_log_probs(model, prefix: list[int], options: list[list[int]]) -> list[float]:
    """log p(option | prefix) for each option (ids): the prefix runs once, into a KV cache."""
    width = max(len(o) for o in options)
    cache = KVCache.for_model(model.config, 1, len(prefix) + width)
    first = torch.log_softmax(model(torch.tensor([prefix]), kv_cache=cache)[0, -1].float(), -1)
    cache.k = cache.k.expand(-1, len(options), -1, -1, -1).clone()
    cache.v = cache.v.expand(-1, len(options), -1, -1, -1).clone()
    ids = torch.zeros(len(options), width, dtype=torch.long)  # right-padded: pads come last
    for i, o in enumerate(options):
        ids[i, : len(o)] = torch.tensor(o)
    rest = torch.log_softmax(model(ids[:, :-1], kv_cache=cache).float(), -1) if width > 1 else None
    out = []
    for i, o in enumerate(options):
        total = first[o[0]].item()
        for j in range(1, len(o)):
            total += rest[i, j - 1, o[j]].item()
        out.append(total)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--n", type=int, default=100, help="story instructions")
    parser.add_argument("--seed", type=int, default=EVAL_SEED)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model, tokenizer = load_chat_model(find_checkpoint(args.checkpoint), torch.device("cpu"))
    model.eval()
    rng = random.Random("probe")
    instructions = make_instructions(args.n, args.seed, story_fraction=1.0)
    slots = [*POOLS, "name again"]
    ranks = {k: [] for k in slots}
    ratios = {k: [] for k in slots}
    where = {k: [] for k in slots}  # answer tokens before the word
    counts = {k: [] for k in slots}  # "name again": not counted, shows 0
    beyond = dict.fromkeys(slots, 0)
    distance = []  # tokens between the prompt's name and the answer's first name
    for ins in instructions:
        answer = demonstration(ins, rng)
        prompt = render_prompt(tokenizer, [{"role": "user", "content": ins.prompt}])
        for kind, word in zip(POOLS, ins.required, strict=True):
            found = list(word_pattern(word).finditer(answer))
            counts[kind].append(len(found))
            places = [(kind, found[0])] if found else []
            if kind == "name" and len(found) > 1:
                places.append(("name again", found[1]))  # the story repeats its own hero
            for slot, match in places:
                head = answer[: match.start()]
                space = head.endswith(" ")
                prefix = prompt + tokenizer.encode(head.rstrip(" ") if space else head)
                options = [
                    w[0].upper() + w[1:] if match[0][0].isupper() else w for w in POOLS[kind]
                ]
                encoded = [tokenizer.encode((" " if space else "") + w) for w in options]
                if len(prefix) + max(len(e) for e in encoded) - 1 > model.config.context_length:
                    beyond[slot] += 1  # the slot lies past the context: not scored
                    continue
                scores = candidate_log_probs(model, prefix, encoded)
                mine = scores[POOLS[kind].index(word)]
                others = [s for w, s in zip(POOLS[kind], scores, strict=True) if w != word]
                ranks[slot].append(1 + sum(s > mine for s in others))
                mean_other = math.log(sum(math.exp(s) for s in others) / len(others))
                ratios[slot].append(math.exp(mine - mean_other))
                where[slot].append(len(prefix) - len(prompt))
                if slot == "name":
                    before = ins.prompt.split(word)[0].rstrip(" ")
                    distance.append(len(prefix) - 2 - len(tokenizer.encode(before)))  # <bos><user>
    ctx = model.config.context_length
    print(f"{args.checkpoint}: {args.n} story instructions (seed {args.seed}), context {ctx}")
    for kind in slots:
        pool, r = POOLS.get(kind, NAMES), ranks[kind]
        print(
            f"  {kind:10s} pool {len(pool):3d} | rank of requested: mean {statistics.mean(r):.1f} "
            f"median {statistics.median(r):.0f} | first {sum(x == 1 for x in r) / len(r):.2f} | "
            f"p(requested)/p(mean other) median {statistics.median(ratios[kind]):.2f} | "
            f"at answer token {statistics.mean(where[kind]):.1f} (median "
            f"{statistics.median(where[kind]):.0f}) | "
            f"times in answer {sum(counts[kind]) / max(len(counts[kind]), 1):.2f} | "
            f"past the context {beyond[kind]}"
        )
    print(f"  tokens from the prompt's name to the answer's first name: mean "
          f"{statistics.mean(distance):.1f}, max {max(distance)} (context {ctx})")  # fmt: skip


if __name__ == "__main__":
    main()
