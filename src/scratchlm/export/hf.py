"""Hugging Face format in and out: `export_hf` writes a checkpoint as a Llama model directory that
`transformers` loads offline, and `import_hf` reads such a directory back into a checkpoint.

An exported directory holds

    config.json              LlamaForCausalLM config (from `scratchlm.model.hf`)
    generation_config.json   the end-of-text id (and end-of-turn, with the chat template) as eos
    model.safetensors        the weights under Llama's names
    tokenizer.json, vocab.json, merges.txt   our byte-level BPE (written by `Tokenizer.save`)
    tokenizer_config.json    the tokenizer class, special tokens and, for a chat model, a Jinja
                             chat template that renders exactly like `scratchlm.tokenizer.chat`

Only Llama-shaped models export (RoPE, SwiGLU, pre-norm, no qk-norm); any other choice is refused
with its option name. Both directions write into a temporary directory beside the output and
rename it into place, so a failure leaves nothing half-written.
"""

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from scratchlm.config import CHECKPOINT_ARG, Command, arg
from scratchlm.folders import check_creatable, new_dirs, usual_permissions
from scratchlm.model.config import ModelConfig
from scratchlm.model.hf import (
    check_llama_compatible,
    config_from_llama,
    from_llama_state_dict,
    llama_config_kwargs,
    to_llama_state_dict,
)
from scratchlm.model.transformer import TransformerLM
from scratchlm.tokenizer import chat
from scratchlm.tokenizer.tokenizer import Tokenizer
from scratchlm.train.checkpoint import (
    find_checkpoint,
    load_model,
    rng_state,
    save_checkpoint,
    tokenizer_hash,
)

log = logging.getLogger(__name__)

# The chat template of `scratchlm.tokenizer.chat` in Jinja, for `apply_chat_template`.
CHAT_TEMPLATE = (
    chat.BOS
    + "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}"
    + chat.END
    + "{% endfor %}{% if add_generation_prompt %}"
    + chat.ASSISTANT
    + "{% endif %}"
)


def export_hf(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the checkpoint (or a run directory's newest one) as a Hugging Face Llama directory."""
    ckpt = find_checkpoint(checkpoint)
    out = Path(out)
    refuse_existing(out)
    model = load_model(ckpt, "cpu")
    try:
        check_llama_compatible(model.config)
    except ValueError as exc:
        raise ValueError(f"cannot export {ckpt} as LlamaForCausalLM: {exc}") from None
    tokenizer = Tokenizer.from_dir(ckpt / "tokenizer")
    state = to_llama_state_dict(model.state_dict(), model.config)
    with _staging(out) as tmp:
        tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save(tmp)
        for name, data in hf_json_files(model.config, tokenizer).items():
            (tmp / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    log.info("exported %s to %s", ckpt, out)
    return out


def hf_json_files(config: ModelConfig, tokenizer: Tokenizer) -> dict[str, dict[str, Any]]:
    """config.json, generation_config.json and tokenizer_config.json for an exported model."""
    ids = tokenizer.special_ids
    if chat.BOS not in ids:
        raise ValueError(f"the tokenizer has no {chat.BOS} token, which the export uses as bos/eos")
    with_chat = chat.has_chat_tokens(tokenizer)
    eos = [ids[chat.END], ids[chat.BOS]] if with_chat else ids[chat.BOS]
    model_config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        **llama_config_kwargs(config),
        "bos_token_id": ids[chat.BOS],
        "eos_token_id": eos,
        "torch_dtype": "float32",
    }
    generation = {"bos_token_id": ids[chat.BOS], "eos_token_id": eos, "pad_token_id": ids[chat.BOS]}
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": chat.BOS,
        "eos_token": chat.END if with_chat else chat.BOS,
        "pad_token": chat.BOS,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": config.context_length,
    }
    if with_chat:
        tokenizer_config["chat_template"] = CHAT_TEMPLATE
    return {
        "config.json": model_config,
        "generation_config.json": generation,
        "tokenizer_config.json": tokenizer_config,
    }


def import_hf(hf_dir: str | Path, out: str | Path) -> Path:
    """Read a Llama directory with a byte-level BPE tokenizer (as `export_hf` writes) into a
    scratchlm checkpoint directory `out` (step 0, no optimizer state)."""
    hf_dir, out = Path(hf_dir), Path(out)
    refuse_existing(out)
    config_path = hf_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{hf_dir} has no config.json: not a Hugging Face model directory")
    hf_config = json.loads(config_path.read_text())
    if hf_config.get("model_type") != "llama":
        raise ValueError(
            f"{hf_dir} holds a {hf_config.get('model_type')!r} model; import-hf reads Llama models"
        )
    config = config_from_llama(hf_config)
    for name in ("vocab.json", "merges.txt", "tokenizer.json"):
        if not (hf_dir / name).is_file():
            raise FileNotFoundError(
                f"{hf_dir} has no {name}: import-hf needs a byte-level BPE tokenizer "
                "(vocab.json, merges.txt, tokenizer.json), as export-hf writes"
            )
    tokenizer = Tokenizer.from_dir(hf_dir)
    if tokenizer.vocab_size > config.vocab_size:
        raise ValueError(
            f"{hf_dir}: the tokenizer has {tokenizer.vocab_size} ids, the model only "
            f"{config.vocab_size}"
        )
    model = TransformerLM.from_config(config, device="cpu")
    model.load_state_dict(from_llama_state_dict(_hf_weights(hf_dir), config), strict=True)
    with (
        new_dirs(out.parent),
        tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as work,
    ):
        tok_dir = Path(work) / "tokenizer"
        tokenizer.save(tok_dir)
        state = {"step": 0, "tokens_seen": 0, "tokenizer_hash": tokenizer_hash(tok_dir)}
        state["imported_from"] = str(hf_dir.resolve())
        saved = save_checkpoint(
            Path(work) / "checkpoints",
            step=0,
            model_state=model.state_dict(),
            optim_state={},
            state=state,
            rng=rng_state(),
            config={"model": config.to_dict()},
            tokenizer_dir=tok_dir,
        )
        usual_permissions(saved)
        saved.rename(out)
    log.info("imported %s into %s", hf_dir, out)
    return out


def _hf_weights(hf_dir: Path) -> dict:
    """All tensors of model.safetensors, or of the shards listed in model.safetensors.index.json."""
    single = hf_dir / "model.safetensors"
    if single.is_file():
        return load_file(str(single))
    index = hf_dir / "model.safetensors.index.json"
    if not index.is_file():
        raise FileNotFoundError(
            f"{hf_dir} has no model.safetensors (nor an index of shards); save the model with "
            "safe_serialization=True"
        )
    shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    return {k: v for shard in shards for k, v in load_file(str(hf_dir / shard)).items()}


def refuse_existing(out: Path) -> None:
    if out.exists():
        raise FileExistsError(f"{out} already exists; choose a new --out or remove it first")
    check_creatable(out)


@contextmanager
def _staging(out: Path) -> Iterator[Path]:
    """A temporary directory beside `out` (missing parents created), renamed to `out` with the
    user's usual permissions when the block succeeds; on failure nothing stays behind."""
    with new_dirs(out.parent):
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
        try:
            yield tmp
            usual_permissions(tmp)
            tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def export_command(checkpoint: str, out: Path) -> str:
    """`scratchlm export-hf`: `export_hf`, then where it wrote."""
    return f"exported to {export_hf(checkpoint, out)}"


def import_command(hf_dir: Path, out: Path) -> str:
    """`scratchlm import-hf`: `import_hf`, then where it wrote."""
    return f"checkpoint written to {import_hf(hf_dir, out)}"


EXPORT_COMMAND = Command(
    run=export_command,
    description="Write safetensors weights, config.json (LlamaForCausalLM) and tokenizer "
    "files that transformers' AutoModelForCausalLM / AutoTokenizer load offline.",
    args=(
        CHECKPOINT_ARG,
        arg("--out", type=Path, required=True, metavar="DIR", help="new output directory"),
    ),
)

IMPORT_COMMAND = Command(
    run=import_command,
    description="Read a Llama directory with a byte-level BPE tokenizer (as export-hf writes) "
    "into a new scratchlm checkpoint directory (step 0, no optimizer state).",
    args=(
        arg("hf_dir", type=Path, metavar="HF_DIR", help="the Hugging Face model directory"),
        arg("--out", type=Path, required=True, metavar="DIR", help="new checkpoint dir"),
    ),
)
