"""Running the services: one process each under honcho, logs interleaved with a name prefix.

honcho's Manager starts each command in its own session, relays its output line by line, and on
SIGINT/SIGTERM (or when one process exits) sends SIGTERM to every process group, SIGKILL after
5 s. Readiness is watched by one more process (`python -m ops.readiness`), so honcho supervises
it like the rest. `up` records its pid in `.run/up.pid`, which is how `down` finds it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from honcho.manager import Manager
from honcho.printer import Printer

from ops import paths
from ops.errors import OpsError

READY_NOTES_VAR = "OPS_READY_NOTES"


def run(commands: dict[str, str], environ: dict[str, str]) -> int:
    """Run `commands` (name → shell command) until a signal or until one of them exits.

    Returns honcho's code: 130/143 after SIGINT/SIGTERM, else the code of the first to exit.
    """
    manager = Manager(Printer(sys.stdout))
    for name, command in commands.items():
        manager.add_process(name, command, env=environ, cwd=str(paths.ROOT))
    try:
        manager.loop()
    finally:
        # honcho kills process groups; this catches anything that left its group but not us.
        stop_descendants()
    return manager.returncode if manager.returncode is not None else 1


def python_module(module: str, *args: str) -> str:
    return "exec " + shlex.join([sys.executable, "-m", module, *args])


# -- processes --


def alive(pid: int) -> bool:
    """True for a running process; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = _stat(pid)
    return state is None or state[0] != "Z"


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) from /proc, or None where there is no /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, grandchildren...); none found without /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        stat = _stat(int(entry.name))
        if stat is not None and stat[0] != "Z":
            children.setdefault(stat[1], []).append(int(entry.name))
    found: list[int] = []
    queue = list(children.get(pid, []))
    while queue:
        child = queue.pop()
        found.append(child)
        queue.extend(children.get(child, []))
    return found


def stop_descendants(timeout: float = 5.0) -> None:
    """SIGTERM whatever still runs below this process, SIGKILL it after `timeout`."""
    multiprocessing.active_children()  # reaps honcho's finished relay processes
    pids = descendants(os.getpid())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            multiprocessing.active_children()
            pids = [pid for pid in pids if alive(pid)]
            if not pids:
                return
            time.sleep(0.05)


# -- the `up` pidfile --


def running_up() -> int | None:
    """The pid of a running `./ops/dev up` of this checkout, if any (a stale pidfile is removed)."""
    pidfile = paths.up_pidfile()
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    if alive(pid) and _is_ops_up(pid):
        return pid
    pidfile.unlink(missing_ok=True)
    return None


def _is_ops_up(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pidfile
    return b"ops" in argv and b"up" in argv


class UpPidfile:
    """Held for the life of `up`: refuses a second `up`, removed on the way out."""

    def __enter__(self) -> UpPidfile:
        other = running_up()
        if other is not None:
            raise OpsError(f"./ops/dev up is already running (pid {other}); stop it with "
                           "./ops/dev down")
        paths.up_pidfile().write_text(f"{os.getpid()}\n")
        return self

    def __exit__(self, *exc: object) -> None:
        pidfile = paths.up_pidfile()
        try:
            if int(pidfile.read_text().strip()) == os.getpid():
                pidfile.unlink()
        except (OSError, ValueError):
            pass


def stop_up(timeout: float = 30.0) -> int | None:
    """SIGTERM a running `up` and wait until it is gone; its pid, or None when none was running."""
    pid = running_up()
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            raise OpsError(f"./ops/dev up (pid {pid}) is still running {timeout:.0f}s after "
                           f"SIGTERM; `kill -KILL {pid}` ends it")
        time.sleep(0.05)
    paths.up_pidfile().unlink(missing_ok=True)
    return pid
