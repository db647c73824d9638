import math

import numpy as np
import pytest
import torch

from nas_student.distill import kd_loss


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def reference(s, t, y, T, alpha, beta):
    """KD loss written out by hand in float64 numpy."""
    ps, pt = _softmax(s / T), _softmax(t / T)
    kl = (pt * (np.log(pt) - np.log(ps))).sum(-1).mean()
    ce = -np.log(_softmax(s)[np.arange(len(y)), y]).mean()
    return alpha * T * T * kl + beta * ce, T * T * kl, ce


S = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]])
TT = np.array([[3.0, 0.5, 0.2], [0.1, 0.2, 4.0]])
Y = np.array([0, 2])


@pytest.mark.parametrize("T,alpha,beta", [(1.0, 0.5, 0.5), (4.0, 0.9, 0.1), (20.0, 1.0, 0.0)])
def test_kd_loss_matches_hand_computed_reference(T, alpha, beta):
    got = kd_loss(torch.tensor(S), torch.tensor(TT), torch.tensor(Y), temperature=T, alpha=alpha, beta=beta)
    total, kd, ce = reference(S, TT, Y, T, alpha, beta)
    assert float(got.kd) == pytest.approx(kd, rel=1e-10)
    assert float(got.total) == pytest.approx(total, rel=1e-10)
    if beta:
        assert float(got.ce) == pytest.approx(ce, rel=1e-10)


def test_known_value():
    # T=1, one example: teacher [ln 3, 0] -> p_t = (0.75, 0.25); student uniform (0.5, 0.5)
    s = torch.zeros(1, 2)
    t = torch.tensor([[math.log(3.0), 0.0]])
    got = kd_loss(s, t, torch.tensor([0]), temperature=1.0, alpha=1.0, beta=1.0)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert float(got.kd) == pytest.approx(kl, rel=1e-6)
    assert float(got.ce) == pytest.approx(math.log(2), rel=1e-6)
    assert float(got.total) == pytest.approx(kl + math.log(2), rel=1e-6)


def test_identical_logits_give_zero_kd():
    z = torch.randn(5, 10)
    assert float(kd_loss(z, z.clone(), None, temperature=3.0, alpha=1.0, beta=0.0).kd) == pytest.approx(0.0, abs=1e-6)


def test_no_nan_with_extreme_logits_and_temperature():
    s = torch.tensor([[1000.0, -1000.0, 0.0]], requires_grad=True)
    t = torch.tensor([[-1000.0, 1000.0, 0.0]])
    for T in (0.05, 1.0, 1000.0):
        loss = kd_loss(s, t, torch.tensor([1]), temperature=T).total
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
        s.grad = None


def test_without_teacher_it_is_plain_cross_entropy():
    s, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    got = kd_loss(s, None, y, alpha=0.7, beta=1.0)
    assert float(got.total) == pytest.approx(float(torch.nn.functional.cross_entropy(s, y)))
    assert float(got.kd) == 0.0


def test_precomputed_soft_targets_give_the_same_loss():
    s, t, y = torch.randn(6, 5), torch.randn(6, 5), torch.randint(0, 5, (6,))
    a = kd_loss(s, t, y, temperature=3.0)
    b = kd_loss(s, None, y, temperature=3.0, teacher_log_probs=torch.log_softmax(t / 3.0, -1))
    assert torch.allclose(a.total, b.total) and torch.allclose(a.kd, b.kd)


@pytest.mark.parametrize("alpha,beta", [(0.9, 0.1), (0.5, 0.5), (1.0, 0.0), (0.0, 1.0)])
def test_the_mixed_target_cross_entropy_is_the_kd_loss_at_t1(alpha, beta):
    """alpha*KL(p_t||p_s) + beta*CE = CE(p_s; alpha p_t + beta onehot) + alpha*sum p_t log p_t."""
    from nas_student.distill.losses import mixed_kd_loss, mixed_targets

    t_lp = torch.log_softmax(torch.tensor(TT), -1)
    q, offset = mixed_targets(t_lp, torch.tensor(Y), alpha, beta)
    pt = _softmax(TT)
    want_q = alpha * pt + beta * np.eye(3)[Y]
    assert q.numpy() == pytest.approx(want_q, rel=1e-12) and q.sum(-1).numpy() == pytest.approx([alpha + beta] * 2)
    assert offset.numpy() == pytest.approx(alpha * (pt * np.log(pt)).sum(-1), rel=1e-12)
    got = mixed_kd_loss(torch.tensor(S), q, offset)
    assert float(got) == pytest.approx(reference(S, TT, Y, 1.0, alpha, beta)[0], rel=1e-10)
