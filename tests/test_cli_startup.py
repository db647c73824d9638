"""The CLI answers --help, init and a bad run file without importing torch (what made every
command take seconds before it looked at its arguments). Checked in a fresh process."""

import json
import subprocess
import sys

SCRIPT = """
import json, sys
from typer.testing import CliRunner
from nas_student.cli import app
r = CliRunner().invoke(app, sys.argv[1:])
print(json.dumps({"code": r.exit_code, "torch": "torch" in sys.modules, "out": r.output}))
"""


def run(tmp_path, *args):
    p = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_help_init_and_a_bad_run_file_need_no_torch(tmp_path):
    r = run(tmp_path, "--help")
    assert r["code"] == 0 and "search" in r["out"] and not r["torch"]
    r = run(tmp_path, "search", "--help")
    assert r["code"] == 0 and "--recommend" in r["out"] and not r["torch"]
    r = run(tmp_path, "init", str(tmp_path / "run.yaml"))
    assert r["code"] == 0 and (tmp_path / "run.yaml").exists() and not r["torch"]
    (tmp_path / "bad.yaml").write_text("budget: {stpes: 10}\n")
    r = run(tmp_path, "search", "--config", str(tmp_path / "bad.yaml"))
    assert r["code"] == 2 and "budget.stpes: unknown key" in r["out"] and not r["torch"]
    r = run(tmp_path, "search", "--space", str(tmp_path / "missing.yaml"))
    assert r["code"] == 2 and "missing.yaml: space file not found" in r["out"] and not r["torch"]
    r = run(tmp_path, "search", "--space", "no-such-space")
    assert r["code"] == 2 and "unknown space 'no-such-space'" in r["out"] and not r["torch"]
