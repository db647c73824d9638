"""The built-in text task: CPython's documentation as corpus (any release), deterministic windows and split, teacher > unigram."""

import hashlib
import platform
import sys
import types

import pytest
import torch

from nas_student.distill.losses import IGNORE_INDEX
from nas_student.families import build
from nas_student.tasks import load_task, task_io, task_names
from nas_student.tasks import text


@pytest.fixture(scope="session")
def text_task(_teacher_cache):
    return load_task("text", seed=0)


def test_corpus_is_cpythons_documentation_topics_and_named_by_version():
    texts = text.corpus()
    import pydoc_data.topics

    assert texts == [pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics)]
    assert len(texts) >= 50 and sum(map(len, texts)) > 300_000  # ~465,000 characters in 3.11
    v = text.corpus_version(texts)
    assert v["source"] == "pydoc_data.topics" and v["python"] == platform.python_version()
    assert v["characters"] == sum(map(len, texts)) and v["texts"] == len(texts)
    assert v["sha256"] == hashlib.sha256("\0".join(texts).encode()).hexdigest()
    x, _ = text.windows(texts)
    assert (x == text.UNK).float().mean() < 0.005  # the fixed vocabulary covers the corpus


def test_a_corpus_with_other_bytes_builds_its_own_teacher_never_refused(tmp_path, monkeypatch, capfd):
    """Another Python release ships other topic texts: the task builds from them, and the
    teacher cache (keyed on the data) trains a new teacher instead of refusing or reusing."""
    monkeypatch.setenv("NAS_STUDENT_CACHE", str(tmp_path))
    monkeypatch.setattr(text, "TEACHER_BUDGET", text.TEACHER_BUDGET.model_copy(update={"steps": 3}))
    monkeypatch.setattr(text, "TEACHER_ARCH", {**text.TEACHER_ARCH, "d_model": 16, "layers": 1})
    fake = types.ModuleType("fake_topics")
    monkeypatch.setitem(sys.modules, "fake_topics", fake)
    monkeypatch.setattr(text, "SOURCE", "fake_topics")
    seen = []
    for words in ("the quick brown fox jumps over the lazy dog. ", "Another release, other bytes! "):
        fake.topics = {f"topic{i}": words * (40 + i) for i in range(30)}
        task = text.load(seed=0)
        meta = task.teacher_info
        assert meta["cache"].startswith("rebuilt (not cached yet)"), meta["cache"]
        err = capfd.readouterr().err  # a user waiting for the teacher sees it train
        assert "'text' teacher is not cached yet" in err and "training it once, 3 steps" in err
        assert "text teacher: step 3/3" in err
        assert meta["corpus"]["source"] == "fake_topics" and meta["corpus"]["texts"] == 30
        assert len(task.train) + len(task.val) + len(task.test) > 30
        seen.append((meta["key"], meta["corpus"]["sha256"]))
    assert seen[0][0] != seen[1][0] and seen[0][1] != seen[1][1]
    assert text.load(seed=0).teacher_info["cache"] == "hit"  # the same corpus again: cached
    assert len(list((tmp_path / "teachers").glob("*.pt"))) == 2
    monkeypatch.setitem(sys.modules, "fake_topics", None)  # a Python without the topics
    with pytest.raises(text.CorpusError, match="this Python has no fake_topics"):
        text.corpus()


def test_windows_encode_pad_and_shift_by_one():
    x, y = text.windows(["abc", "x" * 70])
    assert x.shape == y.shape == (3, text.LENGTH) and x.dtype == torch.long
    assert text.decode(x[0]) == "ab" and text.decode(y[0][:2]) == "bc"
    assert (y[0, 2:] == IGNORE_INDEX).all() and (x[0, 2:] == text.PAD).all()
    assert torch.equal(x[1, 1:], y[1, :-1])  # targets are the inputs shifted by one
    assert text.encode("A\u00d7") == [text.VOCAB.index("a"), text.UNK]


def test_split_is_deterministic_by_seed_and_disjoint():
    a, b, c = text.text_splits(0), text.text_splits(0), text.text_splits(1)
    for s, t in zip(a, b):
        assert torch.equal(s.x, t.x) and torch.equal(s.y, t.y)
    assert not torch.equal(a[0].x, c[0].x)
    n = len({tuple(r) for r in text.windows(text.corpus())[0].tolist()})  # distinct windows
    assert [len(s) for s in a] == [int(0.8 * n), int(0.1 * n), n - int(0.8 * n) - int(0.1 * n)]
    rows = {tuple(r.tolist()) for s in a for r in s.x}
    assert len(rows) == sum(len(s) for s in a)  # no window in two splits
    digest = hashlib.sha256(torch.cat([s.x for s in a]).numpy().tobytes()).hexdigest()
    assert digest == hashlib.sha256(torch.cat([s.x for s in b]).numpy().tobytes()).hexdigest()


def test_task_is_registered_with_its_interface():
    assert "text" in task_names()
    io = task_io("text")
    assert io.tokens and io.causal and io.per_token and io.num_outputs == io.vocab_size == 72
    assert io.example_input().shape == (1, 64)


def test_teacher_beats_a_unigram_model_clearly(text_task):
    info = text_task.teacher_info
    uni = info["unigram"]
    assert text_task.kind == "lm"
    assert info["test_accuracy"] > uni["accuracy"] + 0.1
    assert info["test_perplexity"] < uni["perplexity"] / 2
    assert not any(p.requires_grad for p in text_task.teacher.parameters())
    # the teacher is a causal Transformer of the transformer family
    ref = build(text.TEACHER_ARCH, text.IO)
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in text_task.teacher.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("space", ["text-transformer", "text-rnn"])
def test_search_on_the_text_task_gives_a_front_of_feasible_students(tmp_path, text_task, space):
    import pandas as pd
    from typer.testing import CliRunner

    from nas_student.cli import app

    # the recurrent students are searched on measured latency at batch 64 (MACs do not follow it)
    # (and without the trust report, which the Transformer search and tests/search/test_trust.py run)
    latency = ["--objectives", "accuracy,latency_ms,params", "--latency-batch", "64", "--no-trust"] if space == "text-rnn" else []
    result = CliRunner().invoke(app, ["search", "--task", "text", "--space", space, "--trials", "4",
                                      "--steps", "20", "--results-dir", str(tmp_path), *latency])
    assert result.exit_code == 0, result.output
    front = pd.read_csv(tmp_path / f"text-{space}-s0" / "pareto.csv")
    if latency:
        trials = pd.read_csv(tmp_path / f"text-{space}-s0" / "trials.csv").query("feasible")
        assert (trials["latency_ms"] > 0).all() and "latency_ms" in front.columns
    assert len(front) >= 1 and front["feasible"].all()
    for plot in ("pareto.png", "pareto.html"):  # the search draws its front too
        assert (tmp_path / f"text-{space}-s0" / plot).stat().st_size > 0
    assert (front["macs_ratio"] <= 0.1).all() and (front["params_ratio"] <= 0.1).all()
    # the knee exports (token inputs: TorchScript and ONNX checked on token ids) and rebuilds
    import nas_student

    result = CliRunner().invoke(app, ["export", f"text-{space}-s0", "--results-dir", str(tmp_path),
                                      "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "b").iterdir()} == {
        "arch.json", "weights.pt", "model.ts", "model.onnx", "recipe.json", "MODEL_CARD.md"}
    model = nas_student.load_student(str(tmp_path / "b" / "arch.json"), weights=str(tmp_path / "b" / "weights.pt"))
    ids = torch.randint(0, text.IO.vocab_size, (2, *text.IO.input_shape))
    assert model(ids).shape == (2, *text.IO.input_shape, text.IO.num_outputs)
