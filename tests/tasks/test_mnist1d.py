"""The built-in mnist1d task: generated offline by the package's own generator, deterministic,
cached, leaving the caller's random state alone; its teacher; a heterogeneous search on it."""

import json
import random
import socket

import numpy as np
import pytest
import torch

from nas_student.tasks import mnist1d


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_STUDENT_CACHE", str(tmp_path))
    return tmp_path


def _no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the mnist1d task opened a network connection")
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_generated_offline_deterministic_and_cached(_teacher_cache, fresh_cache, monkeypatch):
    _no_network(monkeypatch)
    a = mnist1d.dataset()
    files = sorted(p.name for p in (fresh_cache / "data").iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".npz")
    assert a["x"].shape == (16_000, 40) and a["x_test"].shape == (4_000, 40)
    assert a["x"].dtype == np.float32 and set(np.unique(a["y"])) == set(range(10))
    # made independently in the suite's own cache (another process, or an earlier session with
    # NAS_STUDENT_TEST_CACHE; made here if it is not there yet): the same bytes
    monkeypatch.setenv("NAS_STUDENT_CACHE", str(_teacher_cache))
    b = mnist1d.dataset()
    for k in a:
        assert np.array_equal(a[k], b[k])
    assert not list(fresh_cache.glob("*.pkl")) and not list(fresh_cache.parent.glob("mnist1d_data*.pkl"))


def test_global_random_state_is_left_as_it_was(fresh_cache, monkeypatch):
    monkeypatch.setitem(mnist1d.GENERATOR, "num_samples", 500)  # the generator's code path, smaller
    np.random.seed(123)
    random.seed(456)
    expected = (np.random.rand(3), random.random())
    np.random.seed(123)
    random.seed(456)
    mnist1d._generate()
    assert np.array_equal(np.random.rand(3), expected[0]) and random.random() == expected[1]


def test_an_altered_cache_is_made_again(fresh_cache, monkeypatch):
    monkeypatch.setitem(mnist1d.GENERATOR, "num_samples", 500)  # the cache's code path, smaller
    a = mnist1d.dataset()
    npz = next((fresh_cache / "data").glob("*.npz"))
    with np.load(npz) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["y"][0] = (arrays["y"][0] + 1) % 10
    np.savez(npz, **arrays)
    b = mnist1d.dataset()
    assert np.array_equal(a["y"], b["y"])
    meta = json.loads(next((fresh_cache / "data").glob("*.json")).read_text())
    assert meta["generator"]["num_samples"] == 500


def test_splits_sizes_and_seeds():
    tr, va, te = mnist1d.mnist1d_splits(0)
    assert (len(tr), len(va), len(te)) == (14_000, 2_000, 4_000)
    assert tr.x.shape[1:] == (1, 40) and tr.y.dtype == torch.int64
    assert all(abs(n - 200) <= 5 for n in torch.bincount(va.y).tolist())  # stratified
    tr1, va1, te1 = mnist1d.mnist1d_splits(1)
    assert torch.equal(te.x, te1.x) and not torch.equal(va.x, va1.x)


def test_teacher_is_worth_distilling(mnist1d_task):
    assert mnist1d_task.teacher_info["test_accuracy"] >= 0.97
    assert not mnist1d_task.teacher.training


@pytest.mark.slow
def test_heterogeneous_search_cnn_teacher_gru_students(tmp_path, mnist1d_task):
    import pandas as pd

    from nas_student.config import ProxyRecipe, RunConfig, SearchSettings, TrustSettings
    from nas_student.search import run_search

    space = tmp_path / "gru.yaml"
    space.write_text("name: gru\nfamily: rnn\nparams:\n  cell: gru\n  layers: 1\n"
                     "  hidden: {type: choice, values: [4, 8, 12]}\n  embed_dim: {type: choice, values: [4, 8]}\n")
    cfg = RunConfig(task="mnist1d", space=str(space), results_dir=str(tmp_path), device="cpu",
                    budget=ProxyRecipe(steps=30),
                    search=SearchSettings(trials=3, seed=0, trust=TrustSettings(enabled=False)))
    run_search(cfg)
    trials = pd.read_csv(tmp_path / cfg.run_name() / "trials.csv")
    trained = trials[trials["state"] == "COMPLETE"]
    assert len(trained) == 3 and trained["arch"].str.contains('"family": "rnn"').all()
    assert (trained["accuracy"] > 0.1).all()  # better than chance after 30 steps against the CNN teacher


def _search_seeing_proxy_recipes(tmp_path, monkeypatch, space_yaml: str, budget, trials: int):
    """Run a random-sampler search of ``space_yaml`` on mnist1d with ``budget`` and the trust
    report on; return (the trained trials in order, the proxy recipe each trained with, the trust
    report's students)."""
    import json

    import pandas as pd

    from nas_student.config import ProxyRecipe, RunConfig, SearchSettings, TrustSettings
    from nas_student.search import objective, run_search

    space = tmp_path / "space.yaml"
    space.write_text(space_yaml)
    seen = []
    real = objective.train

    def spy(*a, **k):
        seen.extend(x for x in a if isinstance(x, ProxyRecipe))
        return real(*a, **k)

    monkeypatch.setattr(objective, "train", spy)
    cfg = RunConfig(task="mnist1d", space=str(space), results_dir=str(tmp_path), device="cpu", budget=budget,
                    search=SearchSettings(trials=trials, seed=0, sampler="random", trust=TrustSettings(budget=None)))
    run_search(cfg)
    frame = pd.read_csv(tmp_path / cfg.run_name() / "trials.csv").sort_values("trial")
    trained = frame[(frame["state"] == "COMPLETE") & frame["duplicate_of"].isna()]
    report = json.loads((tmp_path / cfg.run_name() / "trust.json").read_text())
    return trained, seen, report["students"]


@pytest.mark.slow
def test_a_mixed_search_trains_each_family_at_its_proxy_lr_and_steps(tmp_path, mnist1d_task, monkeypatch):
    from nas_student.config import ProxyRecipe

    trained, seen, report = _search_seeing_proxy_recipes(
        tmp_path, monkeypatch,
        "name: mixed\nfamilies:\n  mlp:\n    params:\n      layers:\n        type: repeat\n"
        "        count: 1\n        params: {width: {type: choice, values: [8, 16]}}\n"
        "  rnn:\n    params:\n      cell: gru\n      layers: 1\n      hidden: {type: choice, values: [4, 8]}\n"
        "      embed_dim: 4\n",
        ProxyRecipe(steps=10, depth_power=0, family_lr={"rnn": 0.05}, family_step_factor={"rnn": 2}), trials=4)
    families = trained["arch"].str.extract(r'"family": "(\w+)"')[0].tolist()
    assert set(families) == {"mlp", "rnn"}  # both families drawn, so the rule is exercised both ways
    assert [(r.lr, r.steps) for r in seen] == [(0.05, 20) if f == "rnn" else (0.01, 10) for f in families]
    # the trust report trains each student to 2x its own proxy steps
    by_trial = dict(zip(trained["trial"], families))
    assert report and all((s["proxy_steps"], s["long_steps"]) == ((20, 40) if by_trial[s["trial"]] == "rnn" else (10, 20))
                          for s in report)


@pytest.mark.slow
def test_with_depth_power_each_student_trains_steps_by_the_square_root_of_its_depth(tmp_path, mnist1d_task, monkeypatch):
    import json

    from nas_student.config import ProxyRecipe

    trained, seen, report = _search_seeing_proxy_recipes(
        tmp_path, monkeypatch,
        "name: deep\nfamily: cnn1d\nparams:\n  stem_width: 4\n  stem_kernel: 3\n  stages:\n"
        "    type: repeat\n    count: {type: int, low: 1, high: 2}\n    params:\n      block: conv\n"
        "      expansion: 1\n      depth: {type: int, low: 1, high: 2}\n      width: 4\n      kernel: 3\n"
        "      downsample: stride\n  norm: batch\n  activation: relu\n  residual: false\n",
        ProxyRecipe(steps=8, depth_power=0.5), trials=5)
    depths = [sum(s["depth"] for s in json.loads(a)["stages"]) for a in trained["arch"]]
    assert len(set(depths)) > 1  # students of several depths drawn, so the rule is exercised
    assert [r.steps for r in seen] == [round(8 * (d / 2) ** 0.5) for d in depths]  # 6, 8, 10, 11
    assert trained["status"].tolist() == [f"trained ({r.steps} KD steps)" for r in seen]  # the table says so
    by_trial = dict(zip(trained["trial"], depths))
    assert report and all((s["proxy_steps"], s["long_steps"]) == (round(8 * (by_trial[s["trial"]] / 2) ** 0.5),
                                                                  round(16 * (by_trial[s["trial"]] / 2) ** 0.5))
                          for s in report)
