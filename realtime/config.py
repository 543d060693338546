"""realtime's settings: `REALTIME_*` variables and the shared ones of `common.config.BaseConfig`."""

from __future__ import annotations

import os
import secrets
import socket
from typing import ClassVar

from pydantic import Field

from common.config import Alias, BaseConfig, CsvList


def default_instance() -> str:
    """Unique per process, readable in `rabbitmqctl list_queues`: host, pid and a random tag."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Config(BaseConfig):
    service: ClassVar[str] = "realtime"
    env_prefix: ClassVar[str] = "REALTIME_"
    aliases: ClassVar[tuple[Alias, ...]] = (
        *BaseConfig.aliases, Alias(("ALLOWED_ORIGINS",), "allowed_origins"))

    port: int = Field(3007, ge=0, le=65535)
    # The gateway's CORS default: the UI served by the gateway, and Vite's dev server.
    allowed_origins: CsvList = Field(
        ("http://localhost:8080", "http://127.0.0.1:8080", "http://localhost:5173"),
        description="Origins a browser may open /ws from (exact match, scheme://host[:port])")
    allow_missing_origin: bool = Field(True, description=(
        "Accept handshakes without an Origin header (non-browser clients, server-side tools); "
        "browsers always send one"))
    heartbeat_interval: float = Field(30.0, gt=0, description=(
        "Seconds between the application-level {\"type\":\"ping\"} sent to every client"))
    protocol_heartbeat: float = Field(30.0, ge=0, description=(
        "Seconds between WebSocket protocol pings; a client that sends nothing back (a pong) "
        "within half of it is disconnected (dead peers, half-open connections); 0: no pings"))
    send_queue_size: int = Field(256, ge=1, le=100_000, description=(
        "Frames waiting for one client at most; a client that falls further behind is "
        "disconnected (1008)"))
    send_timeout: float = Field(10.0, gt=0, description=(
        "Seconds one frame may wait on a client that does not read before it is disconnected "
        "(1008)"))
    close_timeout: float = Field(2.0, gt=0, description=(
        "Seconds a client gets to answer our close frame (shutdown, drop) before its connection "
        "is cut"))
    max_subscriptions: int = Field(200, ge=1, le=10_000, description=(
        "Tours one connection may follow at once"))
    max_connections: int | None = Field(None, ge=1, description=(
        "Connections this process accepts at most (503 beyond); unset: no cap"))
    max_message_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024, description=(
        "Largest message a client may send; beyond, the connection is closed (1009)"))
    instance: str | None = Field(None, pattern=r"^[A-Za-z0-9._:-]{1,200}$", description=(
        "Names this process's broadcast queue websocket_availability_queue.<instance>; must be "
        "unique per process; unset: hostname-pid-random"))
