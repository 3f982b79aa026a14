"""The offline lm-evaluation-harness tasks shipped with scratchlm, and the data behind them.

Two tasks, each a YAML file in `tasks/` over a JSONL file beside it, built from held-out synthetic
stories (`scratchlm.data.synth`, drawn from their own random stream, not the training corpus's):

    story_endings     multiple choice: a story without its last paragraph, and four last
                      paragraphs; the right one is the story's own, the three others end stories
                      of other plots about the same hero (so names and pronouns never give it away)
    story_perplexity  whole stories scored with loglikelihood_rolling: word and byte perplexity,
                      bits per byte

`write_task_data` rebuilds both JSONL files exactly (a test checks the shipped ones). The
`*_dataset` functions are what the YAML files name as `custom_dataset`: the harness calls them to
read the JSONL, so no dataset is looked up online.
"""

import json
import random
from pathlib import Path
from typing import Any

from scratchlm.data.synth import NAMES, PLOT_NAMES, story

TASK_DIR = Path(__file__).parent / "tasks"
LOCAL_TASKS = ("story_endings", "story_perplexity")
ENDINGS_FILE, DOCUMENTS_FILE = "story_endings.jsonl", "story_perplexity.jsonl"
NUM_ENDINGS, NUM_DOCUMENTS, NUM_CHOICES = 100, 50, 4


def story_endings(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """n multiple-choice records {"context", "endings" (NUM_CHOICES), "label"} (see module doc)."""
    rng = random.Random(f"scratchlm-eval:story-endings:{seed}")
    records = []
    for _ in range(n):
        name = rng.choice(NAMES)
        plots = rng.sample(PLOT_NAMES, NUM_CHOICES)
        *opening, ending = story(rng, name=name, plot=plots[0]).split("\n")
        wrong = [story(rng, name=name, plot=plot).split("\n")[-1] for plot in plots[1:]]
        label = rng.randrange(NUM_CHOICES)
        endings = wrong[:label] + [ending] + wrong[label:]
        records.append({"context": "\n".join(opening), "endings": endings, "label": label})
    return records


def story_documents(n: int, seed: int = 0) -> list[dict[str, str]]:
    """n records {"text": one whole story} for the perplexity task."""
    rng = random.Random(f"scratchlm-eval:story-perplexity:{seed}")
    return [{"text": story(rng)} for _ in range(n)]


def write_task_data(directory: Path) -> None:
    """Write both tasks' JSONL files into `directory`, one record per line."""
    data = {
        ENDINGS_FILE: story_endings(NUM_ENDINGS),
        DOCUMENTS_FILE: story_documents(NUM_DOCUMENTS),
    }
    for name, records in data.items():
        lines = [json.dumps(r, ensure_ascii=False) for r in records]
        (directory / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _test_split(name: str) -> Any:
    from datasets import Dataset, DatasetDict

    text = (TASK_DIR / name).read_text(encoding="utf-8")
    return DatasetDict(
        {"test": Dataset.from_list([json.loads(line) for line in text.splitlines()])}
    )


def story_endings_dataset(**_: Any) -> Any:
    """The story_endings records as a `datasets.DatasetDict` with one split, "test"."""
    return _test_split(ENDINGS_FILE)


def story_perplexity_dataset(**_: Any) -> Any:
    """The story_perplexity records as a `datasets.DatasetDict` with one split, "test"."""
    return _test_split(DOCUMENTS_FILE)
