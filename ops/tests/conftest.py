"""Fixtures for the ops tests: a stand-in service package and the environment to run `ops` in.

The stand-in (`tbdummy`) is written to a temporary folder on PYTHONPATH, never into the repo. It
follows the service contract (config, db.MIGRATIONS, seed, consumers.QUEUE, `python -m`), serves
/health/ready from its own database, and keeps a helper child process, so that the tests can see
that stopping `up` leaves nothing behind. Each test gets its own port, run directory and database.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.testing import free_port
from ops.paths import ROOT

DUMMY_FILES = {
    "__init__.py": '"""A stand-in service for the ops tests."""\n',
    "config.py": '''
from typing import ClassVar

from common.config import BaseConfig


class Config(BaseConfig):
    service: ClassVar[str] = "tbdummy"
    env_prefix: ClassVar[str] = "TBDUMMY_"

    port: int = 3999
    database_url: str = "postgresql://postgres@127.0.0.1:5432/tbdummy_db"
''',
    "db.py": '''
from pathlib import Path

from common.db import MigrationSource

MIGRATIONS = [MigrationSource("tbdummy", Path(__file__).parent / "migrations")]
''',
    "consumers.py": '''
from common.bus import QueueSpec

QUEUE = QueueSpec("tbdummy_queue", ("tbdummy.noted",))
''',
    "migrations/001_notes.sql": "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);\n",
    "seed.py": '''
import asyncpg


async def seed(config):
    conn = await asyncpg.connect(config.database_url)
    try:
        await conn.execute(
            "INSERT INTO notes (body) SELECT 'hello' WHERE NOT EXISTS (SELECT 1 FROM notes)")
    finally:
        await conn.close()
''',
    "__main__.py": '''
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
from aiohttp import web

from common.config import load_config
from tbdummy.config import Config

config = load_config(Config)
helper = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
pids = Path(os.environ["TBDUMMY_PID_DIR"])
(pids / "service.pid").write_text(str(os.getpid()))
(pids / "helper.pid").write_text(str(helper.pid))


async def ready(request):
    if os.environ.get("TBDUMMY_NOT_READY"):
        return web.json_response({"status": "down", "db": "pretending to be down"}, status=503)
    conn = await asyncpg.connect(config.database_url)
    try:
        notes = await conn.fetchval("SELECT count(*) FROM notes")
    finally:
        await conn.close()
    return web.json_response({"status": "ok", "notes": notes})


app = web.Application()
app.router.add_get("/health/ready", ready)
print("tbdummy listening, reached at TBDUMMY_URL=" + os.environ.get("TBDUMMY_URL", "?"),
      flush=True)
web.run_app(app, host=config.host, port=config.port, print=None)
''',
}


@pytest.fixture(scope="session")
def dummy_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dummy-service")
    for name, text in DUMMY_FILES.items():
        path = root / "tbdummy" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip())
    return root


@pytest.fixture
def postgres_url(make_database: Callable[[str], str]) -> str:
    """A database of this run on the test server (its server is what the checks look at)."""
    return make_database("ops")


@pytest.fixture
def ops_env(tmp_path: Path, dummy_path: Path, make_database: Callable[[str], str], amqp_url: str,
            redis_url: str) -> dict[str, str]:
    """The environment of an `ops` run that sees only the stand-in service, with private state."""
    pids = tmp_path / "pids"
    pids.mkdir()
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(dummy_path), os.environ.get("PYTHONPATH")])),
        "OPS_SERVICES": "tbdummy",
        "OPS_RUN_DIR": str(tmp_path / "run"),
        "TBDUMMY_PORT": str(free_port()),
        "TBDUMMY_DATABASE_URL": make_database(f"dummy_{secrets.token_hex(4)}"),
        "TBDUMMY_PID_DIR": str(pids),
        "AMQP_URL": amqp_url,
        "REDIS_URL": redis_url,
    }


def ops(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m ops ARGS` to the end; output and errors together."""
    return subprocess.run([sys.executable, "-m", "ops", *args], env=env, cwd=ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                          check=False)


class Up:
    """A `python -m ops up` running in the background, its output going to a file."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        with log.open("w") as out:
            # Its own process group, as a shell gives a command, so Ctrl-C can be imitated.
            self.process = subprocess.Popen([sys.executable, "-m", "ops", "up", *args], env=env,
                                            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                            process_group=0)

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.process.poll() is not None:
                raise AssertionError(f"up exited ({self.process.returncode}):\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} from up within {timeout}s:\n{self.output}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[Callable[..., Up]]:
    started: list[Up] = []

    def start(env: dict[str, str], *args: str) -> Up:
        up = Up(env, tmp_path / f"up-{len(started)}.log", *args)
        started.append(up)
        return up

    yield start
    for up in started:
        up.stop()
