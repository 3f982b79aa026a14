"""benchmarks/gpu_check.py's dry run on a CPU: every part runs and leaves its output.

The numbers of a dry run mean nothing; these tests check that the script the GPU machine will run
works end to end, so that it cannot rot while no GPU is at hand.
"""

import ast
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
OUTPUTS = {"env.json", "pytest.xml", "train_step.json", "pretrain.json", "generate.json",
           "status.json", "summary.md", "check.log"}  # fmt: skip


def dry_run(
    out: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--out", str(out), *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)


def gpu_test_names() -> list[str]:
    """The test functions of tests/test_gpu.py, read from its source."""
    tree = ast.parse((ROOT / "tests" / "test_gpu.py").read_text())
    return [
        n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
    ]


@pytest.mark.slow
def test_the_dry_run_runs_every_part_and_writes_its_output(tmp_path) -> None:
    out = tmp_path / "out"
    proc = dry_run(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p.name for p in out.iterdir()} == OUTPUTS
    status = json.loads((out / "status.json").read_text())
    assert list(status["parts"]) == ["env", "pytest", "train_step", "pretrain", "generate"]
    assert all(p["status"] == "ok" for p in status["parts"].values())

    env = json.loads((out / "env.json").read_text())
    assert env["torch"] == torch.__version__
    assert env["cuda_available"] == torch.cuda.is_available()

    cases = list(ET.parse(out / "pytest.xml").getroot().iter("testcase"))
    assert sorted(c.get("name") for c in cases) == sorted(gpu_test_names())
    if not torch.cuda.is_available():
        assert all(c.find("skipped") is not None for c in cases)

    rows = json.loads((out / "train_step.json").read_text())["rows"]
    assert [(r["shape"], r["mode"]) for r in rows] == [
        ("tinystories", "eager"), ("gpt2-small", "eager"),
        ("tinystories", "compile"), ("gpt2-small", "compile"),
    ]  # fmt: skip
    assert all(r["ours_tok_per_s"] > 0 and r["hf_tok_per_s"] > 0 for r in rows[:2])
    assert all("skipped" in r for r in rows[2:])

    pretrain = json.loads((out / "pretrain.json").read_text())
    assert pretrain["loss_finite"] and pretrain["loss_falling"]
    assert pretrain["resume"]["bitwise_equal"] and pretrain["resume"]["exact"]  # a CPU is exact

    generate = json.loads((out / "generate.json").read_text())
    assert [r["batch"] for r in generate["rows"]] == [1, 8]
    for row in generate["rows"]:
        assert set(row["tok_per_s"]) == {"ours (cache)", "transformers", "no cache",
                                         "no cache, last head"}  # fmt: skip
        assert row["identical_to_no_cache"] == row["batch"]  # fp32: the very same ids

    summary = (out / "summary.md").read_text()
    for title in (
        "## pytest -m gpu",
        "## Train step",
        "## Pretraining",
        "## Generate",
        "## Targets",
    ):
        assert title in summary


@pytest.mark.slow
def test_without_transformers_the_comparisons_say_skipped(tmp_path) -> None:
    shadow = tmp_path / "shadow" / "transformers"  # found first on the path, fails on import
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('transformers hidden by the test')\n")
    path = os.pathsep.join(filter(None, [str(shadow.parent), os.environ.get("PYTHONPATH")]))
    out = tmp_path / "out"
    proc = dry_run(out, "--parts", "train_step", "generate", env={**os.environ, "PYTHONPATH": path})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads((out / "train_step.json").read_text())["rows"]
    assert all(r["hf"] == "skipped: transformers not installed" for r in rows)
    assert rows[0]["ours_tok_per_s"] > 0 and "hf_tok_per_s" not in rows[0]
    generate = json.loads((out / "generate.json").read_text())
    assert generate["transformers"] == "skipped: transformers not installed"
    assert all("transformers" not in r["tok_per_s"] for r in generate["rows"])
    assert "skipped: transformers not installed" in (out / "summary.md").read_text()


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without CUDA"
)
def test_no_gpu_is_a_one_line_error_and_writes_nothing(tmp_path) -> None:
    command = [sys.executable, str(SCRIPT), "--out", str(tmp_path / "out")]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert "--device cpu --tiny" in proc.stderr
    assert not (tmp_path / "out").exists()
