import json
import subprocess
import sys

import pytest
import torch

import nas_student
from nas_student.errors import NasStudentError
from nas_student.results import pareto_front
from nas_student.results.export import export_trial, fixed_input
from nas_student.results.runs import layer_table, open_run, run_io, trial_model
from nas_student.tasks import task_io


def _trained(view):
    t = view.trials
    return int(t[t["feasible"] & t["duplicate_of"].isna()]["trial"].iloc[0])


def test_task_io_matches_the_loaded_task(digits_task, small_run):
    assert task_io("digits") == digits_task.io
    assert run_io(open_run(small_run)) == digits_task.io  # stored in the study
    with pytest.raises(NasStudentError, match="unknown"):
        task_io("imagenet")


def test_an_export_that_fails_its_check_leaves_no_half_bundle(small_run, tmp_path, monkeypatch):
    from nas_student.results import export

    view = open_run(small_run)
    monkeypatch.setattr(export, "ONNX_TOLERANCE", -1.0)  # the ONNX check fails after 4 files are written
    with pytest.raises(NasStudentError, match="ONNX export .* differs"):
        export_trial(view, _trained(view), tmp_path / "bundle")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NasStudentError, match="is a file"):
        export_trial(view, _trained(view), tmp_path / "afile")


def test_export_rebuilds_bit_for_bit_in_a_fresh_process(small_run, tmp_path):
    view = open_run(small_run)
    n = int(pareto_front(view.trials, view.objectives)["trial"].iloc[0])
    out = tmp_path / "bundle"
    b = export_trial(view, n, out)
    names = {p.name for p in out.iterdir()}
    assert names == {"arch.json", "weights.pt", "model.ts", "model.onnx", "recipe.json", "MODEL_CARD.md"}
    assert b.onnx_max_abs_diff <= 1e-5

    spec = json.loads((out / "arch.json").read_text())
    assert spec["io"] == {"input_shape": [1, 8, 8], "num_outputs": 10, "input_dtype": "float32",
                          "vocab_size": None, "per_token": False, "causal": False}
    assert spec["arch"] == view.study.trials[n].user_attrs["arch"]
    state = torch.load(out / "weights.pt", weights_only=True)
    assert isinstance(state, dict) and state

    x = fixed_input(task_io("digits"))
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        expected = trial_model(view, view.study.trials[n])(x)
    code = (
        "import sys, torch, nas_student\n"
        "d = sys.argv[1]\n"
        "m = nas_student.load_student(d + '/bundle/arch.json', weights=d + '/bundle/weights.pt')\n"
        "x = torch.load(d + '/x.pt', weights_only=True)\n"
        "with torch.no_grad():\n"
        "    torch.save(m(x), d + '/y.pt')\n"
        "    torch.save(torch.jit.load(d + '/bundle/model.ts')(x), d + '/y_ts.pt')\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=120)
    assert torch.equal(torch.load(tmp_path / "y.pt", weights_only=True), expected)
    assert torch.equal(torch.load(tmp_path / "y_ts.pt", weights_only=True), expected)

    import onnxruntime as ort

    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(sess.run(None, {"input": x.numpy()})[0])
    assert (got - expected).abs().max().item() <= 1e-5

    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["budget"]["steps"] == 30 and recipe["budget"] == view.config["budget"]
    card = (out / "MODEL_CARD.md").read_text()
    assert f"trial {n}" in card and "Pareto front" in card and "torch:" in card


def test_build_from_dict_spec_fits_the_io():
    spec = {"arch": {"family": "mlp", "layers": [{"width": 16}]},
            "io": {"input_shape": [1, 8, 8], "num_outputs": 10}}
    model = nas_student.load_student(spec)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(NasStudentError):
        nas_student.load_student({"arch": {"family": "mlp"}})


def test_untrained_trial_cannot_be_exported(small_run, tmp_path):
    view = open_run(small_run)
    t = view.trials
    untrained = t[~t["feasible"]]
    assert not untrained.empty, "the seeded small run always has an untrained trial"
    with pytest.raises(NasStudentError, match="not trained"):
        export_trial(view, int(untrained["trial"].iloc[0]), tmp_path / "x")
    with pytest.raises(NasStudentError, match="no trial 999"):
        export_trial(view, 999, tmp_path / "x")


def test_layer_table_sums_to_profile(small_run):
    view = open_run(small_run)
    n = _trained(view)
    t = view.study.trials[n]
    model = trial_model(view, t, weights=False)
    layers, total = layer_table(model, task_io("digits"))
    rec = t.user_attrs["record"]
    assert total == rec["macs"] and int(layers["macs"].sum()) == total
    assert int(layers["params"].sum()) == rec["params"]
    assert "(elsewhere)" not in set(layers["module"])


@pytest.mark.parametrize("arch", [
    {"family": "transformer", "layers": 1, "d_model": 16, "heads": 2, "ffn_ratio": 2.0, "pos_encoding": "learned",
     "norm_placement": "pre", "activation": "gelu", "dropout": 0.0},
    {"family": "rnn", "cell": "gru", "layers": 1, "hidden": 24, "embed_dim": 16, "bidirectional": False,
     "dropout": 0.0},
], ids=["transformer", "gru"])
def test_layer_table_of_sequence_students_sums_to_their_costs(arch):
    from nas_student.cost import profile
    from nas_student.families import build
    from nas_student.tasks import text

    model = build(arch, text.IO)
    layers, total = layer_table(model, text.IO)
    assert total == profile(model, text.IO.example_input()).macs
    assert int(layers["macs"].sum()) == total and "(elsewhere)" not in set(layers["module"])
    assert int(layers["params"].sum()) == sum(p.numel() for p in model.parameters())  # positions included
    assert "?" not in set(layers["output"])  # RNNs return (output, state): the output's shape
