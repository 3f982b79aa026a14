"""`scratchlm eval`: our lm-eval model against lm-eval's own `hf` backend on the exported
checkpoint, rolling log-likelihood written out by hand, greedy generation against `scratchlm
generate`, the chat template against transformers', the shipped offline tasks, the results table."""

import json
from pathlib import Path

import pytest
import torch
from tiny_checkpoint import write_tiny_checkpoint

from scratchlm.harness.local_tasks import DOCUMENTS_FILE, ENDINGS_FILE, TASK_DIR, write_task_data
from scratchlm.harness.run import markdown_table


def test_shipped_task_files_are_rebuilt_exactly(tmp_path: Path) -> None:
    write_task_data(tmp_path)
    for name in (ENDINGS_FILE, DOCUMENTS_FILE):
        assert (tmp_path / name).read_bytes() == (TASK_DIR / name).read_bytes(), name
    records = [json.loads(line) for line in (TASK_DIR / ENDINGS_FILE).read_text().splitlines()]
    assert all(len(set(r["endings"])) == len(r["endings"]) == 4 for r in records)
    assert {r["label"] for r in records} == {0, 1, 2, 3}


def test_markdown_table() -> None:
    results = {
        "results": {
            "story_endings": {
                "alias": "story_endings",
                "sample_len": 100,
                "acc,none": 0.25,
                "acc_stderr,none": 0.0435,
                "acc_norm,none": 0.3,
                "acc_norm_stderr,none": 0.046,
            },
            "story_perplexity": {
                "alias": "story_perplexity",
                "bits_per_byte,none": 1.5,
                "bits_per_byte_stderr,none": "N/A",
            },  # fmt: skip
        },
        "n-samples": {"story_endings": {"original": 100, "effective": 100}},
    }
    assert markdown_table(results) == (
        "| task | metric | value | stderr | documents |\n"
        "|---|---|---:|---:|---:|\n"
        "| story_endings | acc | 0.2500 | 0.0435 | 100 |\n"
        "| story_endings | acc_norm | 0.3000 | 0.0460 | 100 |\n"
        "| story_perplexity | bits_per_byte | 1.5000 | N/A |  |\n"
    )


lm_eval = pytest.importorskip("lm_eval")


@pytest.fixture(scope="module")
def base_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny base model whose context (256) is shorter than most stories in its tokens."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("harness") / "run", context_length=256)


@pytest.fixture(scope="module")
def ours(base_ckpt: Path) -> "lm_eval.api.model.LM":
    from scratchlm.harness.lm import ScratchLM

    return ScratchLM(base_ckpt, batch_size=3, device="cpu")


@pytest.mark.slow
def test_harness_runs_it_by_its_registered_name(base_ckpt: Path) -> None:
    from lm_eval.api.registry import get_model
    from lm_eval.tasks import TaskManager

    from scratchlm.harness.lm import ScratchLM

    assert get_model("scratchlm") is ScratchLM
    results = lm_eval.simple_evaluate(
        model="scratchlm",
        model_args=f"checkpoint={base_ckpt},device=cpu,batch_size=2",
        tasks=["story_endings"],
        limit=2,
        task_manager=TaskManager(include_path=str(TASK_DIR), include_defaults=False),
    )
    assert results["config"]["model"] == "scratchlm"
    assert results["n-samples"]["story_endings"]["effective"] == 2


@pytest.mark.slow
def test_loglikelihoods_equal_hf_backend(
    base_ckpt: Path, ours: "lm_eval.api.model.LM", tmp_path: Path
) -> None:
    pytest.importorskip("transformers")
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from scratchlm.export.hf import export_hf

    hf = HFLM(pretrained=str(export_hf(base_ckpt, tmp_path / "hf")), batch_size=4, device="cpu")
    manager = TaskManager(include_path=str(TASK_DIR), include_defaults=False)
    runs = [
        lm_eval.simple_evaluate(
            model=model,
            tasks=["story_endings", "story_perplexity"],
            limit=12,
            task_manager=manager,
            bootstrap_iters=0,
        )
        for model in (ours, hf)
    ]
    mine, theirs = runs
    for task in ("story_endings", "story_perplexity"):
        assert len(mine["samples"][task]) == 12
        for a, b in zip(mine["samples"][task], theirs["samples"][task], strict=True):
            assert a["doc_id"] == b["doc_id"]
            ours_resps, hf_resps = a["resps"], b["resps"]
            assert len(ours_resps) == len(hf_resps)
            for (x,), (y,) in zip(ours_resps, hf_resps, strict=True):
                if task == "story_endings":
                    assert x[0] == pytest.approx(y[0], abs=1e-4) and x[1] == y[1]
                else:  # a whole document: hundreds of tokens, each within ~1e-5
                    assert x == pytest.approx(y, abs=1e-3, rel=1e-6)
    for key in ("acc,none", "acc_norm,none"):
        assert mine["results"]["story_endings"][key] == theirs["results"]["story_endings"][key]
    assert any(s["resps"][0][0][0] < -10 for s in mine["samples"]["story_endings"])


def test_rolling_equals_sum_of_token_logprobs(ours: "lm_eval.api.model.LM") -> None:
    from lm_eval.api.instance import Instance

    text = (TASK_DIR / DOCUMENTS_FILE).read_text().splitlines()
    docs = [json.loads(line)["text"] for line in text[:2]]
    ids = ours.tokenizer.encode(docs[0])
    limit = ours.model.config.context_length
    assert 2 * limit < len(ids) < 3 * limit
    # Each token is predicted once: the first `limit` from <|endoftext|> and the tokens before
    # them; each later block of up to `limit` tokens from the `limit` tokens that end just
    # before the block's last one (for a full block: the token before it, then itself).
    eot = ours.tokenizer.special_ids["<|endoftext|>"]
    windows, done = [([eot] + ids[: limit - 1], ids[:limit])], limit
    while done < len(ids):
        end = min(done + limit, len(ids))
        windows.append((ids[end - limit - 1 : end - 1], ids[done:end]))
        done = end
    assert len(windows) == 3 and len(windows[-1][1]) < limit
    expected = 0.0
    with torch.no_grad():
        for inputs, predicted in windows:
            logprobs = ours.model(torch.tensor([inputs]))[0].log_softmax(-1)  # (T, V)
            tail = logprobs[len(inputs) - len(predicted) :]
            expected += tail[torch.arange(len(predicted)), predicted].sum().item()
    requests = [Instance("loglikelihood_rolling", {}, (d,), i) for i, d in enumerate(docs)]
    got = ours.loglikelihood_rolling(requests, disable_tqdm=True)
    assert got[0] == pytest.approx(expected, abs=1e-3, rel=1e-6)
    alone = ours.loglikelihood_rolling(requests[1:], disable_tqdm=True)
    assert got[1] == pytest.approx(alone[0], abs=1e-4)  # batched with another document or not


def test_greedy_generate_until_equals_scratchlm_generate(
    base_ckpt: Path, ours: "lm_eval.api.model.LM", capsys: pytest.CaptureFixture[str]
) -> None:
    from lm_eval.api.instance import Instance

    from scratchlm.cli import main

    prompts = ["Once upon a time", "Lily saw a big red ball in the park and", "The"]
    stops = [" she", "."]
    gen_kwargs = {"until": stops, "max_gen_toks": 30, "do_sample": False}
    requests = [
        Instance("generate_until", {}, (p, dict(gen_kwargs)), i) for i, p in enumerate(prompts)
    ]
    got = ours.generate_until(requests, disable_tqdm=True)
    capsys.readouterr()
    flags = ["--temperature", "0", "--max-new-tokens", "30", "--stop", stops[0], "--stop", stops[1]]
    for prompt, text in zip(prompts, got, strict=True):
        main(["generate", "--checkpoint", str(base_ckpt), "--prompt", prompt, *flags])
        assert capsys.readouterr().out == prompt + text + "\n"
    assert any(text for text in got)


def test_chat_template_equals_transformers(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")

    from scratchlm.export.hf import export_hf
    from scratchlm.harness.lm import ScratchLM
    from scratchlm.tokenizer.chat import render_prompt

    ckpt = write_tiny_checkpoint(tmp_path / "run", chat=True)
    lm = ScratchLM(ckpt, device="cpu")
    hf = transformers.AutoTokenizer.from_pretrained(export_hf(ckpt, tmp_path / "hf"))
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "A story?"},
    ]
    text = lm.apply_chat_template(messages)
    assert text == hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert lm.tok_encode(text) == render_prompt(lm.tokenizer, messages)
    prefilled = messages + [{"role": "assistant", "content": "Once"}]
    assert lm.apply_chat_template(prefilled, add_generation_prompt=False) == (
        hf.apply_chat_template(prefilled, tokenize=False, continue_final_message=True)
    )


def test_base_model_refuses_the_chat_template(ours: "lm_eval.api.model.LM") -> None:
    with pytest.raises(ValueError, match="without --apply-chat-template"):
        ours.apply_chat_template([{"role": "user", "content": "Hi"}])


@pytest.mark.slow
def test_eval_command_prints_the_table_and_writes_json(
    base_ckpt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scratchlm.cli import main

    run_dir = base_ckpt.parent.parent
    args = ["eval", "--checkpoint", str(run_dir), "--tasks", "story_endings,story_perplexity"]
    assert main(args + ["--limit", "5", "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    assert "story_endings" in out and "acc_norm" in out and "bits_per_byte" in out
    path = run_dir / "eval" / f"{base_ckpt.name}-story_endings+story_perplexity.json"
    assert f"results: {path}" in out
    results = json.loads(path.read_text())
    assert 0 <= results["results"]["story_endings"]["acc,none"] <= 1
    assert results["n-samples"]["story_perplexity"]["effective"] == 5
    assert results["config"]["checkpoint"] == str(base_ckpt)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tasks", ","], "names no task"),
        (["--tasks", "story_endings", "--limit", "0"], "--limit must be >= 1"),
        (["--tasks", "story_endings", "--batch-size", "0"], "batch_size must be an integer"),
        (["--tasks", "story_endings", "--out", "/nonexistent/r.json"], "does not exist"),
    ],
)
def test_eval_command_rejects_bad_input(
    base_ckpt: Path, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from scratchlm.cli import main

    assert main(["eval", "--checkpoint", str(base_ckpt), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert not (base_ckpt / "eval").exists()
