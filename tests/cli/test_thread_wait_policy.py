"""The CLI asks OpenMP to wait passively, before anything loads torch, unless the user said otherwise."""

import os
import subprocess
import sys

SCRIPT = "import os, sys, iggt.cli.main; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"


def run(environment: dict[str, str]) -> str:
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"} | environment
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True).stdout


def test_passive_waiting_is_set_before_torch_loads():
    assert run({}).split() == ["PASSIVE", "False"]


def test_a_wait_policy_the_user_set_is_kept():
    assert run({"OMP_WAIT_POLICY": "ACTIVE"}).split() == ["ACTIVE", "False"]
