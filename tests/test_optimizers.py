"""Optimizers and clipping against torch references: torch.optim, linalg.svd, clip_grad_norm_."""

import copy
import io
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from scratchlm.optimizers import (
    SGD,
    AdamW,
    Muon,
    clip_grad_norm,
    muon_param_groups,
    param_groups,
)
from scratchlm.optimizers.adamw import adamw_update_
from scratchlm.optimizers.muon import newton_schulz
from scratchlm.schedulers import set_learning_rate
from scratchlm.train.config import OptimizerConfig, build_optimizer


class TinyLM(nn.Module):
    """Embedding, one residual MLP with a norm and biases, output head: every kind of parameter."""

    def __init__(self, vocab: int = 32, dim: int = 16):
        super().__init__()
        self.token_embeddings = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.up_proj = nn.Linear(dim, 3 * dim)
        self.down_proj = nn.Linear(3 * dim, dim, bias=False)
        self.lm_head = nn.Linear(dim, vocab, bias=False)

    def forward(self, ids: Tensor) -> Tensor:
        x = self.token_embeddings(ids)
        x = x + self.down_proj(torch.relu(self.up_proj(self.norm(x))))
        return self.lm_head(x)


def make_model(seed: int = 0) -> TinyLM:
    torch.manual_seed(seed)
    return TinyLM()


def make_batch(step: int, vocab: int = 32) -> Tensor:
    """(4, 9) token ids, different for every step, the same on every call."""
    return torch.randint(vocab, (4, 9), generator=torch.Generator().manual_seed(1000 + step))


def lm_loss(model: nn.Module, ids: Tensor) -> Tensor:
    """Next-token cross-entropy of ids (B, T + 1)."""
    logits = model(ids[:, :-1])
    return nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, ids: Tensor) -> float:
    optimizer.zero_grad()
    loss = lm_loss(model, ids)
    loss.backward()
    optimizer.step()
    return loss.item()


def grouped(model: nn.Module) -> list[dict]:
    """Decay / no-decay groups, the second with its own lr."""
    groups = param_groups(model.named_parameters(), weight_decay=0.1)
    groups[1]["lr"] = 3e-3
    return groups


def sgd_reference(model: nn.Module) -> tuple[torch.optim.Optimizer, Callable[[], None]]:
    """torch's SGD with lr * 1 / sqrt(t + 1) from LambdaLR, stepped after every update."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: (t + 1) ** -0.5)
    return optimizer, schedule.step


# name: (our optimizer, torch reference and a hook run after each of its steps, steps)
REFERENCES = {
    "sgd": (lambda m: SGD(m.parameters(), lr=0.5), sgd_reference, 20),
    "adamw-groups-100-steps": (
        lambda m: AdamW(grouped(m), lr=1e-2, betas=(0.9, 0.95)),
        lambda m: (torch.optim.AdamW(grouped(m), lr=1e-2, betas=(0.9, 0.95)), lambda: None),
        100,
    ),
    "adamw-defaults": (
        lambda m: AdamW(m.parameters()),
        lambda m: (torch.optim.AdamW(m.parameters()), lambda: None),
        10,
    ),
    "muon-adamw-side": (
        lambda m: Muon([{"params": m.parameters(), "use_muon": False}], lr=1e-2, weight_decay=0.1),
        lambda m: (torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.1), lambda: None),
        10,
    ),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_torch_reference(name: str) -> None:
    build, build_reference, steps = REFERENCES[name]
    ours, ref = make_model(), make_model()
    opt = build(ours)
    ref_opt, after_step = build_reference(ref)
    for step in range(steps):
        train_step(ours, opt, make_batch(step))
        train_step(ref, ref_opt, make_batch(step))
        after_step()
    for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0)


OPTIMIZERS = {
    "sgd": lambda m: SGD(m.parameters(), lr=0.1),
    "adamw": lambda m: AdamW(param_groups(m.named_parameters(), weight_decay=0.1), lr=1e-2),
    "muon": lambda m: Muon(muon_param_groups(m.named_parameters(), weight_decay=0.1), lr=1e-2),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_dict_resume_is_bitwise_identical(name: str) -> None:
    build = OPTIMIZERS[name]
    straight = make_model()
    opt = build(straight)
    for step in range(5):
        train_step(straight, opt, make_batch(step))
    buffer = io.BytesIO()
    torch.save({"model": straight.state_dict(), "optimizer": opt.state_dict()}, buffer)
    for step in range(5, 10):
        train_step(straight, opt, make_batch(step))

    buffer.seek(0)
    saved = torch.load(buffer)
    resumed = make_model(seed=1)  # different init: everything must come from the checkpoint
    resumed.load_state_dict(saved["model"])
    resumed_opt = build(resumed)
    resumed_opt.load_state_dict(saved["optimizer"])
    for step in range(5, 10):
        train_step(resumed, resumed_opt, make_batch(step))
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("max_norm", [0.05, 1e3])
def test_clip_grad_norm_matches_torch(max_norm: float) -> None:
    ours, ref = make_model(), make_model()
    for model in (ours, ref):
        train_step(model, SGD(model.parameters(), lr=0.0), make_batch(0))
    ours.lm_head.weight.grad = None  # a parameter without a gradient is skipped
    ref.lm_head.weight.grad = None
    norm = clip_grad_norm(ours.parameters(), max_norm)
    ref_norm = torch.nn.utils.clip_grad_norm_(ref.parameters(), max_norm)
    torch.testing.assert_close(norm, ref_norm)
    for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad)


def test_clip_grad_norm_rejects_non_positive_max_norm() -> None:
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(make_model().parameters(), 0.0)


def ill_conditioned(rows: int, cols: int, condition: float = 100.0) -> Tensor:
    """A (rows, cols) matrix with random singular vectors and singular values from 1 to 1/condition.

    Newton-Schulz multiplies a tiny singular value by about 3.4 per iteration, so values far below
    1/condition of the largest stay small after 5 iterations: a gradient's noise floor, not signal.
    """
    gen = torch.Generator().manual_seed(rows * cols)
    u, _ = torch.linalg.qr(torch.randn(rows, min(rows, cols), generator=gen))
    v, _ = torch.linalg.qr(torch.randn(cols, min(rows, cols), generator=gen))
    return (
        u @ torch.diag(torch.logspace(0, -torch.tensor(condition).log10(), min(rows, cols))) @ v.T
    )


@pytest.mark.parametrize("shape", [(64, 64), (32, 96), (96, 32)])
def test_newton_schulz_makes_singular_values_near_one(shape: tuple[int, int]) -> None:
    g = ill_conditioned(*shape)
    out = newton_schulz(g)
    assert out.shape == g.shape and out.dtype == g.dtype
    singular_values = torch.linalg.svdvals(out)
    assert singular_values.min() > 0.5 and singular_values.max() < 1.5
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    polar = u @ vh  # the exact orthogonal factor the iteration approximates
    assert torch.linalg.matrix_norm(out - polar) < 0.3 * torch.linalg.matrix_norm(polar)


def mlp(seed: int, gain: float = 1.0, width: int = 32, depth: int = 4) -> nn.Sequential:
    """A bias-free tanh MLP: every parameter is a hidden matrix, so Muon updates all of them."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width, bias=False), nn.Tanh()]
    model = nn.Sequential(*layers[:-1])
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(gain)
    return model


def test_muon_fits_faster_than_sgd() -> None:
    """Student MLP fits a larger-weight teacher; Muon beats SGD at SGD's best learning rate."""
    x = torch.randn(256, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = mlp(seed=123, gain=3.0)(x)

    def final_loss(build) -> float:
        model = mlp(seed=0)
        opt = build(model)
        for _ in range(100):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
        return loss.item()

    # SGD diverges from lr 30 on; 10 is its best here.
    sgd = min(final_loss(lambda m, lr=lr: SGD(m.parameters(), lr=lr)) for lr in (1.0, 3.0, 10.0))
    muon = final_loss(lambda m: Muon(muon_param_groups(m.named_parameters(), 0.0), muon_lr=0.05))
    assert muon < 0.5 * sgd


def test_param_groups_exclude_norms_biases_and_embeddings() -> None:
    model = make_model()
    decay, no_decay = param_groups(model.named_parameters(), weight_decay=0.1)
    ids = {id(p): n for n, p in model.named_parameters()}
    assert sorted(ids[id(p)] for p in decay["params"]) == [
        "down_proj.weight",
        "lm_head.weight",
        "up_proj.weight",
    ]
    assert sorted(ids[id(p)] for p in no_decay["params"]) == [
        "norm.bias",
        "norm.weight",
        "token_embeddings.weight",
        "up_proj.bias",
    ]
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0


def test_param_groups_skip_frozen_parameters() -> None:
    model = make_model()
    model.lm_head.weight.requires_grad_(False)
    groups = param_groups(model.named_parameters(), weight_decay=0.1)
    assert all(p is not model.lm_head.weight for g in groups for p in g["params"])
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        param_groups(model.named_parameters(), weight_decay=0.1)


def test_muon_param_groups_send_hidden_matrices_to_muon() -> None:
    model = make_model()
    groups = muon_param_groups(model.named_parameters(), weight_decay=0.1)
    ids = {id(p): n for n, p in model.named_parameters()}
    names = [
        (g["use_muon"], g["weight_decay"], sorted(ids[id(p)] for p in g["params"])) for g in groups
    ]
    assert names == [
        (True, 0.1, ["down_proj.weight", "up_proj.weight"]),
        (False, 0.1, ["lm_head.weight"]),
        (False, 0.0, ["norm.bias", "norm.weight", "token_embeddings.weight", "up_proj.bias"]),
    ]
    opt = Muon(groups, lr=1e-3, muon_lr=0.02)
    assert [g["lr"] for g in opt.param_groups] == [0.02, 1e-3, 1e-3]
    assert [g["lr_scale"] for g in opt.param_groups] == pytest.approx([20.0, 1.0, 1.0])


def test_muon_rejects_groups_it_cannot_run() -> None:
    model = make_model()
    with pytest.raises(ValueError, match="use_muon"):
        Muon(model.parameters())
    with pytest.raises(ValueError, match="2-D"):
        Muon([{"params": [model.norm.weight], "use_muon": True}])


def test_optimizers_leave_parameters_without_grad_alone() -> None:
    model = make_model()
    before = copy.deepcopy(model.state_dict())
    for build in OPTIMIZERS.values():
        build(model).step()
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_step_with_closure_returns_its_loss(name: str) -> None:
    model = make_model()
    opt = OPTIMIZERS[name](model)
    ids = make_batch(0)

    def closure() -> float:
        opt.zero_grad()
        loss = lm_loss(model, ids)
        loss.backward()
        return loss.item()

    with torch.no_grad():
        before = lm_loss(model, ids).item()
    assert opt.step(closure) == before
    assert opt.step(closure) < before


def test_muon_split_sizes_update_blocks_as_separate_matrices() -> None:
    gen = torch.Generator().manual_seed(0)
    fused = nn.Parameter(torch.randn(48, 16, generator=gen))
    parts = [nn.Parameter(block.detach().clone()) for block in fused.split((16, 8, 24))]
    fused_opt = Muon([{"params": [fused], "use_muon": True, "split_sizes": (16, 8, 24)}])
    parts_opt = Muon([{"params": parts, "use_muon": True}])
    for _ in range(3):
        grad = torch.randn(48, 16, generator=gen)
        fused.grad = grad.clone()
        for p, g in zip(parts, grad.split((16, 8, 24)), strict=True):
            p.grad = g.clone()
        fused_opt.step()
        parts_opt.step()
    torch.testing.assert_close(fused.detach(), torch.cat([p.detach() for p in parts]))
    with pytest.raises(ValueError, match="split_sizes"):
        Muon([{"params": [fused], "use_muon": True, "split_sizes": (16, 16)}])


def test_muon_groups_for_transformer_lm() -> None:
    from scratchlm.model import TransformerLM

    torch.manual_seed(0)
    model = TransformerLM(64, 16, 2, 32, 4, num_kv_heads=2, qk_norm=True)
    row_splits = {
        f"{name}.weight": module.out_sizes
        for name, module in model.named_modules()
        if len(getattr(module, "out_sizes", ())) > 1
    }
    groups = muon_param_groups(model.named_parameters(), 0.1, row_splits)
    names = {id(p): n for n, p in model.named_parameters()}
    summary = [
        (
            g["use_muon"],
            g.get("split_sizes"),
            sorted({names[id(p)].split(".")[-2] for p in g["params"]}),
        )
        for g in groups
    ]
    assert summary == [
        (True, (32, 16, 16), ["qkv"]),
        (True, None, ["out", "w1", "w2", "w3"]),
        (False, None, ["lm_head"]),
        (False, None, ["k_norm", "ln1", "ln2", "ln_final", "q_norm", "token_embeddings"]),
    ]
    opt = Muon(groups, lr=3e-3)
    ids = torch.randint(64, (4, 17), generator=torch.Generator().manual_seed(0))
    losses = [train_step(model, opt, ids) for _ in range(10)]
    assert losses[-1] < losses[0] - 0.5
    with pytest.raises(ValueError, match="row_splits"):
        muon_param_groups(model.named_parameters(), 0.1, {"lm_head.weight": (32, 32)})


def test_adamw_update_over_a_whole_list_matches_torch() -> None:
    """The multi-tensor path (one foreach call per group, as on a GPU) against torch's AdamW."""
    gen = torch.Generator().manual_seed(0)
    ours = [torch.randn(shape, generator=gen) for shape in ((8, 4), (4,), (3, 5, 2))]
    ref = [nn.Parameter(p.clone()) for p in ours]
    ref_opt = torch.optim.AdamW(ref, lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
    exp_avgs = [torch.zeros_like(p) for p in ours]
    exp_avg_sqs = [torch.zeros_like(p) for p in ours]
    for step in range(1, 21):
        grads = [torch.randn(p.shape, generator=gen) for p in ours]
        for p, g in zip(ref, grads, strict=True):
            p.grad = g.clone()
        ref_opt.step()
        hyper = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1}
        adamw_update_(ours, grads, exp_avgs, exp_avg_sqs, [step] * 3, **hyper)
    for p, q in zip(ours, ref, strict=True):
        torch.testing.assert_close(p, q.detach(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["adamw", "muon"])
def test_embedding_lr_scale_gives_embeddings_their_own_scaled_lr(name: str) -> None:
    model = make_model()
    opt = build_optimizer(model, OptimizerConfig(name=name, lr=1e-2, embedding_lr_scale=10.0))
    *_, embeddings = opt.param_groups
    assert embeddings["params"] == [model.token_embeddings.weight]
    assert embeddings["weight_decay"] == 0.0 and embeddings["lr"] == pytest.approx(0.1)
    others = [p for g in opt.param_groups[:-1] for p in g["params"]]
    assert all(p is not model.token_embeddings.weight for p in others)
    set_learning_rate(opt, 4e-3)  # what the loop does before every update
    assert embeddings["lr"] == pytest.approx(4e-2)
    assert {g["lr"] for g in opt.param_groups[:-1] if not g.get("use_muon")} == {4e-3}


def test_embedding_lr_scale_matches_torch_adamw_with_that_group() -> None:
    """Three steps at a changing lr against torch.optim.AdamW given the groups by hand."""
    ours, ref = make_model(), make_model()
    cfg = OptimizerConfig(lr=1e-2, weight_decay=0.1, embedding_lr_scale=30.0)
    opt = build_optimizer(ours, cfg)
    decayed = [ref.up_proj.weight, ref.down_proj.weight, ref.lm_head.weight]
    undecayed = [ref.norm.weight, ref.norm.bias, ref.up_proj.bias]
    ref_opt = torch.optim.AdamW(
        [
            {"params": decayed, "weight_decay": 0.1},
            {"params": undecayed, "weight_decay": 0.0},
            {"params": [ref.token_embeddings.weight], "weight_decay": 0.0},
        ],
        betas=(0.9, 0.95),
        eps=1e-8,
    )
    for step, lr in enumerate([1e-2, 5e-3, 1e-3]):
        set_learning_rate(opt, lr)
        for group, group_lr in zip(ref_opt.param_groups, [lr, lr, 30 * lr], strict=True):
            group["lr"] = group_lr
        train_step(ours, opt, make_batch(step))
        train_step(ref, ref_opt, make_batch(step))
    for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0)


def test_embedding_lr_scale_default_keeps_the_groups_and_bad_values_fail() -> None:
    model = make_model()
    built = build_optimizer(model, OptimizerConfig(weight_decay=0.1)).param_groups
    plain = param_groups(model.named_parameters(), weight_decay=0.1)
    assert [g["params"] for g in built] == [g["params"] for g in plain]
    with pytest.raises(ValueError, match="embedding_lr_scale must be > 0"):
        OptimizerConfig(embedding_lr_scale=0.0)
    with pytest.raises(ValueError, match="applies to adamw and muon"):
        OptimizerConfig(name="sgd", embedding_lr_scale=2.0)


def test_embedding_lr_scale_with_only_the_embeddings_trainable() -> None:
    model = make_model()
    model.requires_grad_(False)
    model.token_embeddings.weight.requires_grad_(True)
    opt = build_optimizer(model, OptimizerConfig(lr=1e-2, embedding_lr_scale=10.0))
    assert [g["params"] for g in opt.param_groups] == [[model.token_embeddings.weight]]
