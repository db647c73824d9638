"""Deep mutual learning: each student's loss by hand, and a cohort that learns."""

import math

import pytest
import torch
import torch.nn.functional as F

from nas_student.distill import ProxyRecipe, evaluate
from nas_student.distill.mutual import mutual_losses, train_mutual
from nas_student.errors import NasStudentError


def test_each_students_loss_is_kd_plus_its_peers_kl_by_hand():
    a = torch.tensor([[2.0, 0.0, -1.0]])
    b = torch.tensor([[0.0, 1.0, 0.0]])
    c = torch.tensor([[0.5, 0.5, 0.5]])
    y = torch.tensor([1])
    teacher = torch.log_softmax(torch.tensor([[1.0, 2.0, 0.0]]), -1)

    def kl(p_logits, q_logits):  # KL(p || q), by the definition
        p, q = F.softmax(p_logits, -1)[0], F.softmax(q_logits, -1)[0]
        return sum(float(p[k] * (math.log(p[k]) - math.log(q[k]))) for k in range(3))

    def ce(z):
        return -float(F.log_softmax(z, -1)[0, 1])

    pt = teacher.exp()
    kd_a = sum(float(pt[0, k] * (teacher[0, k] - F.log_softmax(a, -1)[0, k])) for k in range(3))
    got = mutual_losses([a, b, c], y, teacher, temperature=1.0, alpha=0.9, beta=0.1, peer_weight=0.5)
    assert got[0].item() == pytest.approx(0.9 * kd_a + 0.1 * ce(a) + 0.5 * (kl(b, a) + kl(c, a)) / 2, rel=1e-5)
    # without a teacher: CE (beta) + the peers, as in Zhang et al.
    got = mutual_losses([a, b], y, None, temperature=1.0, alpha=0.9, beta=1.0, peer_weight=1.0)
    assert got[1].item() == pytest.approx(ce(b) + kl(a, b), rel=1e-5)


def test_a_cohort_learns_and_each_gradient_reaches_only_its_student(digits_task):
    from nas_student.distill import predict
    from nas_student.families import build

    arch = {"family": "mlp", "layers": [{"width": 32}], "activation": "relu", "norm": "none"}
    models = []
    for i in range(2):
        torch.manual_seed(i)
        models.append(build(arch, digits_task.io))
    before = [m.state_dict()["net.0.weight"].clone() if "net.0.weight" in m.state_dict() else next(iter(m.parameters())).detach().clone() for m in models]
    x, y = digits_task.train.x, digits_task.train.y
    res = train_mutual(models, x, y, ProxyRecipe(steps=60), teacher_logits=predict(digits_task.teacher, x), seed=0)
    assert len(res) == 2 and all(r.steps == 60 and math.isfinite(r.final_loss) for r in res)
    for m, b in zip(models, before):
        assert not torch.equal(next(iter(m.parameters())).detach(), b)
        assert evaluate(m, digits_task.test.x, digits_task.test.y)["accuracy"] > 0.6
    with pytest.raises(NasStudentError, match="at least two students"):
        train_mutual(models[:1], x, y, ProxyRecipe(steps=2), teacher_logits=None)
