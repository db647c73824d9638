import json

import torch

from nas_student.distill import evaluate
from nas_student.tasks.digits import digits_splits
from nas_student.tasks.teacher_cache import cached_teacher


def test_split_is_stratified_fixed_by_seed_and_disjoint():
    a = digits_splits(0)
    b = digits_splits(0)
    c = digits_splits(1)
    assert [len(s) for s in a] == [1078, 359, 360]
    assert all(torch.equal(x.x, y.x) for x, y in zip(a, b))
    assert not torch.equal(a[0].x, c[0].x)
    counts = torch.bincount(a[0].y, minlength=10)
    assert counts.min() >= 100 and counts.max() <= 112  # stratified: ~108 per class
    rows = {tuple(r.flatten().tolist()) for s in a for r in s.x}
    assert len(rows) <= 1797


def test_builtin_teacher_is_accurate_and_frozen(digits_task):
    t = digits_task
    acc = evaluate(t.teacher, t.test.x, t.test.y)["accuracy"]
    assert acc >= 0.97
    assert acc == t.teacher_info["test_accuracy"]
    assert not t.teacher.training and not any(p.requires_grad for p in t.teacher.parameters())


def _tiny(tmp_path, calls):
    def build():
        torch.manual_seed(0)
        return torch.nn.Linear(3, 2)

    def fit(m):
        calls.append(1)
        with torch.no_grad():
            m.weight.add_(1.0)

    def score(m):
        return float(m.weight.detach().sum())

    return cached_teacher({"name": "tiny"}, build, fit, score, root=tmp_path)


def test_cache_is_reused_then_rebuilt_when_corrupt_or_missing(tmp_path):
    calls: list[int] = []
    m1, meta1 = _tiny(tmp_path, calls)
    assert meta1["cache"].startswith("rebuilt") and len(calls) == 1
    m2, meta2 = _tiny(tmp_path, calls)
    assert meta2["cache"] == "hit" and len(calls) == 1
    assert torch.equal(m1.weight, m2.weight)
    key = meta1["key"]
    weights = tmp_path / "teachers" / f"{key}.pt"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")  # corrupt
    _, meta3 = _tiny(tmp_path, calls)
    assert "sha256" in meta3["cache"] and len(calls) == 2
    weights.unlink()  # missing
    _, meta4 = _tiny(tmp_path, calls)
    assert "not cached" in meta4["cache"] and len(calls) == 3
    meta_file = tmp_path / "teachers" / f"{key}.json"
    meta = json.loads(meta_file.read_text())
    meta["test_accuracy"] += 1.0  # metadata that does not match the weights
    meta_file.write_text(json.dumps(meta))
    _, meta5 = _tiny(tmp_path, calls)
    assert "re-scored" in meta5["cache"] and len(calls) == 4


def test_cache_refuses_pickled_code(tmp_path):
    """A weights file that would run code when unpickled is rejected (weights_only) and rebuilt."""
    calls: list[int] = []
    _, meta = _tiny(tmp_path, calls)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    weights = tmp_path / "teachers" / f"{meta['key']}.pt"
    torch.save({"weight": Evil()}, weights)
    import hashlib
    meta_file = tmp_path / "teachers" / f"{meta['key']}.json"
    m = json.loads(meta_file.read_text())
    m["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()  # even with a matching hash
    meta_file.write_text(json.dumps(m))
    _, meta2 = _tiny(tmp_path, calls)
    assert "unreadable" in meta2["cache"] and not marker.exists() and len(calls) == 2


_RACE = """
import sys, time, torch
from pathlib import Path
from nas_student.tasks.teacher_cache import cached_teacher
root, log = Path(sys.argv[1]), Path(sys.argv[2])
def build():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)
def fit(m):
    with log.open("a") as f:
        f.write("fit\\n")
    time.sleep(1.5)  # a slow teacher: the other process arrives while this one trains
    with torch.no_grad():
        m.weight.add_(1.0)
_, meta = cached_teacher({"name": "race"}, build, fit, lambda m: float(m.weight.sum()), root=root)
print(meta["cache"])
"""


def test_two_processes_on_a_cold_cache_train_the_teacher_once(tmp_path):
    """Search workers (or parallel test processes) starting together: one trains, the other
    waits for it and loads the result."""
    import subprocess
    import sys

    log = tmp_path / "fits.log"
    procs = [subprocess.Popen([sys.executable, "-c", _RACE, str(tmp_path), str(log)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert all(p.returncode == 0 for p in procs)
    assert log.read_text().count("fit") == 1
    assert outs[0] == "hit" and outs[1].startswith("rebuilt (not cached yet)"), outs
