"""The test stack tells every process where each of its peers answers, whichever starts first:
no service of a stack is left reaching a peer at its default port (where nothing, or another
checkout's `up`, listens)."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.config import BaseConfig, env_name, load_config
from common.testing import free_port
from ops import services
from ops.stack import Stack

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def stack(run_id: str, tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(env={"APP_ENV": "test"}, database_server=POSTGRES_URL,
                  prefix=f"tb_{run_id}_stack", logs=tmp_path / "logs")
    yield stack
    stack.stop()


def peer_settings(name: str) -> dict[str, str]:
    """The settings of `name` that say where another service of the registry answers:
    {field: the service}."""
    cls: type[BaseConfig] = importlib.import_module(f"{name}.config").Config
    peers = {f"{service.name.upper()}_URL": service.name for service in services.REGISTRY}
    return {field: peers[env_name(cls, field)] for field in cls.model_fields
            if env_name(cls, field) in peers}


def test_before_any_process_starts_each_service_knows_every_peer_s_address(stack: Stack):
    told = {}
    for service in services.REGISTRY:
        cls = importlib.import_module(f"{service.name}.config").Config
        config = load_config(cls, stack.env_for(service.name))
        told |= {(service.name, peer): getattr(config, field)
                 for field, peer in peer_settings(service.name).items()}

    # booking reads payments and auth reads booking, which both start after them.
    assert {("booking", "payments"), ("auth", "booking"), ("gateway", "realtime")} <= set(told)
    assert told == {(name, peer): stack.url(peer) for name, peer in told}
    assert len({stack.url(s.name) for s in services.REGISTRY}) == len(services.REGISTRY)


def test_the_first_process_of_a_service_listens_where_the_others_were_told(
        stack: Stack, tmp_path: Path):
    announced = stack.url("standins.smtp")
    sink = {"SMTP_STANDIN_SMTP_PORT": str(free_port()), "SMTP_STANDIN_DIRECTORY": str(tmp_path)}

    assert stack.start("standins.smtp", health="/health", **sink) == announced
    port = stack.stop_one(announced)
    with pytest.raises(ValueError, match="announced at"):
        stack.start("standins.smtp", port=free_port(), health="/health", **sink)
    assert stack.start("standins.smtp", port=port, health="/health", **sink) == announced
