"""GGUF export: a checkpoint as one file that llama.cpp (and what is built on it) runs.

The file declares the `llama` architecture and holds

    hyperparameters   context length, width, layers, FFN width, heads and KV heads, head size
                      (key/value length and rotary dimensions), RoPE base, RMSNorm eps
    tensors           under llama.cpp's names (token_embd, blk.N.attn_q, ..., output_norm,
                      output; no output with tied embeddings); 1-D norms always f32, matrices in
                      --outtype: f32, f16 or q8_0 (blocks of 32 along a row; a matrix whose rows
                      are not a multiple of 32 long falls back to f16)
    tokenizer         our byte-level BPE as a "gpt2" tokenizer with the GPT-2 pre-tokenizer: every
                      id's token in the byte-level text form of vocab.json, the merges in rank
                      order, token types (special tokens are control tokens; embedding rows
                      without a token are unused "[PAD<id>]"), <|endoftext|> as bos (never added),
                      eos (<|end|> for a chat model, which also gets eot and the chat template)

Rotary pairing: our RoPE rotates dimension i with i + Dh/2 within a head (the half-split layout of
Hugging Face Llama), while llama.cpp's llama architecture rotates neighbours 2i and 2i + 1. The
query and key rows of each head are therefore reordered (`interleave_rotary_rows`) so that row i
lands at 2i and row i + Dh/2 at 2i + 1: the rotated pairs are then the same numbers, and the
attention scores are unchanged because q and k get the same order.

Only Llama-shaped models export (as for `export-hf`); the file is written under a temporary name
beside --out and renamed when complete.
"""

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from scratchlm.config import CHECKPOINT_ARG, Command, arg
from scratchlm.export.hf import CHAT_TEMPLATE, refuse_existing
from scratchlm.model.config import ModelConfig
from scratchlm.model.hf import RMS_NORM_EPS, check_llama_compatible, to_llama_state_dict
from scratchlm.tokenizer import chat
from scratchlm.tokenizer.files import merges_text, token_to_text
from scratchlm.tokenizer.tokenizer import Tokenizer
from scratchlm.train.checkpoint import find_checkpoint, load_model

log = logging.getLogger(__name__)

OUTTYPES = ("f32", "f16", "q8_0")
Q8_0_BLOCK = 32  # values per q8_0 block, along a row

# Per-layer names: Hugging Face Llama's -> llama.cpp's.
_LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def interleave_rotary_rows(weight: Tensor, heads: int) -> Tensor:
    """Reorder a q or k projection from half-split to interleaved rotary pairs.

    weight: (heads * Dh, C). Within each head, output row i moves to 2i and row i + Dh/2 to
    2i + 1 (i < Dh/2). Returns a new (heads * Dh, C) tensor.
    """
    rows, width = weight.shape
    half = rows // heads // 2
    return weight.reshape(heads, 2, half, width).transpose(1, 2).reshape(rows, width)


def gguf_tensors(state_dict: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """Our state dict under llama.cpp's tensor names, q and k rows interleaved (see module doc)."""
    llama = to_llama_state_dict(state_dict, config)
    out = {"token_embd.weight": llama["model.embed_tokens.weight"]}
    for i in range(config.num_layers):
        for hf_name, name in _LAYER_NAMES.items():
            weight = llama[f"model.layers.{i}.{hf_name}"]
            if name == "attn_q.weight":
                weight = interleave_rotary_rows(weight, config.num_heads)
            elif name == "attn_k.weight":
                weight = interleave_rotary_rows(weight, config.num_kv_heads)
            out[f"blk.{i}.{name}"] = weight
    out["output_norm.weight"] = llama["model.norm.weight"]
    if "lm_head.weight" in llama:
        out["output.weight"] = llama["lm_head.weight"]
    return out


def gguf_vocab(tokenizer: Tokenizer, vocab_size: int) -> tuple[list[str], list[int]]:
    """Token texts and llama.cpp token types for ids 0 .. vocab_size - 1.

    Ordinary tokens are NORMAL (1), in vocab.json's byte-level text; special tokens CONTROL (3),
    as their own text; ids with an embedding row but no token UNUSED (5), named "[PAD<id>]".
    """
    specials = {i: tok for tok, i in tokenizer.special_ids.items()}
    tokens, types = [], []
    for i in range(vocab_size):
        if i in specials:
            tokens.append(specials[i])
            types.append(3)
        elif i in tokenizer.vocab:
            tokens.append(token_to_text(tokenizer.vocab[i]))
            types.append(1)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(5)
    return tokens, types


def export_gguf(checkpoint: str | Path, out: str | Path, outtype: str = "f16") -> Path:
    """Write the checkpoint (or a run directory's newest one) as a llama GGUF file `out`."""
    try:
        import gguf
    except ImportError:
        raise ValueError(
            "export-gguf needs the gguf package: pip install 'scratchlm[gguf]'"
        ) from None
    if outtype not in OUTTYPES:
        raise ValueError(f"unknown --outtype {outtype!r}: use one of {', '.join(OUTTYPES)}")
    ckpt = find_checkpoint(checkpoint)
    out = Path(out)
    refuse_existing(out)
    model = load_model(ckpt, "cpu")
    config = model.config
    try:
        check_llama_compatible(config)
    except ValueError as exc:
        raise ValueError(f"cannot export {ckpt} as a llama GGUF: {exc}") from None
    tokenizer = Tokenizer.from_dir(ckpt / "tokenizer")
    if tokenizer.vocab_size > config.vocab_size:
        raise ValueError(
            f"checkpoint {ckpt}: tokenizer has {tokenizer.vocab_size} ids but the model only "
            f"{config.vocab_size}"
        )
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    logging.getLogger("gguf").setLevel(logging.WARNING)  # its INFO lines name the temporary file
    try:
        writer = gguf.GGUFWriter(tmp, "llama")
        _write_metadata(writer, gguf, config, tokenizer, outtype, ckpt)
        for name, weight in gguf_tensors(model.state_dict(), config).items():
            data, kind = _stored(gguf, weight.detach().float().numpy(), outtype)
            writer.add_tensor(name, data, raw_dtype=kind)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file(progress=True)
        writer.close()
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s to %s (%s)", ckpt, out, outtype)
    return out


def _write_metadata(
    writer: Any, gguf: Any, config: ModelConfig, tokenizer: Tokenizer, outtype: str, ckpt: Path
) -> None:
    """Hyperparameters and tokenizer keys (see the module docstring)."""
    file_types = {"f32": 0, "f16": 1, "q8_0": 7}  # gguf.LlamaFileType values
    run = ckpt.parent.parent.name if ckpt.parent.name == "checkpoints" else None
    writer.add_name(f"scratchlm {run}/{ckpt.name}" if run else f"scratchlm {ckpt.name}")
    writer.add_file_type(file_types[outtype])
    if outtype == "q8_0":
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_vocab_size(config.vocab_size)
    writer.add_context_length(config.context_length)
    writer.add_embedding_length(config.d_model)
    writer.add_block_count(config.num_layers)
    writer.add_feed_forward_length(config.d_ff)
    writer.add_head_count(config.num_heads)
    writer.add_head_count_kv(config.num_kv_heads)
    writer.add_key_length(config.head_dim)
    writer.add_value_length(config.head_dim)
    writer.add_rope_dimension_count(config.head_dim)
    writer.add_rope_freq_base(config.rope_theta)
    writer.add_layer_norm_rms_eps(RMS_NORM_EPS)

    ids = tokenizer.special_ids
    if chat.BOS not in ids:
        raise ValueError(f"the tokenizer has no {chat.BOS} token, which the export uses as bos")
    tokens, types = gguf_vocab(tokenizer, config.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([f"{a} {b}" for a, b in merges_text(tokenizer.merges)])
    writer.add_bos_token_id(ids[chat.BOS])
    writer.add_pad_token_id(ids[chat.BOS])
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    if chat.has_chat_tokens(tokenizer):
        writer.add_eos_token_id(ids[chat.END])
        writer.add_eot_token_id(ids[chat.END])
        writer.add_chat_template(CHAT_TEMPLATE)
    else:
        writer.add_eos_token_id(ids[chat.BOS])


def _stored(gguf: Any, array: np.ndarray, outtype: str) -> tuple[np.ndarray, Any]:
    """The array as written and its GGML type: 1-D in f32, matrices in `outtype` (see above)."""
    kinds = gguf.GGMLQuantizationType
    if array.ndim == 1 or outtype == "f32":
        return array.astype(np.float32), kinds.F32
    if outtype == "q8_0" and array.shape[-1] % Q8_0_BLOCK == 0:
        return gguf.quants.quantize(array, kinds.Q8_0), kinds.Q8_0
    return array.astype(np.float16), kinds.F16


def export_command(checkpoint: str, out: Path, outtype: str) -> str:
    """`scratchlm export-gguf`: `export_gguf`, then where it wrote."""
    return f"exported to {export_gguf(checkpoint, out, outtype)}"


COMMAND = Command(
    run=export_command,
    description="Write one GGUF file (llama architecture, our byte-level BPE tokenizer, the "
    "chat template of a chat checkpoint) that llama.cpp and its bindings load.",
    args=(
        CHECKPOINT_ARG,
        arg("--out", type=Path, required=True, metavar="FILE", help="new .gguf file"),
        arg("--outtype", choices=["f32", "f16", "q8_0"], default="f16", help="(default f16)"),
    ),
)
