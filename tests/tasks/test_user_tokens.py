"""Token data: a Hugging Face teacher on sequence classification, and language modelling."""

import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from nas_student.cli import app

runner = CliRunner()
pytestmark = pytest.mark.slow


def tokens(n=200, length=12, vocab=20, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, vocab, size=(n, length))
    y = (x[:, 0] > vocab // 2).astype(np.int64)  # the class is in the first token
    return x.astype(np.int64), y


def test_hf_teacher_from_a_local_folder_on_token_classification(tmp_path):
    transformers = pytest.importorskip("transformers")  # the test extra installs it
    config = transformers.BertConfig(vocab_size=20, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=128, max_position_embeddings=32, num_labels=2)
    torch.manual_seed(0)
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path / "hf")
    x, y = tokens()
    np.savez(tmp_path / "train.npz", x=x, y=y)
    (tmp_path / "run.yaml").write_text(textwrap.dedent("""
        task: hf-seq
        teacher: {hf_dir: hf}
        data: {train: train.npz, vocab_size: 20}
        space: text-rnn
        run: hf
    """))
    result = runner.invoke(app, ["search", "--config", str(tmp_path / "run.yaml"), "--trials", "3",
                                 "--steps", "10", "--results-dir", str(tmp_path / "res")])
    assert result.exit_code == 0, result.output
    trials = pd.read_csv(tmp_path / "res" / "hf" / "trials.csv")
    assert (trials["state"] == "COMPLETE").sum() == 3


LM_PY = textwrap.dedent("""
    import torch
    from torch import nn

    class Bigram(nn.Module):
        def __init__(self, vocab=16, width=512, out=None):
            super().__init__()
            self.emb = nn.Embedding(vocab, width)
            self.out = nn.Linear(width, out or vocab)
        def forward(self, x):
            return self.out(torch.relu(self.emb(x)))

    def make(vocab=16, out=None):
        return Bigram(vocab, out=out)
""")


def test_language_modelling_on_token_sequences_with_a_factory_teacher(tmp_path):
    (tmp_path / "lm.py").write_text(LM_PY)
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.integers(1, 3, size=(150, 17)), axis=1) % 16  # next token = this + 1 or + 2
    np.savez(tmp_path / "seq.npz", x=x.astype(np.int64))
    (tmp_path / "run.yaml").write_text(textwrap.dedent("""
        task: counting
        trust_code: true
        teacher: {factory: lm.py:make}
        data: {train: seq.npz, kind: lm}
        space: text-rnn
        run: lm
    """))
    # no cost bounds: every text-rnn student is larger than a tenth of this bigram teacher, and a
    # space with no feasible student is refused before the search starts
    result = runner.invoke(app, ["search", "--config", str(tmp_path / "run.yaml"), "--trials", "3",
                                 "--steps", "10", "--results-dir", str(tmp_path / "res"),
                                 "--macs-ratio", "0", "--params-ratio", "0"])
    assert result.exit_code == 0, result.output
    import optuna
    study = optuna.load_study(study_name="lm", storage=f"sqlite:///{tmp_path}/res/lm/study.db")
    assert study.user_attrs["io"]["per_token"] and study.user_attrs["io"]["causal"]
    assert study.user_attrs["io"]["input_shape"] == [16]
    (tmp_path / "bad.yaml").write_text((tmp_path / "run.yaml").read_text().replace("lm.py:make}", "lm.py:make, kwargs: {out: 9}}"))
    result = runner.invoke(app, ["search", "--config", str(tmp_path / "bad.yaml"), "--results-dir", str(tmp_path / "r2")])
    assert result.exit_code == 2, result.output
    assert "the teacher has 9 outputs but the data's labels span 16 tokens" in result.output
