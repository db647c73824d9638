import math

import pytest

from nas_student.distill.recipe import FeatureKD, Recipe, load_recipe
from nas_student.distill.schedules import Schedule, lr_factor, value_at
from nas_student.errors import ConfigError


def test_schedule_values():
    lin = Schedule(kind="linear", start=8, end=2)
    cos = Schedule(kind="cosine", start=8, end=2)
    assert [lin.at(s, 5) for s in range(5)] == [8.0, 6.5, 5.0, 3.5, 2.0]
    assert cos.at(0, 5) == 8.0 and cos.at(4, 5) == pytest.approx(2.0)
    assert cos.at(2, 5) == pytest.approx(5.0)  # the midpoint of a cosine is the mean
    assert cos.at(1, 5) == pytest.approx(2 + 6 * (1 + math.cos(math.pi / 4)) / 2)
    assert Schedule(start=3).at(7, 10) == 3.0
    assert value_at(4.0, 3, 10) == 4.0
    assert lin.at(0, 1) == 8.0  # one step: the start value


def test_lr_factor_warmup_then_cosine():
    assert [lr_factor("cosine", s, 10, warmup=2) for s in (0, 1)] == [0.5, 1.0]
    assert lr_factor("cosine", 2, 10, warmup=2) == 1.0
    assert lr_factor("cosine", 6, 10, warmup=2) == pytest.approx(0.5)
    assert lr_factor("linear", 5, 10) == 0.5
    assert lr_factor("constant", 9, 10) == 1.0


def test_recipe_from_yaml_with_schedules(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("steps: 1000\ntemperature: {kind: cosine, start: 8, end: 2}\nalpha: 0.7\n"
                 "features: {weight: 0.5, pairs: [{teacher: stage3, student: stage2}]}\n"
                 "labelled_fraction: 0.1\nlr: 1e-3\n")
    r = load_recipe(p)
    assert r.steps == 1000 and r.lr == 1e-3 and r.alpha == 0.7 and r.labelled_fraction == 0.1
    assert isinstance(r.temperature, Schedule) and r.temperature.at(999, 1000) == pytest.approx(2.0)
    assert r.features.pairs[0].teacher == "stage3" and r.uses_teacher_model
    assert load_recipe(p, {"steps": 50}).steps == 50
    assert not Recipe().uses_teacher_model and Recipe(features=FeatureKD()).uses_teacher_model


@pytest.mark.parametrize("text, key, rule", [
    ("steps: 10\ntemperature: {kind: cosine, start: 8, end: 0}\n", "temperature", "must be greater than 0"),
    ("steps: 10\nalpha: {kind: linear, start: 1}\n", "alpha", "needs `end`"),
    ("steps: 10\nlabelled_fraction: 0\n", "labelled_fraction", "greater than 0"),
    ("steps: 10\nfeatures: {weight: 1, pairs: [{teacher: a}]}\n", "features.pairs", "required"),
    ("steps: 10\nsteeps: 4\n", "steeps", "unknown key"),
])
def test_bad_recipes_name_file_line_key_and_rule(tmp_path, text, key, rule):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_recipe(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}:") and rule in msg and "\n" not in msg
    assert key.split(".")[0] in msg


def test_epochs_convert_to_steps():
    assert Recipe(epochs=2, batch_size=64).total_steps(1000) == 32  # 16 batches per epoch
    assert Recipe(steps=7).total_steps(1000) == 7


def test_proxy_defaults_differ_from_full_training_where_the_benchmark_says():
    from nas_student.config import RunConfig
    from nas_student.distill.recipe import ProxyRecipe

    proxy = RunConfig.model_validate({"budget": {"batch_size": 32}}).budget  # a partial budget
    assert isinstance(proxy, ProxyRecipe)
    assert (proxy.steps, proxy.lr, proxy.temperature, proxy.batch_size) == (150, 0.01, 1.0, 32)
    assert (Recipe().steps, Recipe().lr, Recipe().temperature) == (300, 3e-3, 4.0)


def test_the_proxy_gives_slow_families_their_own_lr_only_where_the_space_mixes_families():
    from nas_student.distill.recipe import ProxyRecipe

    proxy = ProxyRecipe(depth_power=0)  # partial archs: no depth to scale by
    assert proxy.family_lr == {"rnn": 0.03, "transformer": 0.03}
    mixed = ["cnn1d", "mlp", "rnn", "transformer"]
    assert proxy.for_student({"family": "rnn"}, mixed).lr == 0.03 and proxy.for_student({"family": "transformer"}, mixed).lr == 0.03
    assert proxy.for_student({"family": "cnn1d"}, mixed) is proxy and proxy.for_student({"family": "mlp"}, mixed).lr == 0.01
    assert proxy.for_student({"family": "rnn"}, ["rnn"]).lr == 0.01  # one family: nothing to level
    assert proxy.for_student({"family": "rnn"}, ["rnn", "rnn"]).lr == 0.01
    off = ProxyRecipe(depth_power=0, family_lr={})
    assert off.for_student({"family": "rnn"}, mixed).lr == 0.01
    mine = ProxyRecipe(depth_power=0, lr=0.005, family_lr={"mlp": 0.02})
    assert mine.for_student({"family": "mlp"}, mixed).lr == 0.02 and mine.for_student({"family": "rnn"}, mixed).lr == 0.005
    with pytest.raises(ValueError, match="unknown family 'grus'"):
        ProxyRecipe(family_lr={"grus": 0.03})
    with pytest.raises(ValueError, match="greater than 0"):
        ProxyRecipe(family_lr={"rnn": 0})


def test_a_step_factor_per_family_lengthens_only_those_families_runs_and_only_in_mixed_spaces():
    from nas_student.distill.recipe import ProxyRecipe

    assert ProxyRecipe().family_step_factor == {}  # off by default
    proxy = ProxyRecipe(depth_power=0, warmup_steps=20, family_step_factor={"rnn": 2, "transformer": 1.5})
    mixed = ["cnn1d", "rnn", "transformer"]
    rnn, tf = proxy.for_student({"family": "rnn"}, mixed), proxy.for_student({"family": "transformer"}, mixed)
    assert (rnn.steps, rnn.lr, rnn.warmup_steps) == (300, 0.03, 20) and (tf.steps, tf.lr) == (225, 0.03)
    assert proxy.for_student({"family": "cnn1d"}, mixed) is proxy and proxy.for_student({"family": "rnn"}, ["rnn"]).steps == 150
    short = ProxyRecipe(steps=10, depth_power=0, warmup_steps=5, family_step_factor={"mlp": 0.3}, family_lr={})
    assert (short.for_student({"family": "mlp"}, ["mlp", "rnn"]).steps, short.for_student({"family": "mlp"}, ["mlp", "rnn"]).warmup_steps) == (3, 2)
    with pytest.raises(ValueError, match="unknown family 'gru'"):
        ProxyRecipe(family_step_factor={"gru": 2})
    with pytest.raises(ValueError, match="greater than or equal to 0.1"):
        ProxyRecipe(family_step_factor={"rnn": 0})


def test_full_training_default_recipe_from_the_proxy():
    from nas_student.config import RunConfig
    from nas_student.full_training import FULL_FACTOR, default_recipe

    full = default_recipe(RunConfig(task="digits").budget)
    assert (full.steps, full.lr, full.temperature) == (150 * FULL_FACTOR, 3e-3, 4.0)
    assert type(full) is Recipe and "family_lr" not in full.model_dump()
    assert "family_step_factor" not in default_recipe(RunConfig.model_validate(
        {"budget": {"family_step_factor": {"rnn": 2}}}).budget).model_dump()
    # what the run file sets is kept; what it left at the proxy's defaults is full training's
    mine = default_recipe(RunConfig.model_validate(
        {"budget": {"steps": 100, "lr": 0.02, "batch_size": 32, "beta": 0.5}}).budget)
    assert (mine.steps, mine.lr, mine.temperature, mine.batch_size, mine.beta) == (100 * FULL_FACTOR, 0.02, 4.0, 32, 0.5)
    curriculum = default_recipe(RunConfig.model_validate(
        {"budget": {"temperature": {"kind": "cosine", "start": 8, "end": 2}}}).budget)
    assert isinstance(curriculum.temperature, Schedule) and curriculum.final_temperature == pytest.approx(2.0)
    # language models (per-token outputs) keep T = 1 in full training; lr still takes full training's
    lm = default_recipe(RunConfig(task="text").budget, per_token=True)
    assert (lm.steps, lm.lr, lm.temperature) == (150 * FULL_FACTOR, 3e-3, 1.0)


def test_train_picks_the_language_model_default_from_the_task(tmp_path):
    import json

    from nas_student.config import RunConfig
    from nas_student.full_training import job_from_arch

    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({"family": "rnn", "cell": "gru", "layers": 1, "hidden": 8, "embed_dim": 8}))
    assert job_from_arch(arch, RunConfig(task="text"), None, None).recipe.temperature == 1.0
    arch.write_text(json.dumps({"family": "mlp", "hidden": [8]}))
    assert job_from_arch(arch, RunConfig(task="digits"), None, None).recipe.temperature == 4.0


def test_reports_give_a_spread_only_over_several_seeds():
    from nas_student.full_training import format_mean_sd

    assert format_mean_sd({"mean": 0.46114, "sd": 0.0, "n": 1}) == "0.4611"
    assert format_mean_sd({"mean": 0.46114, "sd": 0.0, "n": 1}, with_n=True) == "0.4611 (n=1)"
    assert format_mean_sd({"mean": 0.9, "sd": 0.01234, "n": 3}, with_n=True) == "0.9000 ± 0.0123 (n=3)"


def test_a_budget_is_steps_or_epochs_not_both(tmp_path):
    from nas_student.distill.recipe import ProxyRecipe, Recipe, load_recipe
    from nas_student.errors import ConfigError
    from nas_student.full_training import FULL_FACTOR, default_recipe

    f = tmp_path / "r.yaml"
    f.write_text("steps: 50\nepochs: 2\n")
    with pytest.raises(ConfigError, match="r.yaml.*steps or epochs, not both"):
        load_recipe(f)
    f.write_text("epochs: 2\n")
    assert load_recipe(f).total_steps(1078) == 34 and load_recipe(f).describe().startswith("2 epochs,")
    r = load_recipe(f, {"steps": 10})  # --steps replaces the file's epochs
    assert r.epochs is None and r.total_steps(1078) == 10
    assert default_recipe(ProxyRecipe(epochs=2)).epochs == 2 * FULL_FACTOR
    assert Recipe(steps=40).describe().startswith("40 steps,")


def test_steps_on_the_command_line_replace_a_run_files_epochs(tmp_path):
    from nas_student.runfile import build_config

    f = tmp_path / "run.yaml"
    f.write_text("budget: {epochs: 2}\n")
    assert build_config(f, {}).budget.epochs == 2
    cfg = build_config(f, {("budget", "steps"): 80})
    assert cfg.budget.epochs is None and cfg.budget.steps == 80


def test_with_a_depth_power_deeper_students_train_longer():
    from nas_student.distill.recipe import ProxyRecipe
    from nas_student.families import get_family
    from nas_student.families.base import Family

    cnn = {"family": "cnn1d", "stem_width": 8, "stem_kernel": 3, "norm": "batch", "activation": "relu",
           "residual": True, "stages": [{"block": "conv", "expansion": 1, "depth": 2, "width": 8, "kernel": 3,
                                         "downsample": "none"},
                                        {"block": "inverted", "expansion": 2, "depth": 1, "width": 8, "kernel": 3,
                                         "downsample": "stride"}]}
    one = {**cnn, "stages": cnn["stages"][1:]}
    mlp = {"family": "mlp", "layers": [{"width": 8}, {"width": 8}]}
    rnn = {"family": "rnn", "cell": "gru", "layers": 2, "hidden": 8}
    assert [get_family(a["family"]).depth(a) for a in (cnn, one, mlp, rnn)] == [3, 1, 2, 2]
    assert get_family("mlp").depth({"family": "mlp", "layers": []}) == 1  # a linear model is one layer
    assert Family().depth({}) is None  # a family that does not say: its students train `steps`
    assert (ProxyRecipe().depth_power, ProxyRecipe().reference_depth) == (0, 2)  # by default every student `steps`
    plain = ProxyRecipe()
    assert plain.for_student(cnn, ["cnn1d"]) is plain and plain.for_student(one, ["cnn1d"]) is plain
    # the square root: `steps` at depth 2, times sqrt(depth / 2)
    proxy = ProxyRecipe(depth_power=0.5)
    assert [proxy.for_student(a, ["cnn1d"]).steps for a in (one, cnn)] == [106, 184]  # 150 / sqrt 2, 150 sqrt 1.5
    assert proxy.for_student(mlp, ["mlp"]) is proxy  # depth 2: the recipe as it is
    assert proxy.for_student(None, ["cnn1d"]) is proxy
    # proportional, with warm-up kept below the steps
    lin = ProxyRecipe(depth_power=1, warmup_steps=100)
    mine = lin.for_student(cnn, ["cnn1d"])
    assert (mine.steps, mine.warmup_steps, mine.lr) == (225, 100, 0.01)
    assert (lin.for_student(one, ["cnn1d"]).steps, lin.for_student(one, ["cnn1d"]).warmup_steps) == (75, 74)
    assert ProxyRecipe(depth_power=0).for_student(cnn, ["cnn1d"]).steps == 150  # off
    assert ProxyRecipe(reference_depth=3).for_student(cnn, ["cnn1d"]).steps == 150
    # in a mixed space too; with a family's step factor the two multiply
    assert proxy.for_student(one, ["cnn1d", "rnn"]).steps == 106
    mixed = ProxyRecipe(depth_power=1, family_step_factor={"rnn": 2})
    assert (mixed.for_student(rnn, ["mlp", "rnn"]).steps, mixed.for_student(one, ["mlp", "rnn"]).steps) == (300, 75)
    # the trust report's longer runs: the same proportion, twice the steps
    assert proxy.scaled(300).for_student(cnn, ["cnn1d"]).steps == 367


def test_a_budget_stored_with_steps_per_layer_reads_as_the_same_steps():
    from nas_student.distill.recipe import ProxyRecipe

    old = ProxyRecipe.model_validate({"steps": 150, "steps_per_layer": 106, "depth_power": 0.5})
    assert (old.steps, old.depth_power) == (150, 0.5)  # 106 x sqrt(depth) = 150 x sqrt(depth / 2)
    assert ProxyRecipe.model_validate({"steps_per_layer": 60}).steps == 120  # 60 x depth: depth_power 1
    fixed = ProxyRecipe.model_validate({"steps": 90, "steps_per_layer": None, "depth_power": 1.0})
    assert (fixed.steps, fixed.depth_power) == (90, 0.0)  # every student trained `steps`


def test_steps_by_depth_is_a_ranking_aid_full_training_does_not_take():
    from nas_student.config import RunConfig
    from nas_student.full_training import FULL_FACTOR, default_recipe

    full = default_recipe(RunConfig.model_validate({"budget": {"depth_power": 1}}).budget)
    assert {"depth_power", "reference_depth"}.isdisjoint(full.model_dump()) and full.steps == 150 * FULL_FACTOR
