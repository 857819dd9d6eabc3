"""Run a script in Triton's CPU interpreter (TRITON_INTERPRET=1, its own process) and read its JSON report.

The fused-kernel tests check their kernels' arithmetic this way on machines without a GPU; the
interpreter is chosen when Triton is first imported, hence a fresh process.
"""

import json
import os
import subprocess
import sys


def run_interpreted(script: str) -> list[dict]:
    """``script``'s last line of output, parsed as JSON; fails with its stderr when it fails."""
    environment = {**os.environ, "TRITON_INTERPRET": "1"}
    result = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
