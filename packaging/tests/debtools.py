"""Helpers of the packaging checks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, returning its result; fail with its output when `check` and it fails."""
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=600, **kwargs)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result
