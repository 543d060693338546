"""Structured logging: structlog JSON lines on stdout (pretty on a TTY), stdlib loggers through the
same chain, context (service, requestId, correlationId, userId) carried in contextvars, and an
optional Logstash TCP handler when `LOGSTASH_HOST` is set."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    structlog.processors.StackInfoRenderer(),
]


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "auto",
                      logstash_host: str | None = None, logstash_port: int = 5000,
                      stream: Any = None) -> None:
    """Route structlog and stdlib logging through one chain; idempotent."""
    stream = stream or sys.stdout
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer: Any = (structlog.dev.ConsoleRenderer() if fmt == "console"
                     else structlog.processors.JSONRenderer())

    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    if logstash_host:
        root.addHandler(_logstash_handler(service, logstash_host, logstash_port))
    # asyncpg and aiohttp are chatty at DEBUG; their warnings and errors still come through.
    for noisy in ("asyncpg", "aiohttp.access", "aiormq", "pamqp"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.INFO))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def _logstash_handler(service: str, host: str, port: int) -> logging.Handler:
    from logstash_async.formatter import LogstashFormatter
    from logstash_async.handler import AsynchronousLogstashHandler

    handler = AsynchronousLogstashHandler(host, port, database_path=None, transport="logstash_async.transport.TcpTransport")
    handler.setFormatter(LogstashFormatter(
        extra_prefix=None, extra={"service": service, "index": "microservices-logs"}))
    return handler


def bind(**values: Any) -> None:
    """Add keys to the context every log line of this task carries."""
    structlog.contextvars.bind_contextvars(**values)
