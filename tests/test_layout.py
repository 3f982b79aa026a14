"""Imports point downstream: a module imports only lower-ranked subpackages or its own."""

import ast
from pathlib import Path

import scratchlm

RANK = {
    "config": 0,
    "folders": 0,
    "runtime": 1,
    "tokenizer": 2,
    "data": 3,
    "model": 3,
    "optimizers": 3,
    "schedulers": 3,
    "eval": 4,
    "train": 5,
    "posttrain": 6,
    "inference": 7,
    "serve": 8,
    "export": 8,
    "harness": 8,  # lm-eval on checkpoints: loads them (train) and decodes text (inference)
    "pipeline": 9,
    "cli": 10,
}


def test_imports_point_downstream() -> None:
    root = Path(scratchlm.__file__).parent
    for path in root.rglob("*.py"):
        me = path.relative_to(root).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                if not name.startswith("scratchlm."):
                    continue
                dep = name.split(".")[1]
                assert me not in RANK or dep == me or RANK[dep] < RANK[me], f"{path}: {me} -> {dep}"


def test_cli_help_runs() -> None:
    from scratchlm.cli import build_parser

    assert build_parser().format_help().startswith("usage: scratchlm")
