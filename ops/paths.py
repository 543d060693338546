"""Where ops keeps its files: the repository root, the run directory (`.run/`) and the dev keys."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_dir() -> Path:
    """`.run/` in the checkout, or `OPS_RUN_DIR` (tests use a private one)."""
    path = Path(os.environ.get("OPS_RUN_DIR") or ROOT / ".run")
    path.mkdir(parents=True, exist_ok=True)
    return path


def up_pidfile() -> Path:
    return run_dir() / "up.pid"


def infra_record() -> Path:
    """The servers ops itself started, so that `down` stops those and only those."""
    return run_dir() / "infra.json"


def from_root(path: str) -> Path:
    """A path from the environment, relative paths taken from the checkout (as the services do)."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else ROOT / candidate
