"""Actor-style mailboxes: one FIFO per key, drained by one task that exists only while the key has
work, so jobs with one key run in order and different keys run in parallel."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

Job = Callable[[], Awaitable[None]]


class Mailboxes:
    def __init__(self) -> None:
        self._boxes: dict[str, deque[Job]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, key: str, job: Job) -> None:
        """Queue `job` behind the key's earlier jobs. Synchronous, so arrival order is kept."""
        box = self._boxes.get(key)
        if box is not None:
            box.append(job)
            return
        self._boxes[key] = deque([job])
        self._idle.clear()
        self._tasks[key] = asyncio.create_task(self._drain(key), name=f"mailbox:{key}")

    @property
    def active(self) -> int:
        return len(self._boxes)

    def discard_pending(self) -> int:
        """Forget jobs that have not started; the ones running finish. Returns how many."""
        dropped = sum(len(box) for box in self._boxes.values())
        for box in self._boxes.values():
            box.clear()
        return dropped

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def cancel(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _drain(self, key: str) -> None:
        box = self._boxes[key]
        try:
            while box:
                job = box.popleft()
                try:
                    await job()
                except Exception:  # jobs handle their own failures; this keeps the key alive
                    log.exception("mailbox_job_crashed", mailbox=key)
        finally:
            # No await between the empty check and here: a submit cannot slip in between.
            del self._boxes[key]
            del self._tasks[key]
            if not self._boxes:
                self._idle.set()
