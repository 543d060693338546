"""`.env.example` documents every setting a service reads, and nothing that no longer exists."""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
from pathlib import Path

from common.config import BaseConfig, describe

ROOT = Path(__file__).resolve().parent.parent
OPERATOR_ONLY = {"ADMIN_EMAIL", "ADMIN_PASSWORD"}


def service_configs() -> list[type[BaseConfig]]:
    found = []
    for name in ("gateway", "auth", "catalog", "booking", "payments", "notify", "realtime", "web"):
        if importlib.util.find_spec(name) is None or not (ROOT / name / "config.py").exists():
            continue
        found.append(importlib.import_module(f"{name}.config").Config)
    return found


def test_every_setting_is_documented_in_env_example():
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    read = {var for cls in service_configs() for var, _, _ in describe(cls)}
    assert service_configs(), "no service config found"
    assert read - documented == set(), "settings missing from .env.example"
    assert documented - read - OPERATOR_ONLY == set(), ".env.example lists unknown settings"


def test_our_own_files_use_only_our_names():
    """The names of the system tourbook replaces are read for its users' sake (with a warning);
    `.env.example` and the Compose and Kubernetes files teach ours."""
    originals = {name for cls in service_configs() for alias in cls.aliases for name in alias.names}
    originals |= {retired.name for cls in service_configs() for retired in cls.retired}
    tracked = subprocess.run(["git", "ls-files", "*.yml", "*.yaml"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
    for path in [".env.example", *tracked]:
        text = (ROOT / path).read_text()
        used = set(re.findall(r"^\s*-?\s*([A-Z][A-Z0-9_]+)\s*[=:]", text, re.M))
        used |= set(re.findall(r"\bname:\s*([A-Z][A-Z0-9_]+)\b", text))  # Kubernetes env lists
        assert used & originals == set(), f"{path} uses names of the original"
