"""The embedded default corpus: short children's stories from a seeded template generator.

`write_corpus(out, size_mb, seed)` (the `scratchlm data synth` command) writes `train.txt` and
`valid.txt`, each story followed by "\\n<|endoftext|>\\n". The two splits draw from separate
random streams, and a train story identical to a validation story is skipped, so no story text
is in both. Output depends only on (size_mb, seed): the generator uses `random.Random` seeded
with a string, the vocabulary and templates are tuples, and nothing iterates over a set.

A story has a hero (a child or a little animal, with consistent pronouns), a grown-up, sometimes
a friend, and always one object, one animal and one place. Its plot is one of `PLOT_NAMES`
(lost and found, a problem solved with a friend, a trip, sharing, being careful, a gift, a fear
overcome, an animal rescued, a new friend, a garden, a rainy day, a race, honesty, a dream); see
`scratchlm.data.synth_plots` for the templates and `scratchlm.data.synth_words` for the words.

Reuse for a post-training task with checkable constraints: pick the entities with the same
seeded `random.Random`, force them into a story, and check a completion with `contains_word`:

    rng = random.Random("task:0")
    name, animal, obj = rng.choice(NAMES), rng.choice(ANIMAL_NAMES), rng.choice(OBJECT_NAMES)
    prompt = f"Write a short story about {name} and {with_article(animal)} that includes the "
             f"word {obj}."
    answer = story(rng, name=name, animal=animal, obj=obj)   # a demonstration that satisfies it
    ok = all(contains_word(answer, w) for w in (name, animal, obj))

`story` always mentions the forced name, animal (singular), object and place. A rejected answer
for a preference pair can be the same story with other entities swapped in; check it with
`contains_word`, which may find a constraint word by chance: matching ignores case, and a few
names and objects also occur as ordinary words ("Hope", "Lily", "Sunny"; "book", "ladder", "box").
Small arithmetic can count the same nouns with `plural`, e.g. "Mia had three kites".
"""

import math
import os
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from scratchlm.config import Command, arg
from scratchlm.data.synth_plots import OUTDOOR_PLOTS, PLOTS
from scratchlm.data.synth_words import (
    ACTIVITIES,
    ANIMALS,
    BOY_NAMES,
    COLORS,
    FOODS,
    FRESH,
    GIRL_NAMES,
    GLAD,
    HERO_ADJECTIVES,
    HOMES,
    LIKES,
    NUMBERS,
    OBJECT_ADJECTIVES,
    OBJECTS,
    PARENTS,
    PLACES,
    SAD,
    SCARED,
    SKIES,
    TIMES,
    TRAITS,
    Animal,
    Place,
    Thing,
)
from scratchlm.folders import make_dirs, remove_dirs
from scratchlm.tokenizer import END_OF_TEXT

SEPARATOR = f"\n{END_OF_TEXT}\n"
DEFAULT_SIZE_MB = 20.0
VALID_FRACTION = 0.02
MIN_WORDS, MAX_WORDS = 80, 250

NAMES: tuple[str, ...] = GIRL_NAMES + BOY_NAMES
ANIMAL_NAMES: tuple[str, ...] = tuple(a.name for a in ANIMALS)
OBJECT_NAMES: tuple[str, ...] = tuple(t.name for t in OBJECTS)
PLACE_NAMES: tuple[str, ...] = tuple(p.name for p in PLACES)
PLOT_NAMES: tuple[str, ...] = tuple(PLOTS)

_ANIMAL = {a.name: a for a in ANIMALS}
_OBJECT = {t.name: t for t in OBJECTS}
_PLACE = {p.name: p for p in PLACES}
_GIRLS = frozenset(GIRL_NAMES)
_NAMES = {n: n for n in NAMES}
_LAND_ANIMALS = tuple(a for a in ANIMALS if not a.water)
_OUTDOOR_PLACES = tuple(p for p in PLACES if not p.indoor)
_WET_PLACES = tuple(p for p in PLACES if p.water)
_WET_OUTDOOR_PLACES = tuple(p for p in _WET_PLACES if not p.indoor)
_DAYS = ("day", "morning", "week", "Sunday", "spring", "evening")
_AN_WORDS = ("hour", "honest", "heir")
_A_WORDS = ("uni", "use", "one", "euro", "uti")
_WORD_RE = re.compile(r"[a-z]+(?:['-][a-z]+)*")


def article(word: str) -> str:
    """'a' or 'an' for the word that follows it, by its sound ("an owl", "a unicorn")."""
    low = word.lower()
    if low.startswith(_AN_WORDS):
        return "an"
    if low.startswith(_A_WORDS):
        return "a"
    return "an" if low[:1] in "aeiou" else "a"


def with_article(phrase: str) -> str:
    """Prefix 'a' or 'an': "owl" -> "an owl", "red kite" -> "a red kite"."""
    return f"{article(phrase)} {phrase}"


def plural(noun: str) -> str:
    """Plural of a vocabulary noun: animals by table; "box" -> "boxes", "leaf" -> "leaves"."""
    if noun in _ANIMAL:
        return _ANIMAL[noun].plural
    head, _, tail = noun.partition(" of ")
    if tail:
        return f"{plural(head)} of {tail}"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    if noun.endswith("f"):
        return noun[:-1] + "ves"
    return noun + "s"


def contains_word(text: str, word: str) -> bool:
    """Whether `word` (or phrase) occurs in `text` as whole words, ignoring case."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text, re.IGNORECASE) is not None


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pronouns(prefix: str, girl: bool) -> dict[str, str]:
    he, him, his = ("she", "her", "her") if girl else ("he", "him", "his")
    return {
        f"{prefix}he": he,
        f"{prefix.upper()}he" if prefix else "He": _cap(he),
        f"{prefix}him": him,
        f"{prefix}his": his,
        f"{prefix.upper()}his" if prefix else "His": _cap(his),
    }


def _one(rng: random.Random, seq: tuple):
    """A uniform draw; faster than `rng.choice`, and built only on `random()`, which Python
    keeps identical across versions and machines."""
    return seq[int(rng.random() * len(seq))]


def _two(rng: random.Random, seq: tuple) -> tuple:
    """Two different entries of `seq`, uniformly."""
    i = int(rng.random() * len(seq))
    j = int(rng.random() * (len(seq) - 1))
    return seq[i], seq[j + (j >= i)]


def _entity(rng: random.Random, forced: str | None, table: dict, pool: tuple, what: str):
    """The forced entry of `table` (ValueError if unknown), else a random one from `pool`."""
    if forced is None:
        return _one(rng, pool)
    if forced not in table:
        raise ValueError(f"unknown {what} {forced!r}: choose one of scratchlm.data.synth's lists")
    return table[forced]


class _Slots(dict):
    """Template slots of one story; a key of FRESH draws a new word at each use."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng

    def __missing__(self, key: str) -> str:
        return _one(self.rng, FRESH[key])


def _slots(
    rng: random.Random,
    name: str | None,
    animal: str | None,
    obj: str | None,
    place: str | None,
    outdoor: bool,
) -> dict[str, str]:
    """Draw the cast and scenery of one story and spell out every template slot.

    An `outdoor` story draws its place among outdoor ones unless the place is forced.
    """
    hero = _entity(rng, name, _NAMES, NAMES, "name")
    friend = _one(rng, NAMES)
    while friend == hero:
        friend = _one(rng, NAMES)
    where: Place = _entity(rng, place, _PLACE, _OUTDOOR_PLACES if outdoor else PLACES, "place")
    beast: Animal = _entity(
        rng, animal, _ANIMAL, ANIMALS if where.water else _LAND_ANIMALS, "animal"
    )
    if place is None and beast.water and not where.water:
        where = _one(rng, _WET_OUTDOOR_PLACES if outdoor else _WET_PLACES)
    thing: Thing = _entity(rng, obj, _OBJECT, OBJECTS, "object")
    girl = hero in _GIRLS
    kind = "girl" if girl else "boy"
    if rng.random() < 0.3:
        kind = _one(rng, _LAND_ANIMALS).name
        while kind == beast.name:
            kind = _one(rng, _LAND_ANIMALS).name
    grown_up, grown_up_he = _one(rng, PARENTS)
    s = _Slots(rng)
    s["hero"] = hero
    s["self"] = "herself" if girl else "himself"
    s.update(_pronouns("", girl))
    s.update(_pronouns("f", friend in _GIRLS))
    s.update(_pronouns("p", grown_up_he == "she"))
    s["parent"] = grown_up
    s["friend"] = friend
    s["kind2"] = "girl" if friend in _GIRLS else "boy"
    s["hero_desc"] = with_article(f"{_one(rng, HERO_ADJECTIVES)} {kind}")
    s["a_home"] = with_article(_one(rng, HOMES))
    s["trait"], s["trait2"] = (x.format_map(s) for x in _two(rng, TRAITS))
    s["like"], s["like2"] = (x.format_map(s) for x in _two(rng, LIKES))
    look = rng.random()
    if look < 0.4:
        adjective = f"{_one(rng, OBJECT_ADJECTIVES)} {_one(rng, COLORS)} "
    elif look < 0.8:
        adjective = f"{_one(rng, OBJECT_ADJECTIVES)} "
    else:
        adjective = ""
    s["obj"] = thing.name
    s["a_obj"] = with_article(adjective + thing.name)
    s["A_obj_cap"] = _cap(s["a_obj"])
    s["use"] = thing.use
    s["animal"] = beast.name
    s["animals"] = beast.plural
    s["Animals_cap"] = _cap(beast.plural)
    s["an_animal"] = with_article(beast.name)
    s["An_animal"] = _cap(s["an_animal"])
    s["sound"] = beast.sound
    s["move"] = beast.move
    s["place"] = where.name
    s["the_place"] = f"the {where.name}"
    s["The_place_cap"] = f"The {where.name}"
    s["at_place"] = f"{where.prep} the {where.name}"
    s["sight1"], s["sight2"] = _two(rng, where.sights)
    s["sight3"] = next(x for x in where.sights if x not in (s["sight1"], s["sight2"]))
    s["time"], weather = _one(rng, TIMES)
    s["sky"] = _one(rng, SKIES[weather])
    s["act"], s["act2"] = _two(rng, ACTIVITIES)
    s["food"] = _one(rng, FOODS)
    s["glad"], s["glad2"] = _two(rng, GLAD)
    s["sad"] = _one(rng, SAD)
    s["scared"] = _one(rng, SCARED)
    s["color"] = _one(rng, COLORS)
    s["a_color"] = with_article(s["color"])
    s["num"] = _one(rng, NUMBERS)
    s["day"] = _one(rng, _DAYS)
    return s


def story(
    rng: random.Random,
    *,
    name: str | None = None,
    animal: str | None = None,
    obj: str | None = None,
    place: str | None = None,
    plot: str | None = None,
) -> str:
    """One story of MIN_WORDS..MAX_WORDS words; forced entities are taken, the rest drawn.

    name is from NAMES, animal from ANIMAL_NAMES, obj from OBJECT_NAMES, place from PLACE_NAMES,
    plot from PLOT_NAMES. Each forced word appears in the text (animal in the singular).
    """
    if plot is not None and plot not in PLOTS:
        raise ValueError(f"unknown plot {plot!r}: choose one of {', '.join(PLOT_NAMES)}")
    while True:
        chosen = plot or _one(rng, PLOT_NAMES)
        s = _slots(rng, name, animal, obj, place, chosen in OUTDOOR_PLOTS)
        lines = []
        for paragraph in PLOTS[chosen]:
            sentences = [_one(rng, beat) for beat in paragraph]
            lines.append(" ".join(t.format_map(s) for t in sentences if t))
        text = "\n".join(lines)
        if MIN_WORDS <= text.count(" ") + text.count("\n") + 1 <= MAX_WORDS:
            return text


def _stories(rng: random.Random, skip: frozenset[str]) -> Iterator[str]:
    """Endless stories from `rng`, leaving out any text in `skip`."""
    while True:
        text = story(rng)
        if text not in skip:
            yield text


@dataclass(frozen=True)
class SynthSummary:
    """What `write_corpus` wrote: stories and bytes per split, distinct lower-cased words, time."""

    out: Path
    train_stories: int
    valid_stories: int
    train_bytes: int
    valid_bytes: int
    unique_words: int
    seconds: float

    def __str__(self) -> str:
        mb = (self.train_bytes + self.valid_bytes) / 1e6
        return (
            f"wrote {self.out}/train.txt ({self.train_stories:,} stories, "
            f"{self.train_bytes / 1e6:.2f} MB) and valid.txt ({self.valid_stories:,} stories, "
            f"{self.valid_bytes / 1e6:.2f} MB); {self.unique_words:,} unique words; "
            f"{self.seconds:.1f} s ({mb / self.seconds:.1f} MB/s)"
        )


def _write_split(
    path: Path,
    stories: Iterator[str],
    target_bytes: int,
    words: set[str],
    bar: tqdm,
    keep: set[str] | None = None,
) -> tuple[int, int]:
    """Write stories to `path` until `target_bytes`; returns (stories, bytes)."""
    count = written = 0
    batch: list[str] = []
    with path.open("w", encoding="utf-8", newline="\n") as f:
        while written < target_bytes:
            text = next(stories)
            if keep is not None:
                keep.add(text)
            batch.append(text)
            count += 1
            written += len(text.encode("utf-8")) + len(SEPARATOR)
            if len(batch) == 256 or written >= target_bytes:
                data = SEPARATOR.join(batch) + SEPARATOR
                f.write(data)
                words.update(_WORD_RE.findall(data.lower()))
                bar.update(len(data))
                batch.clear()
    return count, written


def write_corpus(out: Path, size_mb: float = DEFAULT_SIZE_MB, seed: int = 0) -> SynthSummary:
    """Write `out`/train.txt and `out`/valid.txt, about `size_mb` MB (10^6 bytes) in total.

    valid.txt gets VALID_FRACTION of the bytes. Files appear only when both are complete.
    """
    if not 0 < size_mb < math.inf:
        raise ValueError(f"--size-mb must be a positive number of megabytes, got {size_mb}")
    if seed < 0:
        raise ValueError(f"--seed must be >= 0, got {seed}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file: give a directory")
    made = make_dirs(out)
    total = int(size_mb * 1_000_000)
    valid_target = max(1, int(total * VALID_FRACTION))
    tmp = {split: out / f".{split}.txt.tmp-{os.getpid()}" for split in ("train", "valid")}
    words: set[str] = set()
    valid_texts: set[str] = set()
    start = time.perf_counter()
    try:
        with tqdm(total=total, unit="B", unit_scale=True, desc="synth", disable=None) as bar:
            valid_rng = random.Random(f"scratchlm-synth:{seed}:valid")
            valid = _write_split(
                tmp["valid"], _stories(valid_rng, frozenset()), valid_target, words, bar,
                valid_texts,
            )  # fmt: skip
            train_rng = random.Random(f"scratchlm-synth:{seed}:train")
            train = _write_split(
                tmp["train"], _stories(train_rng, frozenset(valid_texts)),
                total - valid[1], words, bar,
            )  # fmt: skip
        for split, path in tmp.items():
            os.replace(path, out / f"{split}.txt")
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
        if not (out / "train.txt").exists():  # failed: the folders this call made go too
            remove_dirs(made)
    return SynthSummary(
        out, train[0], valid[0], train[1], valid[1], len(words), time.perf_counter() - start
    )


COMMAND = Command(
    run=write_corpus,
    description="Generate short children's stories, deterministically from --seed, into "
    "DIR/train.txt and DIR/valid.txt (2%% of the bytes), separated by <|endoftext|>.",
    args=(
        arg("--out", type=Path, required=True, metavar="DIR", help="output directory"),
        arg(
            "--size-mb",
            type=float,
            default=DEFAULT_SIZE_MB,
            help=f"total size in MB (10^6 bytes; default {DEFAULT_SIZE_MB:g})",
        ),
        arg("--seed", type=int, default=0, help="random seed (default 0)"),
    ),
)
