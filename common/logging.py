"""Structured logging: structlog JSON lines on stdout (pretty on a TTY), stdlib loggers rendered
through the same chain, context (service, requestId, correlationId, userId) from contextvars, and
the same events shipped to Logstash over TCP when `LOGSTASH_HOST` is set."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LOGSTASH_INDEX = "microservices-logs"
REDACTED = "[redacted]"
# configure_logging replaces only the handlers it installed, so pytest's capture handlers survive.
_HANDLER_NAME = "tourbook"
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# Lines logged before configure_logging, written by it. Process-wide, as logging itself is.
_EARLY: list[tuple[str, str, str, dict[str, Any]]] = []
_SECRET_KEY = re.compile(
    r"(password|passwd|passwordhash|secret|token|tokens|authorization|cookie|apikey)$")


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "auto",
                      logstash_host: str | None = None, logstash_port: int = 5000,
                      stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging through one chain; calling it again reconfigures."""
    stream = sys.stdout if stream is None else stream
    if fmt == "auto":
        fmt = "console" if _isatty(stream) else "json"
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_service(service),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _add_timestamp,
        structlog.processors.StackInfoRenderer(),
        redact_secrets,
    ]
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared,
                    structlog.stdlib.PositionalArgumentsFormatter(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Tests reconfigure logging; cached loggers would keep the old chain.
        cache_logger_on_first_use=False,
    )
    # Records from stdlib loggers (aiohttp, asyncpg...) get the same context and fields.
    foreign: list[Processor] = [_add_record_extras, *shared]
    handlers = [_stream_handler(stream, fmt, foreign)]
    if logstash_host:
        handlers.append(_logstash_handler(logstash_host, logstash_port, foreign))

    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.set_name(_HANDLER_NAME)
        root.addHandler(handler)
    root.setLevel(level)
    # asyncpg and the AMQP client are chatty at DEBUG; their warnings and errors still come through.
    quiet = max(logging.getLevelNamesMapping()[level], logging.INFO)
    for noisy in ("asyncpg", "aiormq", "pamqp"):
        logging.getLogger(noisy).setLevel(quiet)
    # The request_context middleware writes the one line per request; aiohttp's access log would
    # repeat it with the raw query string, where a token may travel (WebSocket URLs).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    while _EARLY:
        name, early_level, event, fields = _EARLY.pop(0)
        log_at_start(name, early_level, event, **fields)


def log_at_start(logger: str, level: str, event: str, **fields: Any) -> None:
    """Log now if logging is configured, else as soon as `configure_logging` runs: a service
    reads its settings, logging's among them, before it can configure logging."""
    if any(h.get_name() == _HANDLER_NAME for h in logging.getLogger().handlers):
        structlog.get_logger(logger).log(logging.getLevelNamesMapping()[level.upper()], event,
                                         **fields)
    else:
        _EARLY.append((logger, level, event, fields))


def bind(**values: Any) -> None:
    """Add keys to the context every log line of this task carries."""
    structlog.contextvars.bind_contextvars(**values)


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Masks values whose key names a secret (password, token, authorization...), at any depth."""
    return _redact(event_dict)


def _redact(mapping: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in mapping.items():
        if _SECRET_KEY.search(re.sub(r"[^a-z]", "", str(key).lower())):
            mapping[key] = REDACTED
        elif isinstance(value, dict):
            mapping[key] = _redact(dict(value))
    return mapping


def _add_timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # A stdlib record is formatted once per handler: its own creation time keeps stdout and
    # Logstash in agreement, where "now" would differ by a few microseconds.
    record = event_dict.get("_record")
    created = record.created if isinstance(record, logging.LogRecord) else time.time()
    event_dict["timestamp"] = datetime.fromtimestamp(created, UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")
    return event_dict


def _add_record_extras(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The `extra={...}` of a stdlib call, without what formatting leaves on the record."""
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord):
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES:
                event_dict.setdefault(key, value)
    return event_dict


def _add_service(service: str) -> Processor:
    # A processor rather than a contextvar: threads and tasks started before configuration
    # (and the Logstash worker thread) still say which service they belong to.
    def add(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _stream_handler(stream: TextIO, fmt: str, foreign: list[Processor]) -> logging.Handler:
    final: list[Processor] = (
        [structlog.dev.ConsoleRenderer()] if fmt == "console"
        else [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()])
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=foreign,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final]))
    return handler


def _logstash_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """What Logstash expects on top of our event: `@timestamp`, `@version`, a `message`, and the
    index to write to in `[@metadata][index]` (the pipeline appends the day)."""
    event_dict["@timestamp"] = event_dict.get("timestamp")
    event_dict["@version"] = "1"
    event_dict["@metadata"] = {"index": LOGSTASH_INDEX}
    event_dict.setdefault("message", event_dict.get("event"))
    return event_dict


def _logstash_handler(host: str, port: int, foreign: list[Processor]) -> logging.Handler:
    # Imported here: only services that ship to Logstash pay for its dependencies (requests...).
    from logstash_async.handler import AsynchronousLogstashHandler  # noqa: PLC0415

    # In-memory queue, sent by a worker thread; close() (logging.shutdown at exit) flushes it.
    handler: logging.Handler = AsynchronousLogstashHandler(
        host, port, database_path=None, transport="logstash_async.transport.TcpTransport")
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=foreign,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, _logstash_fields,
                    structlog.processors.JSONRenderer()]))
    # The worker reports its own send failures through logging: shipping those would loop.
    handler.addFilter(lambda record: not record.name.startswith("LogProcessingWorker"))
    return handler
