"""GGUF export: the rotary row order against interleaved RoPE written out here, the file read back
with the `gguf` package, and llama.cpp itself (through llama-cpp-python) on the file: tokenizer
ids, logits, greedy decoding, the chat template."""

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SAMPLE_TEXT
from tiny_checkpoint import write_tiny_checkpoint

from scratchlm.export.gguf import interleave_rotary_rows
from scratchlm.model.transformer import RotaryEmbedding, apply_rotary


def interleaved_rope(x: torch.Tensor, theta: float) -> torch.Tensor:
    """llama.cpp's "normal" RoPE: dims 2i and 2i + 1 rotate by pos * theta^(-2i / Dh).

    x: (T, H, Dh) at positions 0 .. T-1.
    """
    t, _, dh = x.shape
    angle = torch.arange(t)[:, None] * theta ** (-torch.arange(0, dh, 2) / dh)  # (T, Dh/2)
    cos, sin = angle.cos()[:, None], angle.sin()[:, None]
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


def test_interleaved_rows_under_llama_cpp_rope_equal_our_rope() -> None:
    heads, dh, width, t, theta = 3, 8, 20, 7, 10000.0
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(heads * dh, width, generator=gen)
    x = torch.randn(t, width, generator=gen)
    rotary = RotaryEmbedding(dh, t, theta)
    cos, sin = rotary(torch.arange(t))
    ours = apply_rotary((x @ weight.T).view(t, heads, dh).transpose(0, 1), cos, sin)  # (H, T, Dh)
    theirs = interleaved_rope(
        (x @ interleave_rotary_rows(weight, heads).T).view(t, heads, dh), theta
    )
    # Same numbers, in the interleaved order; dot products between heads' q and k are unchanged.
    half = torch.stack((torch.arange(dh // 2), torch.arange(dh // 2) + dh // 2), -1).flatten()
    torch.testing.assert_close(theirs.transpose(0, 1), ours[..., half], atol=1e-5, rtol=1e-5)


gguf = pytest.importorskip("gguf")


@pytest.fixture(scope="module")
def chat_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Chat tokens, grouped-query attention, an untied head and 100-odd unused embedding rows."""
    root = tmp_path_factory.mktemp("gguf")
    return write_tiny_checkpoint(root / "run", chat=True, vocab_size=512, context_length=128)


@pytest.fixture(scope="module")
def files(chat_ckpt: Path) -> dict[str, Path]:
    from scratchlm.export.gguf import export_gguf

    root = chat_ckpt.parent.parent.parent
    return {t: export_gguf(chat_ckpt, root / f"model-{t}.gguf", t) for t in ("f32", "f16", "q8_0")}


def _field(reader: "gguf.GGUFReader", key: str) -> object:
    return reader.fields[key].contents()


def test_gguf_file_holds_the_llama_layout(chat_ckpt: Path, files: dict[str, Path]) -> None:
    from scratchlm.export.hf import CHAT_TEMPLATE
    from scratchlm.inference.engine import Engine
    from scratchlm.tokenizer.files import token_to_text

    ours = Engine.from_checkpoint(chat_ckpt, "cpu")
    config, tokenizer = ours.model.config, ours.tokenizer
    reader = gguf.GGUFReader(files["q8_0"])
    assert _field(reader, "general.architecture") == "llama"
    expected = {
        "llama.context_length": 128,
        "llama.embedding_length": 32,
        "llama.block_count": 2,
        "llama.attention.head_count": 4,
        "llama.attention.head_count_kv": 2,
        "llama.rope.dimension_count": 8,
        "llama.feed_forward_length": config.d_ff,
        "tokenizer.ggml.bos_token_id": tokenizer.special_ids["<|endoftext|>"],
        "tokenizer.ggml.eos_token_id": tokenizer.special_ids["<|end|>"],
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "gpt-2",
        "tokenizer.chat_template": CHAT_TEMPLATE,
    }
    for key, value in expected.items():
        assert _field(reader, key) == value, key
    tokens, types = (
        _field(reader, "tokenizer.ggml.tokens"),
        _field(reader, "tokenizer.ggml.token_type"),
    )
    assert len(tokens) == len(types) == 512
    user = tokenizer.special_ids["<|user|>"]
    assert tokens[user] == "<|user|>" and types[user] == 3 and types[ord("a")] == 1
    assert tokens[ord("a")] == "a" and tokens[tokenizer.encode(" the")[0]].startswith("Ġ")
    assert tokens[511] == "[PAD511]" and types[511] == 5
    merges = _field(reader, "tokenizer.ggml.merges")
    left, right = tokenizer.merges[0]
    assert merges[0] == f"{token_to_text(left)} {token_to_text(right)}"
    kinds = {t.name: t.tensor_type.name for t in reader.tensors}
    assert kinds["blk.0.attn_norm.weight"] == "F32" and kinds["blk.1.ffn_down.weight"] == "Q8_0"
    assert kinds["output.weight"] == "Q8_0" and len(kinds) == 1 + 2 * 9 + 2


def test_q8_0_falls_back_to_f16_for_short_rows() -> None:
    from scratchlm.export.gguf import _stored

    data, kind = _stored(gguf, np.ones((3, 48), dtype=np.float32), "q8_0")
    assert kind.name == "F16" and data.dtype == np.float16


def test_a_model_that_is_not_a_llama_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scratchlm.cli import main

    ckpt = write_tiny_checkpoint(tmp_path / "run", qk_norm=True)
    out = tmp_path / "m.gguf"
    assert main(["export-gguf", "--checkpoint", str(ckpt), "--out", str(out)]) == 2
    assert "qk_norm=True" in capsys.readouterr().err
    assert list(tmp_path.glob("*.gguf*")) == []


# ------------------------------------------------------------------------------- llama.cpp


@pytest.fixture(scope="module")
def llama(files: dict[str, Path]) -> Iterator[object]:
    """A loader of the exported files in llama.cpp: f32 KV cache, all logits kept, one thread,
    weights in plain CPU buffers as stored in the file (llama-cli's --no-repack).

    Repacked weights crash on Intel CPUs with AMX: llama-cpp-python 0.3.36 segfaults in
    ggml_backend_amx_mul_mat on every q8_0 file there (seen on d_model 32 to 256; upstream
    ggml-org/llama.cpp#20824), which would end the whole test session. Llama() has no argument for
    it, so the model parameters it starts from are patched while it loads.
    """
    llama_cpp = pytest.importorskip("llama_cpp")
    loaded: list[llama_cpp.Llama] = []
    default_params = llama_cpp.llama_cpp.llama_model_default_params

    def plain_buffers() -> object:
        params = default_params()
        params.use_extra_bufts = False
        return params

    def load(outtype: str) -> "llama_cpp.Llama":
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(llama_cpp.llama_cpp, "llama_model_default_params", plain_buffers)
            loaded.append(llama_cpp.Llama(
                str(files[outtype]), n_ctx=128, logits_all=True, verbose=False, n_threads=1,
                type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32,
            ))  # fmt: skip
        assert not loaded[-1].model_params.use_extra_bufts
        return loaded[-1]

    yield load
    for model in loaded:
        model.close()


TEXTS = [
    SAMPLE_TEXT,
    "Hello world",
    "  two leading spaces, trailing ones   ",
    "\n\nnewlines\r\nand\ttabs\t\t  \n",
    "<|endoftext|>Lily<|endoftext|><|endoftext|> ran",
    "<|user|>hi<|end|><|assistant|>hello<|end|>",
    "emoji 🙂🚀 and CJK 日本語のテキスト, accents éàü ñ Ω, RTL שלום, Ελληνικά",
    "it's we'll they've I'M 1234567 3.14 -42 $$$ !!! ??? a\u00a0b",
]


def test_llama_cpp_tokenizer_gives_our_ids(chat_ckpt: Path, llama: object) -> None:
    from scratchlm.inference.engine import Engine

    ours = Engine.from_checkpoint(chat_ckpt, "cpu").tokenizer
    theirs = llama("f32")
    for text in TEXTS:
        ids = ours.encode(text)
        assert theirs.tokenize(text.encode(), add_bos=False, special=True) == ids, text
        assert theirs.detokenize(ids, special=True).decode() == text


# Measured on this tiny random model (logits up to ~1.7): f32 7e-7, f16 1.3e-3, q8_0 3.0e-2.
@pytest.mark.parametrize(("outtype", "atol"), [("f32", 1e-4), ("f16", 1e-2), ("q8_0", 0.1)])
def test_llama_cpp_logits_match_ours(
    chat_ckpt: Path, llama: object, outtype: str, atol: float
) -> None:
    from scratchlm.train.checkpoint import load_model

    ours = load_model(chat_ckpt)
    ids = torch.randint(0, 404, (100,), generator=torch.Generator().manual_seed(1)).tolist()
    theirs = llama(outtype)
    theirs.eval(ids)
    with torch.no_grad():
        expected = ours(torch.tensor([ids]))[0].numpy()
    got = np.array(theirs.scores[: len(ids)])
    assert np.abs(got - expected).max() < atol, np.abs(got - expected).max()
    assert np.abs(expected).max() > 1.0  # the logits are not all near zero


def test_llama_cpp_greedy_decoding_picks_our_argmax(chat_ckpt: Path, llama: object) -> None:
    from scratchlm.train.checkpoint import load_model

    ours = load_model(chat_ckpt)
    theirs = llama("f32")
    prompt = [5, 80, 17, 260, 33, 9]
    picked = list(itertools.islice(theirs.generate(prompt, temp=0.0, top_k=1, reset=True), 20))
    assert len(picked) == 20
    with torch.no_grad():  # teacher-forced on llama.cpp's tokens: each is our argmax (up to 1e-4)
        logits = ours(torch.tensor([prompt + picked]))[0, len(prompt) - 1 : -1]
    chosen = logits[torch.arange(20), torch.tensor(picked)]
    assert (logits.max(dim=-1).values - chosen).max() < 1e-4


def test_llama_cpp_chat_completion_uses_our_template(chat_ckpt: Path, llama: object) -> None:
    from scratchlm.inference.engine import Engine
    from scratchlm.tokenizer.chat import render_prompt

    tokenizer = Engine.from_checkpoint(chat_ckpt, "cpu").tokenizer
    theirs = llama("f32")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}]
    reply = theirs.create_chat_completion(messages=messages, max_tokens=8, temperature=0.0)
    prompt = render_prompt(tokenizer, messages)
    assert reply["usage"]["prompt_tokens"] == len(prompt)
    assert theirs.input_ids[: len(prompt)].tolist() == prompt
    assert reply["choices"][0]["message"]["role"] == "assistant"
    assert reply["choices"][0]["finish_reason"] in ("stop", "length")
