"""Several teachers as one: the combined soft targets and the KD loss against them, by hand."""

import math

import pytest
import torch

from nas_student.distill.ensemble import TeacherEnsemble, combine_probs
from nas_student.distill.losses import kd_loss
from nas_student.errors import NasStudentError


def test_mean_and_confidence_combinations_by_hand():
    unsure = torch.tensor([[0.0, 0.0]])                # p = (0.5, 0.5): no confidence at all
    sure = torch.tensor([[math.log(3.0), 0.0]])        # p = (0.75, 0.25)
    assert combine_probs([unsure, sure], "mean")[0].tolist() == pytest.approx([0.625, 0.375])
    # confidence = 1 - H(p)/log 2: 0 for the uniform teacher, so the sure one decides alone
    assert combine_probs([unsure, sure], "confidence")[0].tolist() == pytest.approx([0.75, 0.25])
    other = torch.tensor([[0.0, math.log(3.0)]])       # p = (0.25, 0.75), as sure as `sure`
    assert combine_probs([sure, other], "confidence")[0].tolist() == pytest.approx([0.5, 0.5])
    h = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))  # a surer teacher (0.9) against `sure` (0.75)
    w_a, w_b = 1 - h / math.log(2), 1 - (-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))) / math.log(2)
    surer = torch.tensor([[math.log(9.0), 0.0]])
    want = (w_a * 0.9 + w_b * 0.25) / (w_a + w_b)
    assert combine_probs([surer, other], "confidence")[0, 0].item() == pytest.approx(want)
    both_unsure = combine_probs([unsure, unsure], "confidence")  # all weights 0: the plain mean
    assert both_unsure[0].tolist() == pytest.approx([0.5, 0.5])


def test_kd_from_an_ensemble_is_kd_from_the_mean_distribution():
    t1, t2 = torch.nn.Linear(3, 4), torch.nn.Linear(3, 4)
    ens = TeacherEnsemble([t1, t2], "mean")
    x, student = torch.randn(5, 3), torch.randn(5, 4)
    p = (torch.softmax(t1(x), -1) + torch.softmax(t2(x), -1)) / 2
    assert torch.allclose(torch.softmax(ens(x), -1), p, atol=1e-6)
    got = kd_loss(student, ens(x), None, temperature=1.0, alpha=1.0, beta=0.0).kd
    want = (p * (p.log() - torch.log_softmax(student, -1))).sum(-1).mean()  # KL(p || q_student)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    # the ensemble is priced as every teacher run: its parameters are the members' together
    assert sum(q.numel() for q in ens.parameters()) == 2 * sum(q.numel() for q in t1.parameters())


def test_teachers_that_do_not_match_or_too_few_are_refused():
    with pytest.raises(NasStudentError, match=r"teachers' outputs do not match: shapes \[\(2, 3\), \(2, 4\)\]"):
        combine_probs([torch.zeros(2, 4), torch.zeros(2, 3)])
    with pytest.raises(NasStudentError, match="at least two teachers"):
        TeacherEnsemble([torch.nn.Linear(2, 2)])
    with pytest.raises(NasStudentError, match="unknown way to combine teachers 'vote'"):
        combine_probs([torch.zeros(1, 2), torch.zeros(1, 2)], "vote")  # type: ignore[arg-type]
