"""`./ops/dev test` hands over to pytest: paths from the caller's directory, pytest's exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ops.paths import ROOT


def run_test_command(run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops", "test", *args], cwd=ROOT / "ops",
                          env={**os.environ, "OPS_RUN_DIR": str(run_dir)},
                          capture_output=True, text=True, timeout=120, check=False)


def test_it_runs_the_tests_named_relative_to_the_callers_directory(tmp_path: Path) -> None:
    result = run_test_command(tmp_path, "tests/test_envfile.py", "-q", "-p", "no:cacheprovider")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    assert "ops: RabbitMQ ok" in result.stdout


def test_it_exits_with_pytests_code_when_nothing_is_collected(tmp_path: Path) -> None:
    result = run_test_command(tmp_path, "tests/test_envfile.py", "-q", "-p", "no:cacheprovider",
                              "-k", "no_test_has_this_name")
    assert result.returncode == 5, result.stdout + result.stderr
