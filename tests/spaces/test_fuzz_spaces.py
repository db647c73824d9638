"""Fuzz the space loader with 1000 generated files (see space_fuzz.py).

Every file either loads or fails with one ConfigError line that starts with the file's path
and names a line or a key; nothing else may escape. Valid files must load and invalid ones must
be refused. Architectures sampled from the valid spaces build models that run, or fail with
one NasStudentError line. About 10 s on 2 cores (torch limited to one thread while it runs:
on a busy machine, several threads make these tiny convolutions 100x slower).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from space_fuzz import GOOD, generate, message_kind
from typer.testing import CliRunner

from nas_student.cli import app
from nas_student.errors import ConfigError, NasStudentError
from nas_student.families import ModelIO, build
from nas_student.spaces import RandomSuggester, arch_hash, load_space

N_FILES = 1000
SEED = 0
SAMPLES_PER_SPACE = 5
IO = ModelIO((1, 8, 8), 10)


@pytest.fixture(scope="module")
def fuzz_files(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, object]]:
    folder = tmp_path_factory.mktemp("fuzz")
    out = []
    for case in generate(N_FILES, seed=SEED):
        path = folder / case.name
        path.write_bytes(case.data)
        out.append((path, case))
    return out


@pytest.fixture()
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def message_problem(msg: str, path: Path) -> str | None:
    """None if ``msg`` has the promised form: one line, ``PATH:LINE: ...`` or ``PATH: KEY: ...``."""
    if "\n" in msg or "\r" in msg:
        return "more than one line"
    p = re.escape(str(path))
    if not (re.match(rf"{p}:\d+: \S", msg) or re.match(rf"{p}: [^\s:]+: \S", msg)):
        return "does not start with 'PATH:LINE: ' or 'PATH: KEY: '"
    return None


def test_generator_is_deterministic_and_covers_both_families_and_every_mutation():
    a, b = generate(60, seed=SEED), generate(60, seed=SEED)
    assert [c.data for c in a] == [c.data for c in b]
    cases = generate(N_FILES, seed=SEED)
    assert {c.family for c in cases if c.valid} == {"mlp", "cnn"}
    from space_fuzz import MUTATIONS

    assert {c.kind for c in cases if not c.valid} == set(MUTATIONS)


def test_fuzzed_space_files_load_or_fail_with_one_clear_line(fuzz_files, one_thread):
    problems: list[str] = []
    loaded = refused = built = refused_builds = 0
    kinds: set[str] = set()
    for path, case in fuzz_files:
        try:
            space = load_space(str(path))
        except ConfigError as e:
            msg = str(e)
            refused += 1
            kinds.add(message_kind(msg, str(path)))
            why = message_problem(msg, path)
            if why:
                problems.append(f"{path.name}: message {why}: {msg[:200]!r}")
            if case.valid:
                problems.append(f"{path.name}: a valid space was refused: {msg[:200]}")
            continue
        except Exception as e:  # noqa: BLE001 - this is what the test is about
            problems.append(f"{path.name}: {type(e).__name__} escaped: {str(e)[:200]}")
            continue
        loaded += 1
        if not case.valid:
            problems.append(f"{path.name}: an invalid space ({case.kind}) was accepted")
            continue
        rng = RandomSuggester(case.index)
        for _ in range(SAMPLES_PER_SPACE):
            arch = space.sample(rng)
            if space.violations(arch):
                continue
            arch_hash(arch)  # plain JSON data
            try:
                model = build(arch, IO)
                with torch.no_grad():
                    y = model(torch.randn(2, 1, 8, 8))
            except NasStudentError as e:
                refused_builds += 1
                if "\n" in str(e):
                    problems.append(f"{path.name}: build error of more than one line: {str(e)[:200]!r}")
                continue
            except Exception as e:  # noqa: BLE001
                problems.append(f"{path.name}: build raised {type(e).__name__}: {str(e)[:200]} for {arch}")
                continue
            if tuple(y.shape) != (2, 10):
                problems.append(f"{path.name}: output shape {tuple(y.shape)} for {arch}")
            built += 1
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:30])
    n_valid = sum(c.valid for _, c in fuzz_files)
    assert loaded == n_valid and refused == N_FILES - n_valid
    assert built >= 3 * n_valid  # most samples obey the rules and build
    assert len(kinds) >= 40  # many distinct refusals, not one catch-all


CLI_KINDS = ["alias", "bad_count", "bad_family", "bad_rule", "bad_type_name", "broken_yaml",
             "complex_key", "deep_nesting", "duplicate_key", "empty", "empty_space", "family_invalid",
             "huge", "low_gt_high", "non_mapping", "python_tag", "too_large", "unicode", "unknown_key",
             "unknown_name"]


def _cli_files(fuzz_files):
    """One invalid file of each of 20 kinds (the i-th file of the i-th kind, for variety)."""
    out = []
    for i, kind in enumerate(CLI_KINDS):
        of_kind = [(p, c) for p, c in fuzz_files if not c.valid and c.kind == kind]
        out.append(of_kind[i % len(of_kind)])
    return out


def test_cli_refuses_invalid_files_in_one_line_and_creates_nothing(fuzz_files, tmp_path):
    runner = CliRunner()
    chosen = _cli_files(fuzz_files)
    assert len(chosen) == 20
    for path, case in chosen:
        results = tmp_path / f"res-{case.index}"
        results.mkdir()
        result = runner.invoke(app, ["search", "--task", "digits", "--space", str(path), "--results-dir", str(results)])
        lines = [x for x in result.output.splitlines() if x.strip()]
        assert result.exit_code == 2, (path.name, result.exit_code, result.output[-500:])
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}:"), (path.name, result.output)
        assert "Traceback" not in result.output
        assert not any(results.iterdir()), path.name


# -- regressions: each of these escaped the loader (or read badly) before ----------------------


# (name, file text, expected line, substrings the message must contain); the exception that
# escaped before the fix is in the comment.
REGRESSIONS = [
    # TypeError: unhashable type: 'list'
    ("type is a list", GOOD.replace("type: choice", "type: [choice]"), 4,
     ["params.activation.type", "must be one of"]),
    # TypeError: unhashable type: 'list' (in the duplicate-key check)
    ("key is a list", GOOD + "? [a, b]\n: 3\n", 10, ["key must be a plain scalar"]),
    ("key is a flow list", GOOD.replace("params:\n", "params:\n  [w, x]: 1\n", 1), 4,
     ["key must be a plain scalar"]),
    # RecursionError in PyYAML's composer
    ("deep nesting", GOOD + "x: " + "[" * 3000 + "]" * 3000 + "\n", 10, ["nested deeper than 64 levels"]),
    # message of two lines (PyYAML's ReaderError text)
    ("control character", GOOD + "x: \x01\n", 10, ["invalid character #x0001"]),
    # message of two lines (a key with a newline)
    ("newline in key", GOOD.replace("activation:", '"act\\nivation":'), 4,
     ["params.'act\\nivation'", "unknown parameter"]),
    # KeyError: 'abs'
    ("bare function name", GOOD + "rules: ['abs > 1']\n", 10, ["rules[0]", "'abs' is a function"]),
    # OverflowError: Python int too large to convert to C ssize_t
    ("huge int", GOOD.replace("high: 32", "high: 100000000000000000000000"), 9,
     ["params.layers.params.width.high", "less than or equal to 9007199254740992"]),
    # MemoryError (the whole range was listed to count the space)
    ("wide int range", GOOD.replace("high: 32, step: 8", "high: 1000000000000"), 9,
     ["params.layers.params.width", "family 'mlp'", "65536"]),
    # OverflowError: high - low range exceeds valid bounds (numpy)
    ("float range overflows", GOOD.replace("width: {type: int, low: 8, high: 32, step: 8}",
                                           "width: 8\n      dropout: {type: float, low: -1.0e308, high: 1.0e308}"),
     10, ["params.layers.params.dropout", "`high - low` must be a finite number"]),
    # OverflowError: cannot convert float infinity to integer
    ("float step too fine", GOOD.replace("width: {type: int, low: 8, high: 32, step: 8}",
                                         "width: 8\n      dropout: {type: float, low: 0.0, high: 1.0e300, step: 1.0e-300}"),
     10, ["params.layers.params.dropout", "more than 2**53 values"]),
    # accepted: a negative sampled count read as 0 layers
    ("negative sampled count", GOOD.replace("low: 1, high: 2}", "low: -3, high: 2}"), 6,
     ["params.layers", "count", "0..256"]),
    # hung: 100 million layers were sampled
    ("huge fixed count", GOOD.replace("count: {type: int, low: 1, high: 2}", "count: 100000000"), 7,
     ["params.layers.count:", "less than or equal to 256"]),
    # hung: 'a' * 10**12 was evaluated
    ("rule bomb", GOOD + "rules: ['\"a\" * 10**12 == \"b\"']\n", 10, ["rules", "no architecture"]),
    ("power bomb", GOOD + "rules: ['(((10**64)**64)**64)**64 > 0']\n", 10, ["rules", "no architecture"]),
    # RecursionError during ast construction
    ("long rule", GOOD + "rules: ['" + "+".join(["1"] * 100000) + " > 0']\n", 10,
     ["rules[0]", "at most 1000 characters"]),
    # accepted (evaluating it recursed 200 levels deep; 500 levels raised RecursionError)
    ("deep rule", GOOD + "rules: ['" + "not " * 200 + "True']\n", 10, ["rules[0]", "nested deeper"]),
    # 'YAML syntax error: could not determine a constructor' for a python tag on a scalar
    ("python tag on a scalar", GOOD.replace("relu, gelu", "relu, !!python/name:os.system gelu"), 4,
     ["python/name:os.system", "not allowed"]),
    # accepted by the schema (only the family's limit of 64 layers caught it); with a bound on a
    # plain Union the key read 'params.layers.count.constrained-int' (a pydantic union tag)
    ("union tag in key", GOOD.replace("count: {type: int, low: 1, high: 2}", "count: 1000"), 7,
     ["params.layers.count: input should be less than or equal to 256"]),
    # accepted: rules no architecture obeys, hidden by a continuous parameter (size = inf)
    ("empty continuous space", GOOD.replace("step: 8}", "step: 8}\n      dropout: {type: float, low: 0.0, high: 0.5}")
     + "rules: ['layers > 5']\n", 11, ["rules", "none of 64 sampled architectures"]),
    # guards the key filter above: a key merged in with '<<' is still named
    ("merged unknown key", GOOD + "<<: {zz: 1}\n", 1, ["zz: unknown key"]),
    # 'value error, ' (pydantic's prefix) in the message
    ("value error prefix", GOOD.replace("low: 8, high: 32", "low: 32, high: 8"), 9,
     ["params.layers.params.width: `low <= high`"]),
]


@pytest.mark.parametrize("name,text,line,needles", REGRESSIONS, ids=[r[0] for r in REGRESSIONS])
def test_regressions_found_by_fuzzing(tmp_path, name, text, line, needles):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_space(str(path))
    msg = str(info.value)
    assert msg.startswith(f"{path}:{line}: "), msg[:300]
    assert message_problem(msg, path) is None, msg[:300]
    for needle in needles:
        assert needle in msg, (needle, msg[:300])
    assert len(msg) < 600


def test_file_level_errors_name_a_line(tmp_path):
    """Before: 'FILE: not UTF-8 text (byte N)' and 'FILE: file larger than ...', no line."""
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(GOOD.encode() + b"description: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1.yaml:10: not UTF-8 text"):
        load_space(str(bad))
    big = tmp_path / "big.yaml"
    big.write_text(GOOD + "# " + "x" * 1_000_100 + "\n")
    with pytest.raises(ConfigError, match=r"big.yaml:10: file larger than 1000000 bytes"):
        load_space(str(big))


def test_counting_a_huge_space_is_bounded(tmp_path):
    """Counting gives up (size None) after a bounded amount of work instead of evaluating the
    layer rules for every depth, width and activation (12 million evaluations here)."""
    import time

    path = tmp_path / "big.yaml"
    path.write_text("""name: big
family: mlp
params:
  activation: {type: choice, values: [relu, relu6, gelu, silu, hardswish, tanh]}
  norm: {type: choice, values: [none, batch, layer]}
  layers:
    type: repeat
    count: {type: int, low: 0, high: 64}
    params:
      width: {type: int, low: 1, high: 1000}
    rules: ["width > index or activation == 'relu'"]
""")
    t = time.perf_counter()
    space = load_space(str(path))
    assert space.size is None
    assert time.perf_counter() - t < 20


def test_cli_prints_messages_verbatim(tmp_path):
    runner = CliRunner()
    for text, needle in [('name: "[/x]"\nfamily: mlp\nparams: {activation: relu}\n', "(got '[/x]')"),
                         (GOOD.replace("low: 1, high: 2}", "low: 1, high: 2, stepp: 1, Low: 2}"),
                          "[and 1 more error]")]:
        path = tmp_path / "bad.yaml"
        path.write_text(text)
        result = runner.invoke(app, ["search", "--task", "digits", "--space", str(path), "--results-dir", str(tmp_path / "r")])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert needle in result.output, result.output
