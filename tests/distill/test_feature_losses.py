import math

import torch

from nas_student.distill.feature_losses import AttentionTransfer, Hint
from nas_student.distill.feature_map import auto_pairs


def test_hint_is_mse_after_the_learned_1x1_projection():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4)
    h = Hint(s.shape, t.shape)
    w = h.proj.weight.detach().view(5, 3)
    projected = torch.einsum("oc,bchw->bohw", w, s)
    assert torch.allclose(h(s, t), ((projected - t) ** 2).mean(), atol=1e-6)


def test_hint_pools_a_feature_map_for_a_flat_student_and_matches_resolutions():
    torch.manual_seed(0)
    s, t = torch.randn(2, 6), torch.randn(2, 4, 3, 3)
    h = Hint(s.shape, t.shape)
    ref = ((s @ h.proj.weight.detach().T - t.mean((2, 3))) ** 2).mean()
    assert torch.allclose(h(s, t), ref, atol=1e-6)
    s2, t2 = torch.randn(1, 2, 4, 4), torch.randn(1, 2, 2, 2)
    h2 = Hint(s2.shape, t2.shape)
    with torch.no_grad():
        h2.proj.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
    pooled = torch.nn.functional.avg_pool2d(s2, 2)
    assert torch.allclose(h2(s2, t2), ((pooled - t2) ** 2).mean(), atol=1e-6)


def test_attention_transfer_is_kl_to_the_head_mixture():
    a_t = torch.softmax(torch.randn(1, 2, 3, 3), -1)
    a_s = torch.softmax(torch.randn(1, 1, 3, 3), -1)
    att = AttentionTransfer(1, 2)
    assert torch.allclose(att.weights(), torch.tensor([[0.5, 0.5]]))
    mix = a_t.mean(1, keepdim=True)
    ref = (mix * (mix.log() - a_s.log())).sum(-1).mean()
    assert torch.allclose(att(a_s, a_t), ref, atol=1e-6)
    same = AttentionTransfer(2, 2)  # equal counts: starts close to 1:1
    assert float(same.weights()[0, 0].detach()) > 0.95
    assert AttentionTransfer(2, 2)(a_t, a_t).detach().item() < 0.05
    # causal maps (zeros above the diagonal) stay finite
    causal = torch.tril(torch.ones(3, 3))
    causal = (causal / causal.sum(-1, keepdim=True))[None, None]
    v = AttentionTransfer(1, 1)(causal, causal).detach()
    assert math.isfinite(float(v)) and abs(float(v)) < 1e-6


def test_adaptive_head_weights_learn_the_imitable_head():
    torch.manual_seed(0)
    target = torch.softmax(torch.randn(4, 1, 5, 5) * 3, -1)
    other = torch.softmax(torch.randn(4, 1, 5, 5) * 3, -1)
    a_t = torch.cat([other, target], 1)
    att = AttentionTransfer(1, 2)
    opt = torch.optim.Adam(att.parameters(), lr=0.1)
    for _ in range(100):
        loss = att(target, a_t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(att.weights()[0, 1].detach()) > 0.9


def _cnn(res):  # tap shapes of a CNN: stage name -> (B, C, H, W)
    return {"stem": torch.Size([2, 8, 8, 8]),
            **{f"stage{i + 1}": torch.Size([2, 16, r, r]) for i, r in enumerate(res)},
            "pooled": torch.Size([2, 16])}


def test_auto_pairs_by_resolution_then_by_depth():
    teacher = _cnn([8, 8, 4, 2])
    student = _cnn([8, 4, 4])
    pairs = [(p.teacher, p.student) for p in auto_pairs(teacher, student)]
    assert pairs == [("stage2", "stage1"), ("stage3", "stage3")]  # last stage at 8x8 and at 4x4
    seq_t = {"embed": torch.Size([2, 5, 8]), **{f"layer{i}": torch.Size([2, 5, 8]) for i in range(1, 7)}}
    seq_s = {"embed": torch.Size([2, 5, 4]), **{f"layer{i}": torch.Size([2, 5, 4]) for i in range(1, 4)}}
    assert [(p.teacher, p.student) for p in auto_pairs(seq_t, seq_s)] == [
        ("layer2", "layer1"), ("layer4", "layer2"), ("layer6", "layer3")]
    mlp = {"input": torch.Size([2, 64]), "layer1": torch.Size([2, 32]), "layer2": torch.Size([2, 16])}
    assert [(p.teacher, p.student) for p in auto_pairs(teacher, mlp)] == [("stage2", "layer1"), ("stage4", "layer2")]
