"""tourbook services as real processes on free ports, each service on a throw-away database of its
own, for the integration tests and the benchmarks: what `./ops/dev up` runs, minus the fixed ports
and the demo data, and any number of replicas of a service."""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from common.config import BaseConfig
from common.db import migrate
from common.testing import free_port, wait_http_ready
from ops import infra, services
from ops.paths import ROOT


def _config_class(name: str) -> type[BaseConfig]:
    config: type[BaseConfig] = importlib.import_module(f"{name}.config").Config
    return config


@dataclass
class Replica:
    service: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Stack:
    """`stack.start("catalog")` twice gives two catalog processes on one database.

    `env` is what every process gets (broker, Redis prefix, keys, internal tokens, log level);
    `database_server` is the PostgreSQL URL on which databases `<prefix>_<service>` are created,
    migrated on first use and dropped by `stop()`. Each process logs to `<logs>/<service>-<n>.log`.
    Every service's first process has its port chosen before anyone needs it (`url`), so each
    process is told where all of its peers answer, whichever starts first.
    """

    env: dict[str, str]
    database_server: str
    prefix: str
    logs: Path
    replicas: list[Replica] = field(default_factory=list)
    databases: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def database(self, name: str) -> str:
        """The URL of `name`'s database, created and migrated the first time."""
        if name not in self.databases:
            url = infra.with_database(self.database_server, f"{self.prefix}_{name}")
            service = next(s for s in services.REGISTRY if s.name == name)
            asyncio.run(self._create(url, service))
            self.databases[name] = url
        return self.databases[name]

    @staticmethod
    async def _create(url: str, service: services.Service) -> None:
        await infra.ensure_database(url)
        await migrate(url, services.migrations(service))

    def url(self, name: str) -> str:
        """Where the first process of `name` answers, started yet or not: its port is chosen the
        first time it is asked for, and `start` puts that process there."""
        if name not in self.ports:
            self.ports[name] = free_port()
        return f"http://127.0.0.1:{self.ports[name]}"

    def env_for(self, name: str, **overrides: str) -> dict[str, str]:
        """The environment `python -m <name>` gets: the stack's, its database, the URL of every
        other service of the registry (its first process, started or to come: `CATALOG_URL`...;
        stand-ins are named by hand), then `overrides`."""
        prefix = _config_class(name).env_prefix
        env = {**self.env}
        for service in services.REGISTRY:
            if service.name != name:
                env.setdefault(f"{service.name.upper()}_URL", self.url(service.name))
        if any(s.name == name and s.database for s in services.REGISTRY):
            env[f"{prefix}DATABASE_URL"] = self.database(name)
        return {**env, **overrides}

    def start(self, name: str, *, port: int | None = None, health: str = "/health/live",
              **overrides: str) -> str:
        """Start one more process of `name`; its base URL once `health` answers. The first
        process (again, after `stop_one`) listens where `url(name)` said; another on `port` or
        a free one."""
        first = not self.urls(name)
        if port is None:
            port = int(self.url(name).rsplit(":", 1)[1]) if first else free_port()
        elif first and self.ports.setdefault(name, port) != port:
            raise ValueError(f"{name} was announced at {self.url(name)}, not on port {port}")
        env = self.env_for(name, **overrides)
        env[f"{_config_class(name).env_prefix}PORT"] = str(port)
        count = sum(r.service == name for r in self.replicas)
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}-{count + 1}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", name], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, **env})
        url = f"http://127.0.0.1:{port}"
        self.replicas.append(Replica(name, url, process, log))
        try:
            wait_http_ready(url + health, process, timeout=60)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; its log:\n{log.read_text()[-3000:]}") from None
        return url

    def stop_one(self, url: str) -> int:
        """Stop the process serving `url` (SIGTERM: it drains); its port, to start it again."""
        [replica] = [r for r in self.replicas if r.url == url]
        replica.process.terminate()
        replica.process.wait(timeout=30)
        self.replicas.remove(replica)
        return int(url.rsplit(":", 1)[1])

    def urls(self, name: str) -> list[str]:
        return [r.url for r in self.replicas if r.service == name]

    def stop(self, *, drop_databases: bool = True) -> None:
        """Stop every process (SIGTERM, then SIGKILL after 30 s) and drop the databases."""
        for replica in self.replicas:
            if replica.process.poll() is None:
                replica.process.terminate()
        for replica in self.replicas:
            try:
                replica.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()
        self.replicas.clear()
        if drop_databases:
            for url in self.databases.values():
                asyncio.run(infra.drop_database(url))
            self.databases.clear()
