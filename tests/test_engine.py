"""The inference engine: checkpoint loading, UTF-8-safe streaming, stop strings, chat prompts."""

from pathlib import Path

import pytest
import torch
from conftest import SAMPLE_TEXT
from tiny_checkpoint import write_tiny_checkpoint

from scratchlm.inference.engine import Engine
from scratchlm.inference.text import TextAssembler, split_at_stop
from scratchlm.model.generate import SamplingConfig, generate
from scratchlm.tokenizer.chat import render_prompt

GREEDY = SamplingConfig(max_new_tokens=40, temperature=0)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return Engine.from_checkpoint(write_tiny_checkpoint(tmp_path_factory.mktemp("run")), "cpu")


@pytest.fixture(scope="module")
def chat_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("chat")
    return Engine.from_checkpoint(write_tiny_checkpoint(root, chat=True), "cpu")


def test_split_at_stop() -> None:
    assert split_at_stop("hello wor", ("world",)) == ("hello ", False)
    assert split_at_stop("hello world!", ("world", "lo")) == ("hel", True)
    assert split_at_stop("abc", ("x",)) == ("abc", False)
    assert split_at_stop("ab", ()) == ("ab", False)
    assert split_at_stop("a\n\n", ("\n\nUser:",)) == ("a", False)


def test_assembler_never_splits_a_character(engine: Engine) -> None:
    ids = engine.tokenizer.encode(SAMPLE_TEXT)
    pieces_per_token = TextAssembler()
    pieces = [pieces_per_token.push(engine.tokenizer.vocab[i]) for i in ids]
    pieces.append(pieces_per_token.finish())
    assert "".join(pieces) == SAMPLE_TEXT
    assert not any("\ufffd" in p for p in pieces)
    one_byte_at_a_time = TextAssembler()
    data = "日本🙂é".encode()
    pieces = [one_byte_at_a_time.push(data[i : i + 1]) for i in range(len(data))]
    assert [p for p in pieces if p] == ["日", "本", "🙂", "é"]
    cut = TextAssembler()
    assert cut.push("🙂".encode()[:2]) == "" and cut.finish() == "\ufffd"


def test_assembler_cuts_at_a_stop_string() -> None:
    text = TextAssembler(("STOP",))
    shown = [text.push(b) for b in (b"one ST", b"two ", b"S", b"TO", b"P three")]
    assert "".join(shown) == "one STtwo " and text.stopped
    assert text.push(b"more") == "" and text.finish() == ""


def test_engine_generates_what_the_model_does(engine: Engine) -> None:
    assert engine.model.layers[0].attn.qkv.weight.t().is_contiguous()  # in decode_layout
    prompt = engine.encode_text("Once upon a time")
    expected = generate(engine.model, [prompt], GREEDY)[0]
    result = engine.complete(prompt, GREEDY)
    assert result.completion_tokens == len(expected)
    stop_id = engine.tokenizer.special_ids["<|endoftext|>"]
    assert result.text == engine.tokenizer.decode([i for i in expected if i != stop_id])
    assert result.finish_reason == ("stop" if expected[-1] == stop_id else "length")


def test_stop_string_ends_the_text(engine: Engine) -> None:
    prompt = engine.encode_text("Lily")
    full = engine.complete(prompt, GREEDY).text
    stop = full[10:13]
    assert stop.strip(), "the tiny model should produce some text here"
    cut = engine.complete(prompt, GREEDY, stop=[stop])
    assert cut.text == full[: full.index(stop)]
    assert cut.finish_reason == "stop"


def test_seed_repeats_and_streaming_matches_complete(engine: Engine) -> None:
    prompt = engine.encode_text("The quick brown fox")
    config = SamplingConfig(max_new_tokens=30, temperature=1.0, top_p=0.9)
    pieces = list(engine.stream(prompt, config, seed=7))
    assert "".join(pieces) == engine.complete(prompt, config, seed=7).text
    assert len(pieces) > 1


def test_chat_prompt_uses_the_template(chat_engine: Engine, engine: Engine) -> None:
    messages = [{"role": "user", "content": "Hi there"}]
    ids = chat_engine.encode_chat(messages)
    assert ids == render_prompt(chat_engine.tokenizer, messages)
    assert chat_engine.chat and not engine.chat
    assert engine.tokenizer.decode(engine.encode_chat(messages)) == "Hi there\n"
    end = chat_engine.tokenizer.special_ids["<|end|>"]
    assert end in chat_engine.chat_stop_ids


def test_weights_round_trip_through_the_checkpoint(tmp_path: Path) -> None:
    write_tiny_checkpoint(tmp_path)
    loaded = Engine.from_checkpoint(tmp_path, "cpu").model  # a run directory: its newest checkpoint
    torch.manual_seed(0)
    fresh = type(loaded).from_config(loaded.config)
    saved, built = loaded.state_dict(), fresh.state_dict()
    assert saved.keys() == built.keys()
    for name in saved:  # the bytes round-trip exactly
        assert torch.equal(saved[name], built[name]), name
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        # decode_layout stores the weights column-major, so the matmuls run other BLAS kernels,
        # whose sums may round differently (3.6e-7 on an AVX-512 Xeon): a tolerance, not atol=0.
        torch.testing.assert_close(loaded(ids), fresh(ids), rtol=0, atol=1e-5)
