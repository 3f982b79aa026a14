"""benchmarks/quality.py: its 90/10 split, its bad-input errors and a tiny run's table."""

import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "quality.py"
SPEC = importlib.util.spec_from_file_location("quality", SCRIPT)
assert SPEC is not None and SPEC.loader is not None
quality = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(quality)

# Tiny model recipes on top of configs/cpu-tiny.yaml; different vocab sizes, so each gets its own
# tokenizer and token files.
TINY = """\
base: configs/cpu-tiny.yaml
overrides:
  model.vocab_size: {vocab}
  model.num_layers: 1
  model.d_model: 32
  model.num_heads: 2
  model.context_length: 32
  training.batch_size: 4
  schedule.warmup_steps: 2
{extra}"""


def test_split_cuts_after_the_separator_nearest_to_ninety_percent() -> None:
    docs = ["word " * 30] * 20  # 150 characters each
    text = "<|endoftext|>".join(docs)
    cut = quality.split_point(text)
    assert text[:cut].endswith("<|endoftext|>")
    assert abs(cut - 0.9 * len(text)) <= len(text) / 100
    plain = "abc " * 1000  # no separator: the nearest whitespace to the 90% mark
    cut = quality.split_point(plain)
    assert plain[cut].isspace() and abs(cut - 3600) <= 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text", "missing.txt", "--budget", "3"], "text file missing.txt not found"),
        (["--budget", "0"], "--budget must be a positive number"),
        (["--budget", "3", "--recipe", "no-such-recipe"], "recipe 'no-such-recipe' not found"),
    ],
)
def test_bad_input_is_one_error_line_and_status_2(
    args: list[str], message: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    text = tmp_path / "t.txt"
    text.write_text("some text " * 100)
    if "--text" not in args:
        args = ["--text", str(text), *args]
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args, "--out", str(tmp_path / "out")])
    assert quality.main() == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_recipe_may_not_set_what_the_benchmark_sets(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(TINY.format(vocab=300, extra="  training.seed: 3\n"))
    with pytest.raises(quality.InputError, match=r"training\.seed"):
        quality.load_recipe(str(recipe))


@pytest.mark.slow
def test_a_tiny_benchmark_prints_its_table(corpus_text: str, tmp_path: Path) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text(corpus_text)
    base, other = tmp_path / "base.yaml", tmp_path / "other.yaml"
    base.write_text(TINY.format(vocab=300, extra=""))
    other.write_text(TINY.format(vocab=320, extra="  optimizer.name: muon\n"))
    out = tmp_path / "out"
    args = ["--text", str(text), "--budget", "3", "--seeds", "2", "--out", str(out)]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--recipe", str(base), "--recipe", str(other)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.splitlines()
    # Seeds interleave across recipes.
    started = [line for line in lines if line.endswith("training ...")]
    assert [s.split("] ")[1] for s in started] == [
        "base seed 0: training ...", "other seed 0: training ...",
        "base seed 1: training ...", "other seed 1: training ...",
    ]  # fmt: skip
    header = next(line for line in lines if line.startswith("| recipe "))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns == ["recipe", "held-out bpb", "spread", "ratio", "tokens seen", "params",
                       "steps", "train s", "seeds"]  # fmt: skip
    rows = {
        cells[0]: dict(zip(columns, cells, strict=True))
        for cells in (
            [c.strip() for c in line.strip("|").split("|")]
            for line in lines
            if re.match(r"\| (base|other) \|", line)
        )
    }
    assert list(rows) == ["base", "other"]
    for row in rows.values():
        assert math.isfinite(float(row["held-out bpb"])) and float(row["held-out bpb"]) > 0
        assert int(row["tokens seen"].replace(",", "")) > 0 and int(row["steps"]) >= 8
        assert row["seeds"] == "2"
    assert rows["base"]["ratio"] == "1.000"
    assert int(rows["base"]["params"].replace(",", "")) == (
        2 * 300 * 32 + 1 * (4 * 32 * 32 + 3 * 32 * 128 + 2 * 32) + 32
    )  # embeddings + head, one layer (attention, SwiGLU d_ff 128, two norms), final norm
    assert (out / "results.json").is_file() and (out / "v320" / "heldout.npy").is_file()
