"""Sending an event's messages once per channel, through the delivery log.

Each message's row (event and channel) is written before it is sent; a later delivery
of the same event finds it and sends nothing that is sent, skipped or refused for good. So a
retry after the e-mail went out but the SMS failed sends only the SMS. Together with the
consumer's Redis claim on the event (`processed:<eventId>`), a duplicate event sends nothing.

A transient failure leaves the row pending (`attempts` + 1, `last_error`) and, once the
event's other messages are tried, fails the handler so that the bus retries it with backoff;
on the queue's last attempt the row is marked failed ("gave up") and the event goes to the
dead-letter queue, from which an operator may replay it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg
import structlog

from common.bus import Event, RetryLater
from notify import db
from notify.failures import SendFailed
from notify.formatting import mask, masked_in
from notify.mail import Mailer
from notify.metrics import NotifyMetrics
from notify.notices import Notice
from notify.rendering import Templates
from notify.sms import SmsSender

log = structlog.get_logger(__name__)

DONE = frozenset({"sent", "skipped"})
Pending = tuple[str, float | None]
"""A message left to retry: its error (recipient masked), and the seconds its provider asked to
wait first, if it did."""


class DeliveryDeferred(RetryLater):
    """Some messages failed transiently: the event is to be tried again, no sooner than the
    longest wait a provider asked for."""


class Deliveries:
    def __init__(self, pool: asyncpg.Pool, templates: Templates, mailer: Mailer,
                 sms: SmsSender | None, metrics: NotifyMetrics) -> None:
        self._pool = pool
        self.templates = templates
        self.mailer = mailer
        self.sms = sms
        self.metrics = metrics

    async def deliver(self, event: Event, notices: list[Notice], *, attempt: int,
                      last_attempt: bool) -> None:
        """Send what is not sent yet; raises DeliveryDeferred when something must be retried."""
        deferred, wait = [], 0.0
        for notice in notices:
            pending = await self._one(event, notice, attempt=attempt, last_attempt=last_attempt)
            if pending is not None:
                error, asked = pending
                deferred.append(f"{notice.channel}: {error}")
                wait = max(wait, asked or 0.0)
        if deferred:
            raise DeliveryDeferred("; ".join(deferred), after=wait)

    async def _one(self, event: Event, notice: Notice, *, attempt: int,
                   last_attempt: bool) -> Pending | None:
        """Deliver one message; the transient failure that keeps it pending, if any."""
        subject, content = self._render(notice)
        async with self._pool.acquire() as conn:
            row = await db.open_delivery(
                conn, event_id=uuid.UUID(event.event_id), event_type=event.event_type,
                channel=notice.channel, recipient=notice.recipient, user_id=notice.user_id,
                booking_id=notice.booking_id, template=notice.template, subject=subject)
        if row["status"] in DONE or (row["status"] == "failed" and row["permanent"]):
            self._log(notice, row, "already_done")
            return None
        if notice.skip is not None:
            row = await self._update(db.mark_skipped, row["id"], notice.skip)
            self._done(notice, row)
            return None
        started = time.perf_counter()
        try:
            provider_id = await self._send(notice, content)
        except SendFailed as exc:
            self.metrics.send_seconds.labels(notice.channel).observe(
                time.perf_counter() - started)
            return await self._failed(notice, row, exc, attempt=attempt,
                                      last_attempt=last_attempt)
        self.metrics.send_seconds.labels(notice.channel).observe(time.perf_counter() - started)
        row = await self._update(db.mark_sent, row["id"], provider_id)
        self._done(notice, row)
        return None

    def _render(self, notice: Notice) -> tuple[str | None, Any]:
        """(subject, what the channel sends): rendered before anything is written, so that a
        template error never leaves a row behind."""
        if notice.channel == "email":
            email = self.templates.email(notice.template, notice.context)
            return email.subject, email
        return None, self.templates.sms(notice.template, notice.context)

    async def _send(self, notice: Notice, content: Any) -> str | None:
        if notice.channel == "email":
            return await self.mailer.send(self.mailer.compose(notice.recipient, content))
        if self.sms is None:  # notices are skipped when SMS is off; this is a safety net
            raise SendFailed("SMS is turned off", permanent=True)
        return await self.sms.send(notice.recipient, content)

    async def _failed(self, notice: Notice, row: asyncpg.Record, exc: SendFailed, *,
                      attempt: int, last_attempt: bool) -> Pending | None:
        # The error reaches logs and dead letters too, where recipients are shown masked.
        error = masked_in(str(exc), notice.recipient)
        if exc.permanent:
            row = await self._update(db.mark_failed, row["id"], error, permanent=True)
        elif last_attempt:
            row = await self._update(db.mark_failed, row["id"],
                                     f"gave up after {attempt} attempts: {error}",
                                     permanent=False)
        else:
            row = await self._update(db.mark_retrying, row["id"], error)
            self.metrics.deliveries.labels(notice.channel, notice.template, "retrying").inc()
            self._log(notice, row, "retrying")
            return error, exc.retry_after
        self._done(notice, row)
        # Given up: the handler still fails, so the event lands in the dead-letter queue.
        return None if exc.permanent else (error, None)

    async def _update(self, query: Any, *args: Any, **kwargs: Any) -> asyncpg.Record:
        async with self._pool.acquire() as conn:
            row: asyncpg.Record = await query(conn, *args, **kwargs)
        return row

    def _done(self, notice: Notice, row: asyncpg.Record) -> None:
        self.metrics.deliveries.labels(notice.channel, notice.template, row["status"]).inc()
        self._log(notice, row, row["status"])

    def _log(self, notice: Notice, row: asyncpg.Record, outcome: str) -> None:
        # One line per delivery; eventId and eventType are bound by the consumer runtime.
        fields = {"channel": notice.channel, "template": notice.template, "status": outcome,
                  "recipient": mask(notice.recipient) if notice.recipient else None,
                  "attempts": row["attempts"], "deliveryId": str(row["id"])}
        if outcome == "skipped":
            log.info("notification", **fields, reason=row["last_error"])
        elif outcome in ("sent", "already_done"):
            log.info("notification", **fields)
        else:
            log.warning("notification", **fields, error=row["last_error"])
