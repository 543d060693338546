"""Where a message goes when it is not simply acked: a retry queue with a delay, or the
dead-letter queue, as a copy carrying the failure in its headers (then the original is acked)."""

from __future__ import annotations

from typing import Any

from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic

from common.bus.envelope import utc_timestamp
from common.bus.topology import DEAD_LETTER_EXCHANGE, QueueSpec

ATTEMPTS = "x-attempts"  # failed attempts so far
ORIGINAL_ROUTING_KEY = "x-original-routing-key"
CONSUMER = "x-consumer"
ERROR_TYPE = "x-error-type"
ERROR_MESSAGE = "x-error-message"
FAILED_AT = "x-failed-at"
DEAD_LETTER_REASON = "x-dead-letter-reason"

# Reasons a message lands in the dead-letter queue (DEAD_LETTER_REASON header, metric label).
HANDLER_FAILED = "handler-failed"
MALFORMED = "malformed"
NO_HANDLER = "no-handler"
BAD_KEY = "bad-key"

_MAX_ERROR = 1000


def headers_of(message: DeliveredMessage) -> dict[str, Any]:
    return dict(message.header.properties.headers or {})


def failed_attempts(message: DeliveredMessage) -> int:
    value = headers_of(message).get(ATTEMPTS, 0)
    return value if isinstance(value, int) else 0


def original_routing_key(message: DeliveredMessage) -> str:
    """The key the producer used; a retried message comes back with the queue's name instead."""
    value = headers_of(message).get(ORIGINAL_ROUTING_KEY)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return value if isinstance(value, str) and value else (message.routing_key or "")


def failure_headers(message: DeliveredMessage, *, consumer: str, attempts: int,
                    error: BaseException | str, reason: str | None = None) -> dict[str, Any]:
    headers = headers_of(message)
    headers[ATTEMPTS] = attempts
    headers[ORIGINAL_ROUTING_KEY] = original_routing_key(message)
    headers[CONSUMER] = consumer
    if isinstance(error, BaseException):
        headers[ERROR_TYPE] = f"{type(error).__module__}.{type(error).__qualname__}"
        headers[ERROR_MESSAGE] = (str(error) or repr(error))[:_MAX_ERROR]
    else:
        headers[ERROR_TYPE] = reason or "error"
        headers[ERROR_MESSAGE] = error[:_MAX_ERROR]
    headers[FAILED_AT] = utc_timestamp()
    if reason is not None:
        headers[DEAD_LETTER_REASON] = reason
    return headers


def retry_target(spec: QueueSpec, attempts: int, *, at_least: float = 0) -> tuple[str, str]:
    """(exchange, routing key) of the retry queue after `attempts` failures, one that waits
    `at_least` seconds if the policy has one that long."""
    return "", spec.retry_queue(spec.retry_delay_ms(attempts, at_least_ms=at_least * 1000))


def dead_letter_target(spec: QueueSpec) -> tuple[str, str]:
    return DEAD_LETTER_EXCHANGE, spec.dead_letter_key


async def republish(message: DeliveredMessage, exchange: str, routing_key: str,
                    headers: dict[str, Any]) -> None:
    """Publish a copy (same body and properties, new headers) and wait for the broker's confirm,
    on the channel the message came from: it is a confirm channel. Callers bound the wait."""
    props = message.header.properties
    copy = Basic.Properties(**{name: getattr(props, name) for name in Basic.Properties.flags})
    copy.headers = headers
    await message.channel.basic_publish(
        message.body, exchange=exchange, routing_key=routing_key, properties=copy,
        mandatory=True)
