"""The teacher's outputs are cached beside a built-in teacher: computed once, read back
unchanged, computed again for other inputs or when the file is unreadable."""

import torch

from nas_student.config import RunConfig
from nas_student.distill import evaluate, predict
from nas_student.search.context import prepare
from nas_student.tasks.base import Split, Task
from nas_student.tasks.teacher_cache import cached_outputs, outputs_prefix


def _counting(x: torch.Tensor, calls: list[int]):
    def compute() -> torch.Tensor:
        calls.append(1)
        return x.sum(dim=1, keepdim=True) * torch.arange(3.0)
    return compute


def test_outputs_are_computed_once_then_read_back(tmp_path):
    x, calls = torch.randn(7, 4), []
    prefix = tmp_path / "teachers" / "k-abc"
    prefix.parent.mkdir()
    first = cached_outputs(prefix, x, "cpu", _counting(x, calls))
    again = cached_outputs(prefix, x, "cpu", _counting(x, calls))
    assert calls == [1] and torch.equal(first, again)
    other = torch.randn(7, 4)  # other inputs (same shape): their own entry
    assert torch.equal(cached_outputs(prefix, other, "cpu", _counting(other, calls)), _counting(other, [])())
    assert calls == [1, 1]
    cached_outputs(prefix, x, "cuda", _counting(x, calls))  # another kind of device: its own entry
    assert calls == [1, 1, 1]


def test_an_unreadable_or_wrong_file_is_computed_again(tmp_path):
    x, calls = torch.randn(5, 2), []
    prefix = tmp_path / "k-abc"
    cached_outputs(prefix, x, "cpu", _counting(x, calls))
    (path,) = tmp_path.glob("k-abc.outputs-*-cpu.pt")
    path.write_bytes(b"not a tensor file")
    assert torch.equal(cached_outputs(prefix, x, "cpu", _counting(x, calls)), _counting(x, [])())
    torch.save(torch.zeros(3, 3), path)  # the wrong rows
    assert cached_outputs(prefix, x, "cpu", _counting(x, calls)).shape == (5, 3)
    assert calls == [1, 1, 1]


def test_a_task_without_a_cache_runs_its_teacher(tmp_path):
    teacher = torch.nn.Linear(4, 3).eval()
    split = Split(torch.randn(6, 4), torch.zeros(6, dtype=torch.long))
    plain = Task("t", None, split, split, split, teacher)  # type: ignore[arg-type]
    cached = Task("t", None, split, split, split, teacher, outputs_cache=tmp_path / "k-abc")  # type: ignore[arg-type]
    expected = predict(teacher, split.x)
    assert torch.equal(plain.teacher_logits("val"), expected)
    assert torch.equal(cached.teacher_logits("val"), expected)
    assert len(list(tmp_path.glob("k-abc.outputs-*"))) == 1 and not list(tmp_path.glob("*.tmp"))


def test_search_context_reads_the_builtin_teachers_outputs_from_the_cache(digits_task):
    prefix = outputs_prefix(digits_task.teacher_info)
    for f in prefix.parent.glob(f"{prefix.name}.outputs-*"):
        f.unlink()
    ctx = prepare(RunConfig(task="digits", space="digits-mlp", device="cpu"))
    stored = sorted(prefix.parent.glob(f"{prefix.name}.outputs-*"))
    assert len(stored) == 2  # the training split and the validation split
    assert torch.equal(ctx.teacher_train_logits, predict(digits_task.teacher, digits_task.train.x))
    assert ctx.teacher_val_accuracy == evaluate(digits_task.teacher, digits_task.val.x, digits_task.val.y)["accuracy"]
    again = prepare(RunConfig(task="digits", space="digits-mlp", device="cpu"))
    assert torch.equal(again.teacher_val_logits, ctx.teacher_val_logits)
    assert sorted(prefix.parent.glob(f"{prefix.name}.outputs-*")) == stored
