"""The offline default task: seeded instructions whose constraints a program can check.

Two kinds of instruction, drawn deterministically from a seed:

- story: "Write a short story about Mia and a fox that includes the word kite." The answer must
  contain the name, the animal and the object as whole words (case-insensitive). The words come
  from the synthetic story vocabulary, so a model pretrained on the synthetic corpus
  (`scratchlm.data.synth`) knows them; a demonstration (`cast_story`) is the opening of a
  synthetic story with those entities forced in, its second sentence naming all three.
- arithmetic: "What is 7 + 5?" (operands 0 to 10, never a negative result). The last number
  in the answer (`parse_gsm8k_response`) must be the exact result.

`reward(prompt, completion)` reads the constraints back from the prompt text alone and returns the
fraction met (story: 1/3 per word; arithmetic: 0 or 1), so it serves as GRPO's verifiable reward
for any prompt of these forms. A completion satisfies its instruction when its reward is 1.
`sft_records` gives demonstrations; `preference_records` pairs a satisfying answer with its near
miss (the same story with some required words swapped for others, or the equation with a wrong
result); `self_preference_records` builds such pairs on a model's own answers, its mistakes being
the rejected side; `evaluate` reports the satisfaction rate of a model's greedy answers.
"""

import json
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from scratchlm.config import Command, arg
from scratchlm.data.synth import (
    ANIMAL_NAMES,
    NAMES,
    OBJECT_NAMES,
    contains_word,
    plural,
    story,
    with_article,
)
from scratchlm.data.synth_words import BOY_NAMES, GIRL_NAMES
from scratchlm.eval.answers import parse_gsm8k_response
from scratchlm.folders import make_dirs
from scratchlm.model.generate import SamplingConfig, generate
from scratchlm.tokenizer.chat import chat_tokens, render_prompt
from scratchlm.tokenizer.tokenizer import Tokenizer

STORY_PROMPT = "Write a short story about {name} and {animal} that includes the word {thing}."
MATH_PROMPT = "What is {a} {op} {b}?"
_STORY_RE = re.compile(
    r"Write a short story about (?P<name>[A-Za-z]+) and an? (?P<animal>[A-Za-z]+) "
    r"that includes the word (?P<thing>[A-Za-z]+)\."
)
_MATH_RE = re.compile(r"What is (?P<a>\d+) (?P<op>[+-]) (?P<b>\d+)\?")
_SENTENCE_END_RE = re.compile(r"[.!?]\"?(?=\s|$)")
MAX_OPERAND = 10
ANIMALS = tuple(a for a in ANIMAL_NAMES if a.isalpha())  # one-word entities keep "the word" literal
THINGS = tuple(t for t in OBJECT_NAMES if t.isalpha())
EVAL_SEED = 1234


@dataclass(frozen=True)
class Instruction:
    """One instruction: its text and what a satisfying answer must contain."""

    prompt: str
    kind: Literal["story", "arithmetic"]
    required: tuple[str, ...] = ()  # story: words the answer must contain
    answer: int | None = None  # arithmetic: the exact result


def story_instruction(name: str, animal: str, thing: str) -> Instruction:
    prompt = STORY_PROMPT.format(name=name, animal=with_article(animal), thing=thing)
    return Instruction(prompt, "story", required=(name, animal, thing))


def math_instruction(a: int, op: str, b: int) -> Instruction:
    answer = a + b if op == "+" else a - b
    return Instruction(MATH_PROMPT.format(a=a, op=op, b=b), "arithmetic", answer=answer)


def make_instructions(n: int, seed: int, story_fraction: float = 0.5) -> list[Instruction]:
    """`n` instructions drawn from `seed`; about `story_fraction` of them ask for a story.

    Subtractions never go below zero.
    """
    rng = random.Random(f"task:{seed}")
    out = []
    for _ in range(n):
        if rng.random() < story_fraction:
            out.append(
                story_instruction(rng.choice(NAMES), rng.choice(ANIMALS), rng.choice(THINGS))
            )
        else:
            a, b, op = rng.randint(0, MAX_OPERAND), rng.randint(0, MAX_OPERAND), rng.choice("+-")
            out.append(math_instruction(max(a, b), op, min(a, b)))
    return out


def parse_instruction(prompt: str) -> Instruction:
    """The instruction a prompt states; ValueError when it is not one of the task's forms."""
    found = _STORY_RE.fullmatch(prompt.strip())
    if found:
        return story_instruction(found["name"], found["animal"], found["thing"])
    found = _MATH_RE.fullmatch(prompt.strip())
    if found:
        return math_instruction(int(found["a"]), found["op"], int(found["b"]))
    raise ValueError(f"not a default-task instruction: {prompt[:60]!r}")


def score(instruction: Instruction, completion: str) -> float:
    """Fraction of the instruction's constraints the completion meets, in [0, 1]."""
    if instruction.kind == "arithmetic":
        number = parse_gsm8k_response(completion)
        return 1.0 if number is not None and float(number) == instruction.answer else 0.0
    found = [contains_word(completion, word) for word in instruction.required]
    return sum(found) / len(found)


def reward(prompt: str, completion: str) -> float:
    """GRPO's verifiable reward: `score` of the completion against the constraints in the prompt."""
    return score(parse_instruction(prompt), completion)


def cast_story(rng: random.Random, name: str, animal: str, thing: str) -> str:
    """A story opening that names its cast in its second sentence: "Mia had a pet owl and a kite."

    The first sentence of a synthetic story with the three forced in, that cast sentence, then the
    story's next two sentences. The fixed sentence puts every requested word at the same place of
    every answer, right after the opening: measured on the cpu preset, SFT learns to copy the words
    into that place, and not into the varied places where a story first mentions them (README,
    "Post-training").
    """
    text = story(rng, name=name, animal=animal, obj=thing)
    ends = [m.end() for m in _SENTENCE_END_RE.finditer(text)]
    cast = f"{name} had a pet {animal} and {with_article(thing)}."
    return f"{text[: ends[0]]} {cast} {text[ends[0] : ends[min(2, len(ends) - 1)]].strip()}"


def demonstration(instruction: Instruction, rng: random.Random) -> str:
    """An answer that meets every constraint."""
    if instruction.kind == "arithmetic":
        return _equation(instruction, instruction.answer)
    return cast_story(rng, *instruction.required)


def violation(instruction: Instruction, rng: random.Random, answer: str) -> str:
    """`answer` turned into a near miss: a wrong result, or the story with other entities.

    A story keeps every sentence and changes only the required words, at least one of them (a name
    for a name of the same sex, an animal or object for another, articles and plurals following), so
    the pair (answer, violation) differs exactly where the constraints are checked.
    """
    if instruction.kind == "arithmetic":
        wrong = instruction.answer + rng.choice([-3, -2, -1, 1, 2, 3])
        return _equation(instruction, wrong if wrong >= 0 else instruction.answer + 1)
    name, animal, thing = instruction.required
    swap = [rng.random() < 0.5 for _ in instruction.required]
    if not any(swap):
        swap[rng.randrange(len(swap))] = True
    same_sex = GIRL_NAMES if name in GIRL_NAMES else BOY_NAMES
    for old, pool, do in zip(instruction.required, (same_sex, ANIMALS, THINGS), swap, strict=True):
        if do:
            answer = replace_word(answer, old, rng.choice([w for w in pool if w != old]))
    return answer


def replace_word(text: str, old: str, new: str) -> str:
    """Every whole-word `old` in `text` (also its plural, and "a"/"an" before it) becomes `new`."""

    def sub(found: re.Match) -> str:
        article, word = found["article"], found["word"]
        out = plural(new) if word.lower() == plural(old).lower() else new
        if article:
            out = with_article(out)
        capital = (article or word)[0].isupper()  # the replaced text started a sentence
        return out[0].upper() + out[1:] if capital else out

    words = "|".join(re.escape(w) for w in sorted({old, plural(old)}, key=len, reverse=True))
    pattern = rf"(?<![\w-])(?:(?P<article>[Aa]n? ))?(?P<word>{words})(?![\w-])"
    return re.sub(pattern, sub, text, flags=re.IGNORECASE)


def _equation(instruction: Instruction, result: int) -> str:
    found = _MATH_RE.fullmatch(instruction.prompt)
    return f"{found['a']} {found['op']} {found['b']} = {result}."


def sft_records(n: int, seed: int) -> list[dict[str, Any]]:
    """`n` chat records `{"messages": [user, assistant]}`; each answer satisfies its instruction."""
    rng = random.Random(f"sft:{seed}")
    return [
        {
            "messages": [
                {"role": "user", "content": ins.prompt},
                {"role": "assistant", "content": demonstration(ins, rng)},
            ]
        }  # fmt: skip
        for ins in make_instructions(n, seed)
    ]


def preference_records(n: int, seed: int) -> list[dict[str, str]]:
    """`n` records `{"prompt", "chosen", "rejected"}`: chosen satisfies, rejected does not."""
    rng = random.Random(f"preference:{seed}")
    return [
        {"prompt": ins.prompt, "chosen": chosen, "rejected": violation(ins, rng, chosen)}
        for ins in make_instructions(n, seed)
        for chosen in [demonstration(ins, rng)]
    ]


def write_task_files(out: str | Path, n_sft: int, n_preference: int, seed: int) -> dict[str, Path]:
    """Write sft.jsonl and preference.jsonl under `out` (each via a temporary file, then renamed).

    The two files use different seeds, so preference prompts are not the SFT prompts.
    """
    out = Path(out)
    make_dirs(out)
    files = {
        "sft": (out / "sft.jsonl", sft_records(n_sft, seed)),
        "preference": (out / "preference.jsonl", preference_records(n_preference, seed + 1)),
    }
    for path, records in files.values():
        write_jsonl(path, records)
    return {name: path for name, (path, _) in files.items()}


@dataclass(frozen=True)
class Task:
    """A task for GRPO and evaluation: seeded prompts and a verifiable reward in [0, 1]."""

    prompts: Callable[[int, int], list[str]]  # (n, seed) -> n prompt texts
    reward: Callable[[str, str], float]  # (prompt, completion) -> reward


def default_prompts(n: int, seed: int) -> list[str]:
    return [ins.prompt for ins in make_instructions(n, seed)]


def arithmetic_prompts(n: int, seed: int) -> list[str]:
    return [ins.prompt for ins in make_instructions(n, seed, story_fraction=0.0)]


def story_prompts(n: int, seed: int) -> list[str]:
    return [ins.prompt for ins in make_instructions(n, seed, story_fraction=1.0)]


# "arithmetic" and "story" are the default task's two halves, for GRPO on one kind at a time.
TASKS: dict[str, Task] = {
    "default": Task(default_prompts, reward),
    "arithmetic": Task(arithmetic_prompts, reward),
    "story": Task(story_prompts, reward),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; available: {', '.join(TASKS)}")
    return TASKS[name]


@torch.no_grad()
def greedy_answers(
    model: nn.Module,
    tokenizer: Tokenizer,
    prompts: list[str],
    max_new_tokens: int = 128,
    batch_size: int = 32,
) -> list[str]:
    """The model's greedy reply to each prompt (one user turn in the chat template), as text."""
    end = chat_tokens(tokenizer).end
    was_training = model.training
    model.eval()
    answers = []
    for start in range(0, len(prompts), batch_size):
        chunk = [render_prompt(tokenizer, [{"role": "user", "content": p}]) for p in
                 prompts[start : start + batch_size]]  # fmt: skip
        room = model.config.context_length - max(len(p) for p in chunk) + 1
        sampling = SamplingConfig(min(max_new_tokens, room), temperature=0.0, stop_ids=(end,))
        for ids in generate(model, chunk, sampling):
            answers.append(tokenizer.decode([i for i in ids if i != end]))
    model.train(was_training)
    return answers


def self_preference_records(
    model: nn.Module, tokenizer: Tokenizer, prompts: list[str], seed: int, max_new_tokens: int = 64
) -> list[dict[str, str]]:
    """Preference pairs on the model's own greedy answers to `prompts` (on-policy pairs).

    An answer that misses a constraint becomes the rejected side, with a demonstration as chosen;
    an answer that meets them all becomes the chosen side, with its near miss (`violation`) as
    rejected. DPO on such pairs pushes down exactly the mistakes this model makes and keeps what it
    already gets right.
    """
    rng = random.Random(f"self-preference:{seed}")
    instructions = [parse_instruction(p) for p in prompts]
    answers = greedy_answers(model, tokenizer, prompts, max_new_tokens)
    records = []
    for instruction, answer in zip(instructions, answers, strict=True):
        if score(instruction, answer) < 1.0:
            chosen, rejected = demonstration(instruction, rng), answer
        else:
            chosen, rejected = answer, violation(instruction, rng, answer)
        records.append({"prompt": instruction.prompt, "chosen": chosen, "rejected": rejected})
    return records


def write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> Path:
    """Write `records` one JSON object per line, via a temporary file renamed into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # only left when writing or renaming failed
    return path


def evaluate(
    model: nn.Module,
    tokenizer: Tokenizer,
    n: int = 100,
    seed: int = EVAL_SEED,
    max_new_tokens: int = 128,
) -> dict[str, Any]:
    """Satisfaction rate of the model's greedy answers to `n` default-task instructions.

    Returns rate (fraction fully satisfied), mean_score, the rate per kind, and a few samples.
    """
    instructions = make_instructions(n, seed)
    answers = greedy_answers(model, tokenizer, [i.prompt for i in instructions], max_new_tokens)
    scores = [score(i, a) for i, a in zip(instructions, answers, strict=True)]
    result: dict[str, Any] = {
        "rate": sum(s == 1.0 for s in scores) / n,
        "mean_score": sum(scores) / n,
        "n": n,
    }
    for kind in ("story", "arithmetic"):
        mine = [s for i, s in zip(instructions, scores, strict=True) if i.kind == kind]
        if mine:
            result[f"rate_{kind}"] = sum(s == 1.0 for s in mine) / len(mine)
    result["samples"] = [
        {"prompt": i.prompt, "answer": a, "score": s}
        for i, a, s in list(zip(instructions, answers, scores, strict=True))[:4]
    ]
    return result


def make_task_files(out: Path, n_sft: int, n_preference: int, seed: int) -> str:
    """`scratchlm task make`: `write_task_files`, then a line saying what it wrote."""
    if n_sft < 1 or n_preference < 1:
        raise ValueError("--n-sft and --n-preference must be >= 1")
    paths = write_task_files(out, n_sft, n_preference, seed)
    return (f"wrote {paths['sft']} ({n_sft} records), {paths['preference']} "
            f"({n_preference} pairs)")  # fmt: skip


MAKE_COMMAND = Command(
    run=make_task_files,
    description="Seeded instructions with checkable constraints (stories that must name given "
    "words, small arithmetic): demonstrations for SFT and (chosen, rejected) pairs for DPO.",
    args=(
        arg("--out", type=Path, required=True, metavar="DIR", help="output directory"),
        arg("--n-sft", type=int, default=4000, help="SFT records (default 4000)"),
        arg("--n-preference", type=int, default=2000, help="preference pairs (default 2000)"),
        arg("--seed", type=int, default=0, help="random seed (default 0)"),
    ),
)
