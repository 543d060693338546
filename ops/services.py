"""The registry of tourbook services: which packages `up` runs, in which order.

A service is a package `<name>` run as `python -m <name>`, with `<name>.config.Config` (built by
`common.config.load_config`), optionally `<name>.db.MIGRATIONS`, `<name>.seed.seed(config)` and
`<name>.consumers.QUEUE` (the queue it consumes). Adding a service is one `Service(...)` line
below; packages not in this checkout yet are skipped.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from common.bus import BroadcastQueue, QueueSpec
from common.config import BaseConfig, ConfigError, load_config
from common.db import MigrationSource
from ops.errors import OpsError


@dataclass(frozen=True)
class Service:
    name: str
    """The package, run as `python -m <name>`."""
    port: int
    """Its port by default; the running value comes from its Config."""
    database: str | None = None
    """Its own database by default, created by compose.yml's init script."""


# Start order: the gateway last, so that it finds the others up (web reaches the API through it,
# and reads nothing from it at start).
REGISTRY: tuple[Service, ...] = (
    Service("auth", 3005, "auth_service_db"),
    Service("catalog", 3001, "tour_service_db"),
    Service("booking", 3002, "booking_service_db"),
    Service("payments", 3004, "payment_service_db"),
    Service("notify", 3006, "notification_service_db"),
    Service("realtime", 3007),
    Service("web", 3008),
    Service("gateway", 8080),
)


def exists(name: str) -> bool:
    """True when `<name>` is a runnable service package here (`__main__` and `config` modules)."""
    try:
        return all(importlib.util.find_spec(f"{name}.{module}") is not None
                   for module in ("__main__", "config"))
    except ModuleNotFoundError:
        return False


def selected() -> list[Service]:
    """The services of this checkout, in start order.

    `OPS_SERVICES=auth,catalog` narrows the list (and may name a package outside the registry,
    which is how the tests run a stand-in service).
    """
    names = os.environ.get("OPS_SERVICES", "").split(",")
    wanted = [name.strip() for name in names if name.strip()]
    if not wanted:
        return [service for service in REGISTRY if exists(service.name)]
    known = {service.name: service for service in REGISTRY}
    missing = [name for name in wanted if not exists(name)]
    if missing:
        raise OpsError(f"OPS_SERVICES names {', '.join(missing)}, which this checkout cannot run "
                       "(no <name>/__main__.py and <name>/config.py)")
    return [known.get(name, Service(name, 0)) for name in wanted]


def pick(services: list[Service], names: list[str]) -> list[Service]:
    """The services named on a command line, with a clear error for an unknown name."""
    if not names:
        return services
    by_name = {service.name: service for service in services}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        available = ", ".join(by_name) or "none yet"
        raise OpsError(f"no service {', '.join(unknown)} in this checkout (available: {available})")
    return [by_name[name] for name in names]


def config(service: Service) -> BaseConfig:
    """The service's Config, read from the environment exactly as the service reads it."""
    cls: type[BaseConfig] = importlib.import_module(f"{service.name}.config").Config
    try:
        return load_config(cls)
    except ConfigError as exc:
        raise OpsError(str(exc)) from None


def database_url(config: BaseConfig) -> str | None:
    url = getattr(config, "database_url", None)
    return url if isinstance(url, str) else None


def migrations(service: Service) -> list[MigrationSource]:
    if importlib.util.find_spec(f"{service.name}.db") is None:
        return []
    sources: list[MigrationSource] = getattr(
        importlib.import_module(f"{service.name}.db"), "MIGRATIONS", [])
    return sources


def queue(service: Service) -> QueueSpec | BroadcastQueue | None:
    """The queue the service's consumers declare, or None when it consumes no events."""
    if importlib.util.find_spec(f"{service.name}.consumers") is None:
        return None
    declared = getattr(importlib.import_module(f"{service.name}.consumers"), "QUEUE", None)
    return declared if isinstance(declared, QueueSpec | BroadcastQueue) else None


def seeder(service: Service) -> Callable[[Any], Awaitable[None]] | None:
    if importlib.util.find_spec(f"{service.name}.seed") is None:
        return None
    seed: Callable[[Any], Awaitable[None]] = importlib.import_module(f"{service.name}.seed").seed
    return seed


def base_url(config: BaseConfig) -> str:
    """Where the service answers on this machine (a wildcard bind is reached on loopback)."""
    wildcards = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104 - read, not bound
    host = wildcards.get(config.host, config.host)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{config.port}"
