"""The default task: seeded instructions, the checker, demonstrations, pairs and evaluation."""

import json
import re
from pathlib import Path

import pytest
import torch
from posttrain_helpers import make_base_checkpoint

from scratchlm.cli import main
from scratchlm.eval.tasks import (
    get_task,
    greedy_answers,
    make_instructions,
    math_instruction,
    parse_instruction,
    preference_records,
    replace_word,
    reward,
    score,
    self_preference_records,
    sft_records,
    story_instruction,
    write_task_files,
)
from scratchlm.posttrain.common import load_chat_model
from scratchlm.posttrain.evaluate import evaluate_task


def test_instructions_are_seeded_and_varied() -> None:
    first = make_instructions(50, seed=3)
    assert first == make_instructions(50, seed=3)
    assert first != make_instructions(50, seed=4)
    kinds = {i.kind for i in first}
    assert kinds == {"story", "arithmetic"}
    assert len({i.prompt for i in first}) > 40


def test_every_prompt_parses_back_to_its_constraints() -> None:
    for instruction in make_instructions(200, seed=0):
        assert parse_instruction(instruction.prompt) == instruction
    with pytest.raises(ValueError, match="not a default-task instruction"):
        parse_instruction("Tell me a joke.")


def test_story_reward_counts_whole_words_case_insensitively() -> None:
    prompt = story_instruction("Mia", "owl", "kite").prompt
    assert prompt == "Write a short story about Mia and an owl that includes the word kite."
    assert reward(prompt, "MIA saw an Owl. The owl had a kite.") == 1.0
    assert reward(prompt, "Mia saw an owl.") == pytest.approx(2 / 3)
    assert reward(prompt, "Mia saw owls and kites.") == pytest.approx(1 / 3)  # whole words only
    assert reward(prompt, "Amia bowled a kitesurf.") == 0.0


def test_arithmetic_reward_checks_the_last_integer() -> None:
    prompt = math_instruction(17, "-", 9).prompt
    assert prompt == "What is 17 - 9?"
    assert reward(prompt, "17 - 9 = 8.") == 1.0
    assert reward(prompt, "The answer is 8") == 1.0
    assert reward(prompt, "8, no wait, 9") == 0.0
    assert reward(prompt, "eight") == 0.0


def test_demonstrations_satisfy_and_rejected_answers_do_not() -> None:
    for record in sft_records(40, seed=1):
        user, assistant = record["messages"]
        assert reward(user["content"], assistant["content"]) == 1.0
    for record in preference_records(40, seed=2):
        assert reward(record["prompt"], record["chosen"]) == 1.0
        assert reward(record["prompt"], record["rejected"]) < 1.0
        assert record["chosen"] != record["rejected"]


def test_story_pairs_differ_only_in_the_constraint_words() -> None:
    stories = [r for r in preference_records(60, seed=4) if not r["chosen"][0].isdigit()]
    assert stories
    for record in stories:
        chosen, rejected = record["chosen"].split(), record["rejected"].split()
        required = {w.lower() for w in parse_instruction(record["prompt"]).required}
        changed = [(a, b) for a, b in zip(chosen, rejected, strict=False) if a != b]
        assert changed  # same story, other entities
        for before, _ in changed:
            word = before.strip(".,!?\"':;").lower().removesuffix("'s")
            # the changed word is a constraint word, its plural, or an article before one
            assert word in {"a", "an"} or any(word.startswith(r[:3]) for r in required), before


def test_replace_word_follows_articles_plurals_and_capitals() -> None:
    text = "An owl sat by a box. Owls hoot. The owl's hat. Bowls and owlets stay."
    assert replace_word(text, "owl", "fox") == (
        "A fox sat by a box. Foxes hoot. The fox's hat. Bowls and owlets stay."
    )
    assert replace_word("Mia met Mia's mom.", "Mia", "Ava") == "Ava met Ava's mom."
    assert replace_word("a kite and an elephant", "kite", "umbrella") == (
        "an umbrella and an elephant"
    )


def test_story_demonstrations_name_the_cast_in_their_second_sentence() -> None:
    records = [r["messages"] for r in sft_records(80, seed=6)]
    stories = [(u["content"], a["content"]) for u, a in records if u["content"].startswith("Write")]
    assert len(stories) > 20
    for prompt, answer in stories:
        name, animal, thing = parse_instruction(prompt).required
        sentences = re.split(r"(?<=[.!?])\s+", answer)
        article = "an" if thing[0] in "aeiou" else "a"
        assert sentences[1] == f"{name} had a pet {animal} and {article} {thing}.", answer
        assert 4 <= len(sentences) <= 6  # the story's first sentence, the cast, two more


def test_story_demonstrations_stay_short() -> None:
    answers = [r["messages"][1]["content"] for r in sft_records(60, seed=5)]
    stories = [a for a in answers if not a[0].isdigit()]
    assert stories and max(len(a.split()) for a in stories) < 200


def test_task_files_are_written_and_deterministic(tmp_path: Path) -> None:
    paths = write_task_files(tmp_path / "a", n_sft=20, n_preference=10, seed=0)
    again = write_task_files(tmp_path / "b", n_sft=20, n_preference=10, seed=0)
    for name in ("sft", "preference"):
        assert paths[name].read_text() == again[name].read_text()
    sft = [json.loads(line) for line in paths["sft"].read_text().splitlines()]
    pref = [json.loads(line) for line in paths["preference"].read_text().splitlines()]
    assert len(sft) == 20 and len(pref) == 10
    assert set(pref[0]) == {"prompt", "chosen", "rejected"}
    assert not list((tmp_path / "a").glob(".*tmp*"))


def test_default_task_is_registered() -> None:
    task = get_task("default")
    prompts = task.prompts(5, 0)
    assert prompts == [i.prompt for i in make_instructions(5, 0)]
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        get_task("nope")
    arithmetic, stories = get_task("arithmetic").prompts(20, 0), get_task("story").prompts(20, 0)
    assert all(parse_instruction(p).kind == "arithmetic" for p in arithmetic)
    assert all(parse_instruction(p).kind == "story" for p in stories)


def test_evaluate_task_reports_a_rate(tmp_path: Path, corpus_text: str) -> None:
    base = make_base_checkpoint(tmp_path, corpus_text, context_length=96)
    result = evaluate_task(base, torch.device("cpu"), n=6, seed=0, max_new_tokens=8)
    assert 0.0 <= result["rate"] <= 1.0 and result["n"] == 6
    assert result["checkpoint"] == str(base)
    assert len(result["samples"]) == 4 and all(0 <= s["score"] <= 1 for s in result["samples"])
    assert score(make_instructions(1, 0)[0], "") == 0.0
    # The command takes a run directory too: its newest checkpoint is graded.
    out = tmp_path / "rate.json"
    code = main(["task", "eval", "--checkpoint", str(base.parent.parent), "--n", "2", "--seed",
                 "0", "--device", "cpu", "--json", str(out)])  # fmt: skip
    assert code == 0
    written = json.loads(out.read_text())
    assert written["checkpoint"] == str(base) and written["n"] == 2


def test_self_pairs_reject_the_models_own_mistakes(tmp_path: Path, corpus_text: str) -> None:
    base = make_base_checkpoint(tmp_path, corpus_text, context_length=96)
    model, tokenizer = load_chat_model(base, torch.device("cpu"))
    prompts = get_task("default").prompts(6, 0)
    answers = greedy_answers(model, tokenizer, prompts, max_new_tokens=8)
    records = self_preference_records(model, tokenizer, prompts, seed=0, max_new_tokens=8)
    assert [r["prompt"] for r in records] == prompts
    for record, answer in zip(records, answers, strict=True):
        assert reward(record["prompt"], record["chosen"]) == 1.0
        assert reward(record["prompt"], record["rejected"]) < 1.0
        # an untrained model fails, so its answer is the rejected side
        assert record["rejected"] == answer

    out = tmp_path / "pairs" / "self.jsonl"
    code = main(["task", "pairs", "--checkpoint", str(base), "--out", str(out), "--n", "4",
                 "--task", "arithmetic", "--device", "cpu"])  # fmt: skip
    assert code == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prompt"] for r in written] == get_task("arithmetic").prompts(4, 0)
    code = main(["task", "pairs", "--checkpoint", str(base), "--out", str(tmp_path), "--n", "2"])
    assert code == 2 and not list(tmp_path.glob(".*tmp*"))
