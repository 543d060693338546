"""What notify does with one event: its messages worked out (`notices`) and delivered, once each
(`deliveries`); the last attempt records what could not be sent."""

from __future__ import annotations

from common.bus import Event, HandlerContext
from notify import events
from notify.deliveries import Deliveries
from notify.notices import Notices


class Notifier:
    def __init__(self, notices: Notices, deliveries: Deliveries, *, max_attempts: int) -> None:
        self.notices = notices
        self.deliveries = deliveries
        self.max_attempts = max_attempts

    async def handle(self, event: Event, ctx: HandlerContext) -> None:
        data = events.parse(event)
        notices = await self.notices.of(event.event_type, data)
        await self.deliveries.deliver(event, notices, attempt=ctx.attempt,
                                      last_attempt=ctx.attempt >= self.max_attempts)
