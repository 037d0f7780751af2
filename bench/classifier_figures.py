"""Runs `python -m bench.classifier` (written by the classifier's owner) when it exists.

Its figures are included as it reports them: a JSON object on stdout (the whole output
or its last JSON line) is kept as data, anything else as text. Absent module: skipped.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from typing import Any

from bench.process import REPO


def _last_json(output: str) -> Any:
    try:
        return json.loads(output)
    except ValueError:
        pass
    for line in reversed(output.strip().splitlines()):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict):
            return found
    return None


def classifier_figures(timeout: float = 900.0) -> dict[str, Any]:
    """{"status": "skipped" | "ok" | "failed" | "timeout", ...} for the report."""
    if importlib.util.find_spec("bench.classifier") is None:
        return {"status": "skipped", "why": "bench/classifier.py does not exist (yet)"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.classifier"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "why": f"no result after {timeout:.0f} s"}
    return {
        "status": "ok" if done.returncode == 0 else "failed",
        "exit_status": done.returncode,
        "figures": _last_json(done.stdout),
        "output": done.stdout.strip().splitlines()[-60:],
        "errors": done.stderr.strip().splitlines()[-20:],
    }
