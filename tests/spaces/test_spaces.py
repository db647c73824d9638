import math

import pytest
import torch

from nas_student.families import build
from nas_student.spaces import RandomSuggester, arch_hash, builtin_spaces, load_space
from nas_student.spaces.loader import parse_space
from nas_student.tasks import task_io
from nas_student.yamlio import loads_yaml

SPACES = sorted(builtin_spaces())


def space_from(text: str):
    data, lines = loads_yaml(text, "s.yaml")
    return parse_space(data, lines, "s.yaml")


def test_builtin_spaces_exist():
    assert {"digits-cnn", "digits-mlp"} <= set(SPACES)


@pytest.mark.parametrize("name", SPACES)
def test_every_space_samples_architectures_that_build_and_run(name):
    space = load_space(name)
    # each built-in space is built for the built-in task it was written for
    io = task_io(name.split("-")[0])
    rng = RandomSuggester(123)
    built, families = 0, set()
    for _ in range(30 if io.tokens else 80):
        arch = space.sample(rng)
        if space.violations(arch):
            continue
        model = build(arch, io)
        x = io.example_input(3).random_(0, io.vocab_size) if io.tokens else torch.randn(3, *io.input_shape)
        y, feats = model.forward_features(x)
        assert y.shape == ((3, *io.input_shape, io.num_outputs) if io.per_token else (3, io.num_outputs))
        assert set(feats) == set(model.tap_names) and len(feats) >= 1
        model.eval()
        assert torch.equal(model(x), model(x))
        built += 1
        families.add(arch["family"])
    assert built >= 5
    assert families == set(space.families)  # a mixed space builds every one of its families


def test_size_counts_rules_and_conditional_depth_exactly():
    space = space_from("""
name: tiny
family: mlp
params:
  activation: {type: choice, values: [relu, gelu]}
  layers:
    type: repeat
    count: {type: int, low: 0, high: 2}
    params:
      width: {type: int, low: 8, high: 32, step: 8}
    rules: ["width <= 16 or activation == 'gelu'"]
""")
    # relu: widths {8,16} -> 1 + 2 + 4 = 7; gelu: widths {8..32} -> 1 + 4 + 16 = 21
    assert space.size == 7 + 21


def test_size_is_infinite_for_continuous_ranges():
    space = space_from("""
name: c
family: mlp
params:
  layers: {type: repeat, count: 1, params: {width: 8, dropout: {type: float, low: 0.0, high: 0.5}}}
""")
    assert space.size == math.inf


def test_layer_rules_may_use_index_and_top_level_names():
    space = space_from("""
name: idx
family: mlp
params:
  layers:
    type: repeat
    count: 3
    params: {width: {type: choice, values: [8, 16, 32]}}
    rules: ["index > 0 or width == 8"]
""")
    assert space.size == 1 * 3 * 3
    assert space.violations({"family": "mlp", "layers": [{"width": 16}, {"width": 8}, {"width": 8}]}) \
        == ["layers[0]: index > 0 or width == 8"]


def test_sampling_is_deterministic_and_hash_is_stable():
    space = load_space("digits-cnn")
    a = [space.sample(RandomSuggester(7)) for _ in range(2)]
    assert a[0] == a[1]
    assert arch_hash(a[0]) == arch_hash(dict(reversed(list(a[0].items()))))
    assert len(arch_hash(a[0])) == 16


def test_optuna_trial_names_are_key_paths():
    import optuna

    space = load_space("digits-cnn")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    arch = space.sample(trial)
    n = len(arch["stages"])
    assert trial.params["stages.count"] == n
    assert trial.params[f"stages.{n - 1}.width"] == arch["stages"][-1]["width"]
    assert f"stages.{n}.width" not in trial.params


def test_space_by_path_and_by_name_are_the_same(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # built-in names work from any directory
    by_name = load_space("digits-mlp")
    by_path = load_space(str(builtin_spaces()["digits-mlp"]))
    assert by_name.size == by_path.size == 304425
