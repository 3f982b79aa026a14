"""The fault suite (benchmarks/faults.py) in its smallest form runs and prints its table."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "faults.py"
SCENARIOS = ["kill -9", "SIGTERM", "SIGINT", "corrupt weights", "corrupt state.json", "branch",
             "two processes"]  # fmt: skip


@pytest.mark.slow
def test_the_quick_fault_suite_prints_its_table(tmp_path: Path) -> None:
    out = tmp_path / "faults"
    args = [sys.executable, str(SCRIPT), "--quick", "--kills", "1", "--stages", "pretrain"]
    result = subprocess.run(
        [*args, "--out", str(out)], capture_output=True, text=True, timeout=1800
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1: some trial failed a check
    lines = result.stdout.splitlines()
    assert any(line.startswith("| scenario ") and "bitwise equal" in line for line in lines)
    rows = {
        cells[0]: [int(c) for c in cells[1:]]
        for cells in (
            [c.strip() for c in line.strip("|").split("|")]
            for line in lines
            if re.match(r"\| (pretrain |\*\*total)", line)
        )
    }
    assert set(rows) == {f"pretrain {name}" for name in SCENARIOS} | {"**total**"}
    assert all(row[0] == 1 for name, row in rows.items() if name != "**total**")
    tried, survived, equal, lost, faults = rows["**total**"]
    assert tried == len(SCENARIOS) and max(survived, equal, lost, faults) <= tried
    assert (out / "ref" / "pretrain" / "metrics.jsonl").is_file()  # --out keeps the runs
