"""Hugging Face export checked by `transformers` itself (logits, tokenizer, chat template, greedy
decoding), the refusal of a non-Llama model, and the import round trip."""

from pathlib import Path

import pytest
import torch
from conftest import SAMPLE_TEXT
from tiny_checkpoint import write_tiny_checkpoint

from scratchlm.cli import main
from scratchlm.export.hf import export_hf, import_hf
from scratchlm.inference.engine import Engine
from scratchlm.model.generate import SamplingConfig, generate
from scratchlm.tokenizer.chat import render_prompt
from scratchlm.train.checkpoint import load_checkpoint, load_model

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.slow  # loads transformers and its models: several seconds

TEXTS = [
    SAMPLE_TEXT,
    "Hello world",
    "  two leading spaces, trailing ones   ",
    "\n\nnewlines\r\nand\ttabs\t\t",
    "<|endoftext|>Lily<|endoftext|><|endoftext|> ran",
    "<|user|>hi<|end|><|assistant|>hello<|end|>",
    "emoji 🙂🚀 and CJK 日本語, accents éàü, RTL שלום",
    "it's we'll they've 1234567 3.14 -42 $$$ !!! ???",
    "",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("export")
    ckpt = write_tiny_checkpoint(root / "run", chat=True, tie_embeddings=False)
    return ckpt, export_hf(ckpt, root / "hf")


def test_transformers_logits_equal_ours(exported: tuple[Path, Path]) -> None:
    ckpt, out = exported
    hf = transformers.AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    assert type(hf).__name__ == "LlamaForCausalLM"
    ours = load_model(ckpt)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, ours.config.vocab_size, (2, 40), generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits.float(), ours(ids), atol=1e-4, rtol=0)


def test_transformers_tokenizer_gives_our_ids(exported: tuple[Path, Path]) -> None:
    ckpt, out = exported
    hf = transformers.AutoTokenizer.from_pretrained(out, local_files_only=True)
    ours = Engine.from_checkpoint(ckpt, "cpu").tokenizer
    for text in TEXTS:
        ids = ours.encode(text)
        assert hf.encode(text, add_special_tokens=False) == ids, text
        assert hf.decode(ids) == ours.decode(ids) == text
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}]
    text = hf.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert hf.encode(text, add_special_tokens=False) == render_prompt(ours, messages)


def test_transformers_greedy_generate_equals_ours(exported: tuple[Path, Path]) -> None:
    ckpt, out = exported
    hf = transformers.AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    ours = load_model(ckpt)
    prompt = [5, 80, 17, 260, 33, 9]
    with torch.no_grad():
        theirs = hf.generate(torch.tensor([prompt]), max_new_tokens=30, do_sample=False)
    config = SamplingConfig(max_new_tokens=30, temperature=0, stop_ids=tuple(hf_eos(hf)))
    mine = generate(ours, [prompt], config)[0]
    assert len(mine) > 5 and mine == theirs[0, len(prompt) :].tolist()


def hf_eos(hf: "transformers.PreTrainedModel") -> list[int]:
    eos = hf.generation_config.eos_token_id
    return eos if isinstance(eos, list) else [eos]


def test_import_round_trip(exported: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, out = exported
    back = import_hf(out, tmp_path / "back")
    original, imported = load_model(ckpt), load_model(back)
    assert imported.config == original.config
    theirs = imported.state_dict()
    for name, weight in original.state_dict().items():
        assert torch.equal(weight, theirs[name]), name
    assert load_checkpoint(back).state["step"] == 0
    before, after = (Engine.from_checkpoint(c, "cpu").tokenizer for c in (ckpt, back))
    assert after.encode(SAMPLE_TEXT) == before.encode(SAMPLE_TEXT)
    assert after.special_ids == before.special_ids


def test_a_model_that_is_not_a_llama_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = write_tiny_checkpoint(tmp_path / "run", post_norm=True)
    assert main(["export-hf", "--checkpoint", str(ckpt), "--out", str(tmp_path / "hf")]) == 2
    assert "post_norm=True" in capsys.readouterr().err
    assert not (tmp_path / "hf").exists()


def test_export_never_overwrites(exported: tuple[Path, Path]) -> None:
    ckpt, out = exported
    with pytest.raises(FileExistsError, match="already exists"):
        export_hf(ckpt, out)
