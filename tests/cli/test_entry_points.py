"""The CLI is the top layer: nothing below imports it, and torchrun's `python -m` form lives in it."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import iggt

PACKAGE = Path(iggt.__file__).parent
REPOSITORY = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_below_the_cli_imports_it():
    upward = {
        str(path.relative_to(PACKAGE)): sorted(n for n in imported_modules(path) if n.startswith("iggt.cli"))
        for path in PACKAGE.rglob("*.py")
        if "cli" not in path.relative_to(PACKAGE).parts
    }
    assert {module: names for module, names in upward.items() if names} == {}


def run_module(*argv: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(PACKAGE.parent), "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPOSITORY, env=environment)


def test_python_m_iggt_cli_train_is_iggt_train():
    """The form torchrun launches (`torchrun ... -m iggt.cli.train`), in a fresh process."""
    printed = run_module("iggt.cli.train", "--config", "tiny_cpu", "--print-config", "train.steps=7")
    assert printed.returncode == 0, printed.stderr
    assert "preset: tiny" in printed.stdout and "steps: 7" in printed.stdout
    refused = run_module("iggt.cli.train", "--config", "no_such_config")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "iggt train: error: config 'no_such_config' not found (also looked for configs/no_such_config.yaml); "
        "pass a YAML file path"
    ]
