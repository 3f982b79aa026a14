"""The synthetic story corpus: determinism, splits, grammar, forced entities and the CLI."""

import random
import re
from pathlib import Path

import pytest

from scratchlm.cli import main
from scratchlm.data import synth
from scratchlm.data.synth import (
    ANIMAL_NAMES,
    NAMES,
    OBJECT_NAMES,
    PLACE_NAMES,
    PLOT_NAMES,
    SEPARATOR,
    article,
    contains_word,
    plural,
    story,
    write_corpus,
)
from scratchlm.data.synth_plots import PLOTS
from scratchlm.data.synth_words import PLACES

WORD = re.compile(r"[a-z]+(?:['-][a-z]+)*")


def docs(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith(SEPARATOR)
    return text.split(SEPARATOR)[:-1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    write_corpus(out, size_mb=1.0, seed=0)
    return out


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_corpus(tmp_path / name, size_mb=0.05, seed=seed)
    for split in ("train.txt", "valid.txt"):
        a, b, c = ((tmp_path / n / split).read_bytes() for n in "abc")
        assert a == b
        assert a != c
    assert story(random.Random(7)) == story(random.Random(7))


def test_files_sizes_and_separators(corpus: Path) -> None:
    assert sorted(p.name for p in corpus.iterdir()) == ["train.txt", "valid.txt"]
    train, valid = corpus / "train.txt", corpus / "valid.txt"
    total = train.stat().st_size + valid.stat().st_size
    assert 1_000_000 <= total < 1_000_000 + 2 * 2_000
    assert 0.01 < valid.stat().st_size / total < 0.03
    for doc in docs(train) + docs(valid):
        assert doc.strip() == doc and "<|endoftext|>" not in doc
        assert synth.MIN_WORDS <= len(doc.split()) <= synth.MAX_WORDS


def test_splits_share_no_story(corpus: Path) -> None:
    train, valid = docs(corpus / "train.txt"), docs(corpus / "valid.txt")
    assert len(valid) > 10
    assert not set(train) & set(valid)


def test_vocabulary_breadth_and_variety(corpus: Path) -> None:
    text = (corpus / "train.txt").read_text(encoding="utf-8")
    assert len(set(WORD.findall(text.lower()))) >= 1500
    stories = docs(corpus / "train.txt")
    assert len(set(stories)) == len(stories)
    openings = {s.split(".")[0] for s in stories}
    assert len(openings) > 0.9 * len(stories)


def test_grammar_surface(corpus: Path) -> None:
    text = (corpus / "train.txt").read_text(encoding="utf-8")
    assert text.isascii()
    assert "{" not in text and "}" not in text and "  " not in text
    for m in re.finditer(r"\b([Aa]n?) ([a-z]+)", text):
        assert m.group(1).lower() == article(m.group(2)), m.group(0)
    for m in re.finditer(r'(?:[.!?]|\.") +(\S)', text):
        assert m.group(1).isupper() or m.group(1) == '"', text[m.start() - 40 : m.end() + 20]
    for line in text.splitlines():
        if line and line != "<|endoftext|>":
            assert line[0].isupper() or line[0] == '"', line


def test_pronouns_follow_the_hero() -> None:
    rng = random.Random(0)
    girl = synth._slots(rng, "Lily", None, None, None, False)
    boy = synth._slots(rng, "Tom", None, None, None, True)
    assert (girl["He"], girl["him"], girl["his"], girl["self"]) == ("She", "her", "her", "herself")
    assert (boy["He"], boy["him"], boy["his"], boy["self"]) == ("He", "him", "his", "himself")
    assert boy["friend"] != "Tom"


def test_every_template_fills_and_reads_as_a_sentence() -> None:
    slots = synth._slots(random.Random(0), None, None, None, None, False)
    templates = [t for plot in PLOTS.values() for par in plot for beat in par for t in beat if t]
    assert len(set(templates)) >= 400
    for template in templates:
        text = template.format_map(slots)
        assert text[0].isupper() or text[0] == '"', template
        assert text[-1] in '.!?"', template


@pytest.mark.parametrize("plot", PLOT_NAMES)
def test_every_plot_names_its_cast_in_beats_that_cannot_be_skipped(plot: str) -> None:
    groups = {
        "hero": ("{hero}",),
        "object": ("{obj}", "{a_obj}", "{A_obj_cap}"),
        "animal": ("{animal}", "{an_animal}", "{An_animal}"),
        "place": ("{the_place}", "{at_place}", "{The_place_cap}"),
    }
    beats = [beat for paragraph in PLOTS[plot] for beat in paragraph if "" not in beat]
    for what, slots in groups.items():
        assert any(all(any(s in t for s in slots) for t in beat) for beat in beats), what


@pytest.mark.parametrize("plot", PLOT_NAMES)
def test_forced_entities_appear(plot: str) -> None:
    rng = random.Random(plot)
    for _ in range(40):
        name, animal = rng.choice(NAMES), rng.choice(ANIMAL_NAMES)
        obj, place = rng.choice(OBJECT_NAMES), rng.choice(PLACE_NAMES)
        text = story(rng, name=name, animal=animal, obj=obj, place=place, plot=plot)
        for word in (name, animal, obj, place):
            assert contains_word(text, word), (word, text)


def test_forcing_unknown_entities_is_refused() -> None:
    rng = random.Random(0)
    with pytest.raises(ValueError, match="unknown name"):
        story(rng, name="Zorblax")
    with pytest.raises(ValueError, match="unknown animal"):
        story(rng, animal="dragon")
    with pytest.raises(ValueError, match="unknown plot"):
        story(rng, plot="heist")


def test_vocabulary_lists_are_broad_and_distinct() -> None:
    for words, least in ((NAMES, 300), (ANIMAL_NAMES, 90), (OBJECT_NAMES, 150), (PLACE_NAMES, 60)):
        assert len(set(words)) == len(words) >= least
    assert not set(ANIMAL_NAMES) & set(OBJECT_NAMES)
    for place in PLACES:
        assert not any(s.startswith(("a ", "an ", "the ")) for s in place.sights), place
    assert len(PLOT_NAMES) >= 6


def test_article_plural_and_word_match() -> None:
    expected = {"owl": "an", "kite": "a", "umbrella": "an", "unicorn": "a", "hour": "an"}
    assert {w: article(w) for w in expected} == expected
    cases = {"mouse": "mice", "box": "boxes", "key": "keys", "leaf": "leaves", "sheep": "sheep"}
    assert {w: plural(w) for w in cases} == cases
    assert plural("pair of glasses") == "pairs of glasses"
    assert contains_word("A red Kite flew.", "kite")
    assert not contains_word("The cats ran.", "cat")
    assert not contains_word("A catalog.", "cat")


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "new" / "corpus"
    rc = main(["data", "synth", "--out", str(out), "--size-mb", "0.05", "--seed", "5"])
    assert rc == 0
    assert "unique words" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["train.txt", "valid.txt"]
    assert len(docs(out / "train.txt")) > 20


@pytest.mark.parametrize("size", ["0", "-1", "nan", "inf"])
def test_cli_refuses_bad_size(
    tmp_path: Path, size: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "corpus"
    assert main(["data", "synth", "--out", str(out), f"--size-mb={size}"]) == 2
    assert "error: --size-mb" in capsys.readouterr().err
    assert not out.exists()


def test_cli_refuses_unwritable_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert main(["data", "synth", "--out", str(blocker / "corpus"), "--size-mb", "0.01"]) == 2
    assert main(["data", "synth", "--out", str(blocker), "--size-mb", "0.01"]) == 2
    assert capsys.readouterr().err.count("error:") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_failure_midway_leaves_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = iter(range(100))

    def flaky(rng: random.Random) -> str:
        if next(calls) == 99:
            raise OSError("disk full")
        return "word " * 100

    monkeypatch.setattr(synth, "story", flaky)
    with pytest.raises(OSError, match="disk full"):
        write_corpus(tmp_path / "corpus", size_mb=1.0)
    assert list(tmp_path.iterdir()) == []  # not even the folder it made
