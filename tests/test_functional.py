"""softmax and cross_entropy against torch's own implementations."""

import pytest
import torch
import torch.nn.functional as F

from scratchlm.model import functional
from scratchlm.model.functional import cross_entropy, softmax


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_matches_torch(dim: int) -> None:
    x = torch.randn(4, 5, 7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(softmax(x, dim=dim), torch.softmax(x, dim=dim))


def test_softmax_is_stable_for_huge_inputs() -> None:
    x = torch.tensor([[1000.0, 1001.0, 1002.0], [-1e4, 0.0, 1e4], [0.0, float("-inf"), 1.0]])
    out = softmax(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.softmax(x.double(), dim=-1).float())


def _logits_and_targets(seed: int, shape: tuple[int, ...], vocab: int, scale: float = 1.0):
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(*shape, vocab, generator=gen) * scale).requires_grad_()
    targets = torch.randint(0, vocab, shape, generator=gen)
    return logits, targets


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_cross_entropy_matches_torch_values_and_grads(reduction: str, scale: float) -> None:
    logits, targets = _logits_and_targets(0, (3, 11), vocab=37, scale=scale)
    targets[0, :4] = -100  # masked positions
    ours = cross_entropy(logits, targets, reduction=reduction)
    ref_logits = logits.detach().clone().requires_grad_()
    ref = F.cross_entropy(ref_logits.transpose(1, 2), targets, reduction=reduction)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    weights = torch.rand(ours.shape, generator=torch.Generator().manual_seed(1))
    (ours * weights).sum().backward()
    (ref * weights).sum().backward()
    torch.testing.assert_close(logits.grad, ref_logits.grad, rtol=1e-5, atol=1e-6)
    assert logits.grad is not None and (logits.grad[0, :4] == 0).all()


def test_cross_entropy_over_several_row_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(functional, "_BLOCK_ELEMENTS", 5 * 37)  # 33 rows -> blocks of 5, then 3
    logits, targets = _logits_and_targets(2, (3, 11), vocab=37, scale=10.0)
    ours = cross_entropy(logits, targets, reduction="none")
    ref_logits = logits.detach().clone().requires_grad_()
    ref = F.cross_entropy(ref_logits.transpose(1, 2), targets, reduction="none")
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(logits.grad, ref_logits.grad, rtol=1e-5, atol=1e-6)


def test_cross_entropy_custom_ignore_index_and_bf16_logits() -> None:
    logits, targets = _logits_and_targets(2, (64,), vocab=50)
    targets[::3] = 7
    ours = cross_entropy(logits.bfloat16(), targets, ignore_index=7)
    ref = F.cross_entropy(logits.bfloat16().float(), targets, ignore_index=7)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, ref)


def test_cross_entropy_extreme_logits_stay_finite() -> None:
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], requires_grad=True)
    targets = torch.tensor([1, 2])
    loss = cross_entropy(logits, targets)
    loss.backward()
    torch.testing.assert_close(loss, F.cross_entropy(logits.detach(), targets))
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_cross_entropy_gradcheck_in_float64() -> None:
    logits, targets = _logits_and_targets(3, (5,), vocab=6)
    logits = logits.detach().double().requires_grad_()
    targets[1] = -100
    assert torch.autograd.gradcheck(lambda x: cross_entropy(x, targets), (logits,))


def test_cross_entropy_all_ignored_is_nan_like_torch() -> None:
    logits = torch.randn(4, 9)
    targets = torch.full((4,), -100)
    assert torch.isnan(cross_entropy(logits, targets))
    assert torch.isnan(F.cross_entropy(logits, targets))


def test_cross_entropy_rejects_unknown_reduction() -> None:
    with pytest.raises(ValueError, match="reduction"):
        cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), reduction="avg")  # type: ignore[arg-type]
