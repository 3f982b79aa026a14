"""What only a CUDA GPU exercises: bf16 autocast, cached decoding in bf16, resuming on CUDA.

Every test here is marked `gpu` and skipped without CUDA (`pytest -m gpu` selects them;
benchmarks/gpu_check.py runs them on a GPU machine).
"""

import json
import os

import pytest
import torch
from safetensors.torch import load_file

from scratchlm.config import load_config
from scratchlm.model import KVCache, ModelConfig, TransformerLM
from scratchlm.model.generate import SamplingConfig, generate
from scratchlm.runtime import autocast, autocast_dtype
from scratchlm.train.pretrain import PretrainConfig, pretrain

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

CUDA = torch.device("cuda")
# cuBLAS and torch's check of it read this setting once, at the process's first matrix product;
# deterministic mode (the resume test) needs it, so it is set when the module is collected.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
# Logits of the test model have a standard deviation of about 0.5 and reach about 2. bf16 keeps 8
# significant bits, so a logit near 2 is stored to within 0.008; cached and full passes, which run
# different kernels, differed by at most 0.012 on a CPU in bf16 (and from fp32 by 0.018).
BF16_LOGIT_ATOL = 0.05


def bf16_model() -> TransformerLM:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=512, context_length=64, num_layers=2, d_model=64, num_heads=4,
                      num_kv_heads=2)  # fmt: skip
    return TransformerLM.from_config(cfg, device=CUDA).to(torch.bfloat16).eval()


def test_autocast_is_bf16_on_cuda() -> None:
    assert torch.cuda.is_bf16_supported()
    assert autocast_dtype(CUDA) == torch.bfloat16
    torch.manual_seed(0)
    model = TransformerLM.from_config(ModelConfig(256, 32, 1, 64, 4), device=CUDA)
    seen = []
    model.layers[0].ffn.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    with autocast(CUDA, autocast_dtype(CUDA)):
        logits = model(torch.randint(0, 256, (2, 32), device=CUDA))
    assert seen == [torch.bfloat16]  # the matmuls ran in bf16
    assert logits.dtype == torch.float32  # the output head's result is handed back in fp32
    assert model.token_embeddings.weight.dtype == torch.float32  # master weights stay fp32


@torch.no_grad()
def test_cached_decoding_equals_recomputation_in_bf16() -> None:
    model = bf16_model()
    x = torch.randint(0, 512, (3, 40), device=CUDA)
    full = model(x)  # (B, T, V) fp32
    cache = KVCache.for_model(model.config, batch_size=3, dtype=torch.bfloat16, device=CUDA)
    pieces = [model(x[:, :8], kv_cache=cache)]  # prefill, then one token at a time
    pieces += [model(x[:, t : t + 1], kv_cache=cache) for t in range(8, 40)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=BF16_LOGIT_ATOL, rtol=0)


@torch.no_grad()
def test_cached_greedy_tokens_are_the_argmax_of_recomputation_in_bf16() -> None:
    """Near-ties may break either way in bf16, so each cached greedy token must be the argmax of
    the full forward pass over the same sequence, up to the tolerance."""
    model = bf16_model()
    prompts = [[5, 17, 3, 99, 42, 8, 1], [7, 7], [64, 2, 31, 90]]  # ragged: left padding on CUDA
    new = generate(model, prompts, SamplingConfig(max_new_tokens=24, temperature=0))
    for prompt, tokens in zip(prompts, new, strict=True):
        assert len(tokens) == 24
        logits = model(torch.tensor([prompt + tokens], device=CUDA))[0]  # (T, V)
        steps = logits[len(prompt) - 1 : -1]  # the logits each new token was chosen from
        chosen = steps.gather(-1, torch.tensor(tokens, device=CUDA)[:, None]).squeeze(-1)
        assert (steps.amax(-1) - chosen).max().item() <= BF16_LOGIT_ATOL


@pytest.fixture
def deterministic():
    """Deterministic CUDA kernels and the math SDPA backend, whose backward has no atomic adds:
    two runs can then agree bit for bit."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.use_deterministic_algorithms(True)
    with sdpa_kernel(SDPBackend.MATH):
        yield
    torch.use_deterministic_algorithms(False)


def cuda_config(token_data: dict, out_dir, *overrides: str) -> PretrainConfig:
    """2 layers, C=64, T=32 on the corpus tokens; CUDA, bf16 autocast (dtype auto)."""
    base = [
        f"model.vocab_size={token_data['vocab_size']}",
        "model.context_length=32",
        "model.num_layers=2",
        "model.d_model=64",
        "model.num_heads=4",
        f"data.train_path={token_data['train']}",
        f"data.val_path={token_data['valid']}",
        "schedule.warmup_steps=2",
        "training.steps=8",
        "training.batch_size=8",
        "training.grad_accum=2",
        "training.device=cuda",
        "training.checkpoint_interval=4",
        "training.eval_interval=4",
        "training.log_interval=2",
        f"logging.out_dir={out_dir}",
    ]
    return load_config(PretrainConfig, None, base + list(overrides))


def test_a_checkpoint_written_on_cuda_resumes_exactly(token_data, tmp_path, deterministic) -> None:
    """8 steps in one run == 4 steps, a checkpoint, and 4 more steps resumed from it (bf16
    autocast, 2 micro-batches per step); the checkpoint holds the CUDA RNG state too."""
    pretrain(cuda_config(token_data, tmp_path / "a"))
    pretrain(cuda_config(token_data, tmp_path / "b", "training.stop_after=4"))
    middle = tmp_path / "b" / "checkpoints" / "step_00000004"
    assert "cuda" in torch.load(middle / "rng.pt", weights_only=True)["ranks"][0]
    pretrain(cuda_config(token_data, tmp_path / "b"), resume="latest")
    a, b = (load_file(str(d / "checkpoints" / "step_00000008" / "model.safetensors"))
            for d in (tmp_path / "a", tmp_path / "b"))  # fmt: skip
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "a" / "run.json").read_text())["amp"] == "torch.bfloat16"
