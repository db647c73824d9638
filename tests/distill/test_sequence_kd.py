"""Token-level (generative) KD: the loss per position with padding masked, the LM trainer and
metrics; classification KD unchanged."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas_student.distill import ProxyRecipe, evaluate, kd_loss, predict, train
from nas_student.distill.losses import IGNORE_INDEX
from nas_student.families import ModelIO, build


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def reference(s, t, y, T, alpha, beta):
    """Token KD by hand in float64 numpy: loop over positions, skip padding, mean over real ones."""
    kls, ces = [], []
    for b in range(s.shape[0]):
        for i in range(s.shape[1]):
            if y[b, i] == IGNORE_INDEX:
                continue
            ls, lt = _log_softmax(s[b, i] / T), _log_softmax(t[b, i] / T)
            kls.append((np.exp(lt) * (lt - ls)).sum())
            ces.append(-_log_softmax(s[b, i])[y[b, i]])
    kd, ce = T * T * np.mean(kls), np.mean(ces)
    return alpha * kd + beta * ce, kd, ce


RNG = np.random.default_rng(0)
S = RNG.normal(size=(2, 4, 5)) * 2
TT = RNG.normal(size=(2, 4, 5)) * 3
Y = np.array([[1, 0, 4, 2], [3, 3, IGNORE_INDEX, IGNORE_INDEX]])


@pytest.mark.parametrize("T,alpha,beta", [(1.0, 0.5, 0.5), (4.0, 0.9, 0.1), (20.0, 1.0, 0.0)])
def test_token_kd_matches_hand_computed_reference_with_padding_masked(T, alpha, beta):
    got = kd_loss(torch.tensor(S), torch.tensor(TT), torch.tensor(Y), temperature=T, alpha=alpha, beta=beta)
    total, kd, ce = reference(S, TT, Y, T, alpha, beta)
    assert float(got.kd) == pytest.approx(kd, rel=1e-10)
    assert float(got.total) == pytest.approx(total, rel=1e-10)
    if beta:
        assert float(got.ce) == pytest.approx(ce, rel=1e-10)
    # precomputed soft targets (what the trainer passes) give the same loss
    soft = torch.log_softmax(torch.tensor(TT) / T, -1)
    again = kd_loss(torch.tensor(S), None, torch.tensor(Y), temperature=T, alpha=alpha, beta=beta,
                    teacher_log_probs=soft)
    assert float(again.total) == pytest.approx(total, rel=1e-10)


def test_padding_positions_neither_change_the_loss_nor_get_gradient():
    s = torch.tensor(S, requires_grad=True)
    base = kd_loss(s, torch.tensor(TT), torch.tensor(Y)).total
    base.backward()
    assert torch.all(s.grad[1, 2:] == 0) and torch.all(s.grad[0].abs().sum(-1) > 0)
    other = torch.tensor(S)
    other[1, 2:] = 1e4
    assert float(kd_loss(other, torch.tensor(TT), torch.tensor(Y)).total) == float(base.detach())


def test_mask_without_targets_gives_the_kd_term_over_real_tokens():
    mask = torch.tensor(Y) != IGNORE_INDEX
    got = kd_loss(torch.tensor(S), torch.tensor(TT), None, temperature=2.0, alpha=1.0, mask=mask)
    _, kd, _ = reference(S, TT, Y, 2.0, 1.0, 0.0)
    assert float(got.total) == pytest.approx(kd, rel=1e-10)
    all_pad = torch.full((2, 4), IGNORE_INDEX)
    assert float(kd_loss(torch.tensor(S), torch.tensor(TT), all_pad).total) == 0.0


def _original_kd_loss(s, t, y, temperature=4.0, alpha=0.9, beta=0.1):
    """The classification KD loss as it was before token-level KD (verbatim)."""
    log_p_s = F.log_softmax(s / temperature, dim=-1)
    log_p_t = F.log_softmax(t.detach() / temperature, dim=-1)
    kd = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * (temperature * temperature)
    ce = F.cross_entropy(s, y)
    return alpha * kd + beta * ce, kd, ce


def test_classification_kd_is_unchanged_bit_for_bit():
    g = torch.Generator().manual_seed(3)
    s, t, y = torch.randn(16, 10, generator=g), torch.randn(16, 10, generator=g), torch.randint(0, 10, (16,), generator=g)
    for T in (1.0, 4.0):
        got = kd_loss(s, t, y, temperature=T)
        want = _original_kd_loss(s, t, y, temperature=T)
        assert all(torch.equal(a, b) for a, b in zip(got, want))


V, L = 7, 12
IO = ModelIO((L,), V, input_dtype="int64", vocab_size=V, per_token=True, causal=True)
STUDENT = {"family": "rnn", "cell": "gru", "layers": 1, "hidden": 16}


def _lm_data(n=64):
    """A deterministic sequence language: next = (cur + 1) % 5 + 2, with padded tails."""
    g = torch.Generator().manual_seed(0)
    start = torch.randint(2, V, (n, 1), generator=g)
    seq = (start - 2 + torch.arange(L + 1)) % 5 + 2
    x, y = seq[:, :-1].clone(), seq[:, 1:].clone()
    x[::4, -3:], y[::4, -3:] = 0, IGNORE_INDEX
    return x, y


def test_lm_training_with_kd_learns_and_reports_next_token_accuracy_and_perplexity():
    x, y = _lm_data()
    teacher_logits = torch.full((len(x), L, V), -5.0)
    teacher_logits.scatter_(2, y.clamp_min(0)[..., None], 5.0)  # a confident, correct teacher
    b = ProxyRecipe(steps=60, batch_size=16, lr=1e-2)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        m = build(STUDENT, IO)
        train(m, x, y, b, teacher_logits=teacher_logits, seed=1)
        runs.append(evaluate(m, x, y, teacher_logits))
    r = runs[0]
    assert runs[0] == runs[1]  # deterministic
    assert set(r) == {"accuracy", "agreement", "kd_loss", "perplexity"}
    assert r["accuracy"] > 0.9 and r["perplexity"] < 2.0 and r["agreement"] == r["accuracy"]
    # the metrics are over real tokens only
    logits = predict(m, x)
    keep = y != IGNORE_INDEX
    ce = F.cross_entropy(logits[keep].double(), y[keep])
    assert r["perplexity"] == pytest.approx(math.exp(float(ce)), rel=1e-9)
    assert r["accuracy"] == pytest.approx(float((logits[keep].argmax(-1) == y[keep]).float().mean()))


def test_lm_training_without_teacher_is_cross_entropy_over_real_tokens():
    x, y = _lm_data()
    torch.manual_seed(0)
    m = build(STUDENT, IO)
    before = evaluate(m, x, y)["perplexity"]
    res = train(m, x, y, ProxyRecipe(steps=40, batch_size=16, lr=1e-2), seed=0)
    assert math.isfinite(res.final_loss) and evaluate(m, x, y)["perplexity"] < before / 2
