"""The built-in tasks' cuts are scikit-learn's, remembered: the same indices, and a process that
finds them cached never imports scikit-learn (2 s of every start-up)."""

import subprocess
import sys

import numpy as np
from sklearn.datasets import load_digits as sklearn_load_digits
from sklearn.model_selection import train_test_split

from nas_student.tasks import digits
from nas_student.tasks.splits import split_indices


def test_the_cut_is_train_test_split_computed_or_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_STUDENT_CACHE", str(tmp_path))
    y = np.random.default_rng(0).integers(0, 4, 300)
    for stratify in (y, None):
        want = train_test_split(np.arange(300), test_size=0.25, stratify=stratify, random_state=3)
        for _ in range(2):  # computed, then read back from the cache
            got = split_indices(300, 0.25, 3, stratify=stratify)
            assert all(np.array_equal(g, w) for g, w in zip(got, want))
    assert len(list((tmp_path / "splits").glob("*.npz"))) == 2  # one entry per cut
    stratified = train_test_split(np.arange(300), test_size=0.25, stratify=y, random_state=3)[1]
    # another seed or other labels are other cuts, not a stale hit
    assert np.array_equal(split_indices(300, 0.25, 4, stratify=y)[1],
                          train_test_split(np.arange(300), test_size=0.25, stratify=y, random_state=4)[1])
    other = (y + 1) % 4 * (np.arange(300) % 3 > 0)  # other labels, same size
    assert np.array_equal(split_indices(300, 0.25, 3, stratify=other)[1],
                          train_test_split(np.arange(300), test_size=0.25, stratify=other, random_state=3)[1])
    assert not np.array_equal(split_indices(300, 0.25, 3, stratify=other)[1], stratified)
    for entry in (tmp_path / "splits").glob("*.npz"):
        entry.write_bytes(b"garbage")  # unreadable: computed again
    assert np.array_equal(split_indices(300, 0.25, 3, stratify=y)[1], stratified)


def test_digits_are_read_as_scikit_learn_reads_them():
    x, y = digits.load_digits()
    want_x, want_y = sklearn_load_digits(return_X_y=True)
    assert np.array_equal(x, want_x) and np.array_equal(y, want_y) and y.dtype == want_y.dtype


def test_a_task_whose_cut_is_cached_loads_without_scikit_learn(tmp_path):
    code = ("import sys; from nas_student.tasks.digits import digits_splits; s = digits_splits(0); "
            "print(len(s[0]), len(s[1]), len(s[2]), 'sklearn' in sys.modules)")
    env = {"NAS_STUDENT_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()
            for _ in range(2)]
    assert runs[0] == ["1078", "359", "360", "True"]  # the first computes the cut
    assert runs[1] == ["1078", "359", "360", "False"]  # the second reads it back
