"""The launcher and compose.yml agree with the registry and stay runnable."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ops.paths import ROOT
from ops.services import REGISTRY

DEV = ROOT / "ops" / "dev"


def test_the_launcher_is_an_executable_bash_script() -> None:
    assert os.access(DEV, os.X_OK)
    assert subprocess.run(["bash", "-n", str(DEV)], check=False).returncode == 0


def test_the_launcher_runs_the_cli_from_any_directory_without_reinstalling(
        tmp_path: Path) -> None:
    stamp = ROOT / ".venv" / ".tourbook-install"
    current = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + sys.version.encode())
    if not stamp.is_file() or stamp.read_text().strip() != current.hexdigest():
        pytest.skip("pyproject.toml changed since the last ./ops/dev install (or there was none)")
    before = stamp.stat().st_mtime_ns
    result = subprocess.run([str(DEV), "--help"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "usage: ./ops/dev" in result.stdout
    assert "installing" not in result.stderr
    assert stamp.stat().st_mtime_ns == before


def test_compose_runs_the_three_servers_with_healthchecks_on_the_usual_ports() -> None:
    compose = yaml.safe_load((ROOT / "compose.yml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert services["rabbitmq"]["image"] == "rabbitmq:3.12-management"
    ports = {name: [p.rsplit(":", 1)[-1] for p in spec["ports"]] for name, spec in services.items()}
    assert ports == {"postgres": ["5432"], "redis": ["6379"], "rabbitmq": ["5672", "15672"]}
    assert all("healthcheck" in spec for spec in services.values())


def test_compose_creates_every_service_database_of_the_registry() -> None:
    compose = yaml.safe_load((ROOT / "compose.yml").read_text())
    mount = next(v for v in compose["services"]["postgres"]["volumes"] if "initdb" in v)
    script = ROOT / mount.split(":")[0]
    created = set(re.findall(r"CREATE DATABASE (\w+);", script.read_text()))
    assert created == {service.database for service in REGISTRY if service.database}
