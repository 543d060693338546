"""Background work beside a service (booking's jobs, payments' reconciliation): one task per
process, started and stopped with the app; a failed pass is logged and the next one tries again,
and the passes of one run share a correlation id, so the events they write trace back to it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import structlog
from aiohttp import web

from common.wiring import CleanupContext

# CleanupContext too: the gateway's periodic work imports it from here.
__all__ = ["CleanupContext", "Pass", "periodic_ctx"]

log = structlog.get_logger(__name__)

Pass = Callable[[], Awaitable[Mapping[str, int]]]


def periodic_ctx(name: str, interval: float, run_once: Callable[[web.Application], Pass], *,
                 task_name: str, correlation_prefix: str,
                 deferred: tuple[type[Exception], ...] = ()) -> CleanupContext:
    """Run `run_once(app)()` every `interval` seconds while the app runs (never when 0).

    Logs `<name>_ran` with the counts of a pass that did something, `<name>_deferred` when it
    raised one of `deferred` (a dependency known to be away), `<name>_failed` with the stack for
    anything else."""

    async def loop(run: Pass) -> None:
        while True:
            try:
                correlation = f"{correlation_prefix}-{uuid.uuid4()}"
                with structlog.contextvars.bound_contextvars(correlationId=correlation):
                    done = await run()
            except deferred:
                log.warning(f"{name}_deferred")
            except Exception:  # the database was away, say: the next pass tries again
                log.exception(f"{name}_failed")
            else:
                if any(done.values()):
                    log.info(f"{name}_ran", **done)
            await asyncio.sleep(interval)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if not interval:
            yield
            return
        task = asyncio.create_task(loop(run_once(app)), name=task_name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
